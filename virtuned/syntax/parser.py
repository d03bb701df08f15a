"""Text → AST: the Lark LALR parser, the tree → attrs transformer, syntax diagnostics."""

from __future__ import annotations

import functools

from virtuned import data
from virtuned.diagnostics import Span, error
from virtuned.syntax import ast, cache

# Human names for the grammar's terminals, used in "expected ..." messages.
_TERMINAL_NAMES = {
    "WORD": "a word",
    "LITERAL": "a number or size",
    "VERSION": "a version like 1.0.0",
    "RANGE": "a version range like ^1.0",
    "STRING": "a quoted string",
    "PARAM_REF": "a $param",
    "_NL": "end of line",
    "LBRACE": "'{'",
    "RBRACE": "'}'",
    "LPAR": "'('",
    "RPAR": "')'",
    "EQUAL": "'='",
    "COLON": "':'",
    "COMMA": "','",
    "OPTIONAL": "'?'",
    "$END": "end of file",
}


@functools.lru_cache(maxsize=1)
def _parser():
    from lark import Lark

    return Lark(
        data.read_text("grammar", "virtuned.lark"),
        parser="lalr",
        propagate_positions=True,
        maybe_placeholders=False,
        cache=cache.lark_tables(),
    )


def parse(text: str, filename: str) -> ast.Profile:
    """Parse a profile or a file of bare trait lines. Raises VirtunedError (exit 2).

    Where the disk cache is on (the CLI, see ``cache``), a text parsed before is read
    from it, and lark is not even imported."""
    profile = cache.load(text, filename)
    if profile is not None:
        return profile
    from lark.exceptions import UnexpectedInput

    try:
        tree = _parser().parse(text if text.endswith("\n") else text + "\n")
    except UnexpectedInput as exc:
        raise _syntax_error(exc, text, filename) from None
    profile = ast.Profile(source=filename,
                          statements=_Builder(filename).statements(tree.children),
                          comments=_comments(text))
    cache.store(text, filename, profile)
    return profile


def _comments(text: str) -> tuple[ast.Comment, ...]:
    """Every ``#`` comment (a '#' inside a string is not one)."""
    import re

    found = []
    for number, row in enumerate(text.split("\n"), start=1):
        if "#" not in row:
            continue
        for match in re.finditer(r'"([^"\\\n]|\\.)*"|#[^\n]*', row):
            if match.group().startswith("#"):
                found.append(ast.Comment(number, match.start() + 1,
                                         match.group().rstrip("\r \t")))
    return tuple(found)


def _syntax_error(exc, text: str, filename: str):
    from lark.exceptions import UnexpectedCharacters, UnexpectedToken

    line, col = max(exc.line, 1), max(exc.column, 1)
    lines = text.split("\n")  # lark counts lines at "\n" only, not at \f, \x85, \u2028...
    open_blocks = _open_blocks(text, line, col)
    if isinstance(exc, UnexpectedToken) and exc.token.type == "$END" and open_blocks:
        bline, bcol = open_blocks[-1]
        return error(Span(filename, bline, bcol),
                     "this block is never closed: the file ends before its '}'",
                     hint=_UNCLOSED_HINT)
    hint = None
    if isinstance(exc, UnexpectedCharacters):
        char = lines[line - 1][col - 1] if line <= len(lines) else "?"
        message = f"unexpected character {char!r}"
        hint = _HINTS.get(char)
    elif isinstance(exc, UnexpectedToken):
        token = exc.token
        found = {"$END": "end of file", "_NL": "end of line"}.get(token.type, repr(str(token)))
        expected = set(exc.expected)
        if not open_blocks:
            expected.discard("RBRACE")  # the LALR state is shared with block bodies
        if not _open_parens(lines[line - 1][: col - 1] if line <= len(lines) else ""):
            expected.discard("RPAR")  # likewise with parenthesised conditions
        names = sorted({_TERMINAL_NAMES.get(t, repr(t.lower())) for t in expected})
        message = f"unexpected {found}, expected {_join_or(names)}"
        hint = _HINTS.get(str(token))
        if str(token) == "}" and open_blocks:
            hint = None
        if token.type == "_NL" and "LBRACE" in expected:
            hint = "a block's '{' goes at the end of its 'when' or 'trait' line"
    else:
        message = "unexpected end of file"
    return error(Span(filename, line, col), message, hint=hint)


def _open_parens(before: str) -> int:
    """How many '(' are still open in ``before`` (part of one line)."""
    import re

    code = re.sub(r'"([^"\\]|\\.)*"|#.*', "", before)
    return max(code.count("(") - code.count(")"), 0)


def _open_blocks(text: str, line: int, col: int) -> list[tuple[int, int]]:
    """Positions of the '{' still open before (line, col), skipping comments and strings."""
    import re

    stack: list[tuple[int, int]] = []
    for n, row in enumerate(text.split("\n")[:line], start=1):
        row = re.sub(r'"([^"\\]|\\.)*"|#.*', lambda m: " " * len(m.group()), row)
        for c, ch in enumerate(row, start=1):
            if n == line and c >= col:
                break
            if ch == "{":
                stack.append((n, c))
            elif ch == "}" and stack:
                stack.pop()
    return stack


