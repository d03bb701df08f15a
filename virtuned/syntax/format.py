"""AST → canonical text (``virtuned fmt``). Idempotent; keeps the AST equal.

Canonical layout: one statement a line, four spaces per block level, single spaces
between items, ``when ... {`` and ``trait ... {`` blocks over several lines, at most one blank line
between statements (kept where the author left one). Comments stay where they were:
a comment on its own line stays before the statement that follows it, at that
statement's indentation; a comment after a statement stays at the end of its line.
"""

from __future__ import annotations

from virtuned.syntax import ast

_INDENT = "    "


def format_profile(profile: ast.Profile) -> str:
    writer = _Writer(list(profile.comments))
    writer.block(profile.statements, 0)
    writer.comments_before(None, 0)
    return "".join(line + "\n" for line in writer.lines).lstrip("\n")


class _Writer:
    def __init__(self, comments: list[ast.Comment]):
        self.comments = comments  # in source order; consumed as they are written
        self.lines: list[str] = []
        self.last_line = 0  # the source line of what was written last

    def block(self, statements, depth: int) -> None:
        for statement in statements:
            self.statement(statement, depth)

    def statement(self, stmt: ast.Statement, depth: int) -> None:
        pad = _INDENT * depth
        self.comments_before(stmt.span.line if stmt.span else None, depth)
        self.blank_line_before(stmt)
        if isinstance(stmt, (ast.When, ast.Declaration)):
            head_line = stmt.span.line if stmt.span else None
            body = stmt.body if isinstance(stmt, ast.When) else stmt.parts
            self.lines.append(f"{pad}{_head(stmt)} {{"
                              + self.trailing(head_line, body=body))
            self.last_line = head_line or self.last_line
            self.block(body, depth + 1)
            close = _closing_line(stmt)
            self.comments_before(close, depth + 1)
            self.lines.append(f"{pad}}}" + self.trailing(close))
            self.last_line = close or self.last_line
            return
        end = _end_line(stmt)
        self.lines.append(pad + statement_text(stmt) + self.trailing(end))
        self.last_line = end or self.last_line

    def comments_before(self, line: int | None, depth: int) -> None:
        """Own-line comments above ``line`` (None: all that are left)."""
        while self.comments and (line is None or self.comments[0].line < line):
            comment = self.comments.pop(0)
            if self.last_line and comment.line > self.last_line + 1:
                self.lines.append("")
            self.lines.append(_INDENT * depth + comment.text)
            self.last_line = comment.line

    def trailing(self, line: int | None, body=()) -> str:
        """A comment at the end of ``line``, if the source had one there."""
        if line is None or not self.comments or self.comments[0].line != line:
            return ""
        # On a one-line 'when x { trait }', the comment belongs to the last body line.
        if body and body[-1].span and body[-1].span.line == line:
            return ""
        return "  " + self.comments.pop(0).text

    def blank_line_before(self, stmt) -> None:
        if stmt.span and self.last_line and stmt.span.line > self.last_line + 1 \
                and self.lines and self.lines[-1] != "" and not self.lines[-1].endswith("{"):
            self.lines.append("")


def _head(stmt: ast.When | ast.Declaration) -> str:
    """A block's first line, before its '{'."""
    if isinstance(stmt, ast.When):
        return f"when {format_condition(stmt.condition)}"
    parts = [str(stmt.phrase)] + [str(item) for item in (stmt.version, stmt.doc) if item]
    return "trait " + " ".join(parts)


def _end_line(stmt) -> int | None:
    return stmt.span.end_line if stmt.span else None


def _closing_line(stmt: ast.When | ast.Declaration) -> int | None:
    """The line of a block's '}' (lark's span runs on to the newline after it)."""
    if not stmt.span or stmt.span.end_line is None:
        return None
    if stmt.span.end_col == 1 and stmt.span.end_line > stmt.span.line:
        return stmt.span.end_line - 1
    return stmt.span.end_line


def statement_text(stmt: ast.Statement) -> str:
    """One statement (not a block) as it is written on its line."""
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
