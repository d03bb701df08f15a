"""AST → canonical text (``virtuned fmt``). Idempotent; keeps the AST equal."""

from __future__ import annotations

from virtuned.syntax import ast

_INDENT = "    "


def format_profile(profile: ast.Profile) -> str:
    return "".join(_statement(s, 0) for s in profile.statements)


def _statement(stmt: ast.Statement, depth: int) -> str:
    pad = _INDENT * depth
    if isinstance(stmt, ast.When):
        body = "".join(_statement(s, depth + 1) for s in stmt.body)
        return f"{pad}when {format_condition(stmt.condition)} {{\n{body}{pad}}}\n"
    return f"{pad}{_line(stmt)}\n"


def _line(stmt: ast.Statement) -> str:
    if isinstance(stmt, ast.TraitLine):
        return stmt.words
    if isinstance(stmt, ast.Prefer):
        return f"prefer {stmt.trait.words}"
    if isinstance(stmt, ast.Header):
        summary = f" {ast.String(stmt.summary)}" if stmt.summary is not None else ""
        return f"profile {stmt.name} {stmt.version}{summary}"
    if isinstance(stmt, ast.Include):
        text = f"include {stmt.name}" + (f" {stmt.range}" if stmt.range else "")
        if stmt.assignments:
            text += " with " + ", ".join(f"{a.name} = {a.value}" for a in stmt.assignments)
        return text
    if isinstance(stmt, ast.Param):
        text = f"param {stmt.name}: {stmt.type}" + ("?" if stmt.optional else "")
        return text + (f" = {stmt.default}" if stmt.default is not None else "")
    raise AssertionError(f"unknown statement {stmt!r}")


def format_condition(cond: ast.Condition, parent: type | None = None) -> str:
    if isinstance(cond, ast.FactTest):
        return " ".join(str(i) for i in cond.items)
    if isinstance(cond, ast.Not):
        return "not " + format_condition(cond.operand, ast.Not)
    joiner = " and " if isinstance(cond, ast.And) else " or "
    text = joiner.join(format_condition(c, type(cond)) for c in cond.operands)
    # 'and' binds tighter than 'or'; parenthesise whenever a compound sits inside
    # another operator so the text reparses to the same tree.
    return f"({text})" if parent is not None else text