_UNCLOSED_HINT = "a 'when ... {' or 'trait ... {' block is still open; close it with '}'"
_HINTS = {
    "=": "trait lines take no '='; write the value after the words, as in 'video qxl'",
    ":": "only 'param NAME: TYPE' uses ':'",
    "}": "'}' closes a 'when ... {' or 'trait ... {' block; there is no open block here",
    "'": "strings use double quotes",
}


def _join_or(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


# How deep blocks and conditions may nest: far beyond what a profile needs, and far
# below what would exhaust Python's stack in the stages that walk the AST.
MAX_BLOCK_DEPTH = 16
MAX_CONDITION_DEPTH = 32


class _Builder:
    """Lark tree → AST nodes, with spans from the tree's ``meta`` and the tokens."""

    def __init__(self, filename: str):
        self.filename = filename
        self.depth = 0  # of the 'when' blocks being built

    def span(self, node) -> Span:
        if hasattr(node, "meta"):
            m = node.meta
            return Span(self.filename, m.line, m.column, m.end_line, m.end_column)
        return Span(self.filename, node.line, node.column, node.end_line, node.end_column)

    def statements(self, nodes) -> tuple[ast.Statement, ...]:
        return tuple(self.statement(n) for n in nodes if hasattr(n, "data"))

    def statement(self, tree) -> ast.Statement:
        return getattr(self, "_" + tree.data)(tree, tree.children)

    def item(self, token) -> ast.Item:
        span = self.span(token)
        if token.type == "WORD":
            return ast.Word(str(token), span)
        if token.type == "LITERAL":
            return ast.Literal(str(token), span)
        if token.type == "STRING":
            return ast.String(_unquote(str(token)), span)
        if token.type == "PARAM_REF":
            return ast.ParamRef(str(token)[1:], span)
        raise AssertionError(f"unexpected token {token.type}")

    def _header(self, tree, children):
        summary = _unquote(str(children[2])) if len(children) > 2 else None
        return ast.Header(str(children[0]), str(children[1]), summary, self.span(tree))

    def _include(self, tree, children):
        rng = next((str(c) for c in children if getattr(c, "type", None) == "RANGE"), None)
        assigns = tuple(
            ast.Assignment(str(c.children[0]), self.item(c.children[1]), self.span(c))
            for c in children if getattr(c, "data", None) == "assignment")
        return ast.Include(str(children[0]), rng, assigns, self.span(tree))

    def _param(self, tree, children):
        name, type_ = str(children[0]), str(children[1])
        rest = children[2:]
        optional = bool(rest) and getattr(rest[0], "type", None) == "OPTIONAL"
        if optional:
            rest = rest[1:]
        default = self.item(rest[0]) if rest else None
        return ast.Param(name, type_, optional, default, self.span(tree))

    def _trait_line(self, tree, children):
        return ast.TraitLine(tuple(self.item(c) for c in children), self.span(tree))

    def _prefer(self, tree, children):
        return ast.Prefer(self.statement(children[0]), self.span(tree))

    def _declaration(self, tree, children):
        phrase, rest = self.item(children[0]), children[1:]
        version = self.item(rest.pop(0)) if rest and getattr(rest[0], "type", None) == \
            "LITERAL" else None
        doc = self.item(rest.pop(0)) if rest and getattr(rest[0], "type", None) == \
            "STRING" else None
        return ast.Declaration(phrase, version, doc, self.statements(rest), self.span(tree))

    def _when(self, tree, children):
        if self.depth == MAX_BLOCK_DEPTH:
            raise error(self.span(tree), f"'when' blocks nest more than {MAX_BLOCK_DEPTH} "
                        "deep here", hint="combine the conditions with 'and'")
        self.depth += 1
        when = ast.When(self.condition(children[0]), self.statements(children[1:]),
                        self.span(tree))
        self.depth -= 1
        return when

    def condition(self, tree, depth: int = 0) -> ast.Condition:
        span = self.span(tree)
        if depth > MAX_CONDITION_DEPTH:
            raise error(span, f"this condition nests more than {MAX_CONDITION_DEPTH} "
                        "operators deep", hint="'not not X' is X; flatten the condition")
        if tree.data == "fact_test":
            return ast.FactTest(tuple(self.item(c) for c in tree.children), span)
        if tree.data == "negation":
            return ast.Not(self.condition(tree.children[0], depth + 1), span)
        operands = tuple(self.condition(c, depth + 1) for c in tree.children)
        return (ast.And if tree.data == "and_test" else ast.Or)(operands, span)


def _unquote(token: str) -> str:
    body = token[1:-1]
    out, i = [], 0
    while i < len(body):
        if body[i] == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            out.append({"n": "\n", "t": "\t"}.get(nxt, nxt))
            i += 2
        else:
            out.append(body[i])
            i += 1
    return "".join(out)
