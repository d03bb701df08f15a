"""The parser: the exact AST of every construct, the exact diagnostic for common
mistakes, and (hypothesis) that any layout of a profile parses to the same AST and
that no input makes the parser fail with anything but a VirtunedError."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests import strategies
from virtuned.diagnostics import ExitCode, Sources, Span, VirtunedError, render
from virtuned.syntax.ast import (And, Assignment, Declaration, FactTest, Header, Include,
                                 Literal, Not, Or, Param, ParamRef, Prefer, String, TraitLine, When, Word)
from virtuned.syntax.parser import parse


def W(text):
    return Word(text)


def L(text):
    return Literal(text)


def line(*items):
    """A trait line; plain str items are words."""
    return TraitLine(tuple(W(i) if isinstance(i, str) else i for i in items))


def fact(*items):
    return FactTest(tuple(W(i) if isinstance(i, str) else i for i in items))


def statements(text):
    return parse(text, "t.vt").statements


def diagnose(text: str, filename: str = "t.vt") -> str:
    """The rendered diagnostic (with source line and caret) of a text that must fail."""
    with pytest.raises(VirtunedError) as info:
        parse(text, filename)
    error = info.value
    assert error.exit_code == ExitCode.INVALID_INPUT
    assert len(error.diagnostics) == 1
    sources = Sources()
    sources.add(filename, text)
    return render(error.diagnostics[0], sources)


# ---------------------------------------------------------------- each construct

CONSTRUCTS = {
    # header
    "profile nfv-guest 1.2.0": (Header("nfv-guest", "1.2.0", None),),
    'profile nfv-guest 1.2.0 "Pinned, hugepage-backed guest"':
        (Header("nfv-guest", "1.2.0", "Pinned, hugepage-backed guest"),),
    "profile p 10.20.30-rc.1": (Header("p", "10.20.30-rc.1", None),),
    "profile p 1.0.0+build.5": (Header("p", "1.0.0+build.5", None),),
    'profile p 1.0.0 ""': (Header("p", "1.0.0", ""),),
    # include
    "include base-q35": (Include("base-q35", None, ()),),
    "include base-q35 ^1.0": (Include("base-q35", "^1.0", ()),),
    "include base ~1.2": (Include("base", "~1.2", ()),),
    "include base >=1.0": (Include("base", ">=1.0", ()),),
    "include base <2": (Include("base", "<2", ()),),
    "include base =1.2.3": (Include("base", "=1.2.3", ()),),
    "include base 1.2.3": (Include("base", "1.2.3", ()),),
    "include base with queues = 8":
        (Include("base", None, (Assignment("queues", L("8")),)),),
    'include nfv ^1 with queues = 4, size = 1GiB, mode = strict, tag = "a b", node = $n':
        (Include("nfv", "^1", (Assignment("queues", L("4")), Assignment("size", L("1GiB")),
                               Assignment("mode", W("strict")),
                               Assignment("tag", String("a b")),
                               Assignment("node", ParamRef("n")))),),
    # a comma continues a literal only before a digit or '^'
    "include x with a=1,b=2":
        (Include("x", None, (Assignment("a", L("1")), Assignment("b", L("2")))),),
    "include x with cpus = 0-3,8,^2, b = 2":
        (Include("x", None, (Assignment("cpus", L("0-3,8,^2")), Assignment("b", L("2")))),),
    # param
    "param queues: int": (Param("queues", "int", False, None),),
    "param queues: int = 4": (Param("queues", "int", False, L("4")),),
    "param node: int?": (Param("node", "int", True, None),),
    "param node: int? = 0": (Param("node", "int", True, L("0")),),
    "param size:size=1GiB": (Param("size", "size", False, L("1GiB")),),
    'param label: str = "vm \\"one\\""': (Param("label", "str", False, String('vm "one"')),),
    "param model: word = qxl": (Param("model", "word", False, W("qxl")),),
    "param q: int = $other": (Param("q", "int", False, ParamRef("other")),),
    # trait lines: words and every kind of literal
    "video qxl": (line("video", "qxl"),),
    "dedicated cpus threads isolate": (line("dedicated", "cpus", "threads", "isolate"),),
    "vcpus 4": (line("vcpus", L("4")),),
    "hugepages 1GiB": (line("hugepages", L("1GiB")),),
    "memory 2M": (line("memory", L("2M")),),
    "cpuset 0-3,8,^2": (line("cpuset", L("0-3,8,^2")),),
    "ratio 1.5 GiB": (line("ratio", L("1.5"), "GiB"),),
    "nfv networking queues $queues": (line("nfv", "networking", "queues", ParamRef("queues")),),
    "x $a$b": (line("x", ParamRef("a"), ParamRef("b")),),
    "a-b.c+d _e x86_64": (line("a-b.c+d", "_e", "x86_64"),),
    'title "Web server"': (line("title", String("Web server")),),
    'title ""': (line("title", String("")),),
    r'title "quote \" backslash \\ newline \n tab \t other \q"':
        (line("title", String('quote " backslash \\ newline \n tab \t other q')),),
    'title "raw\ttab"': (line("title", String("raw\ttab")),),
    'title "caf\u00e9 \u2603 \U0001f600"': (line("title", String("caf\u00e9 \u2603 \U0001f600")),),
    # prefer
    "prefer device numa affinity": (Prefer(line("device", "numa", "affinity")),),
    "prefer hugepages 1GiB": (Prefer(line("hugepages", L("1GiB"))),),
    # keywords are words wherever the grammar cannot take them as keywords
    "video when": (line("video", "when"),),
    "a not b": (line("a", "not", "b"),),
    "a and": (line("a", "and"),),
    "with": (line("with"),),
    "not x": (line("not", "x"),),
    "prefer prefer x": (Prefer(line("prefer", "x")),),
    "include when": (Include("when", None, ()),),
    "param not: or = profile": (Param("not", "or", False, W("profile")),),
    "profile when 1.0.0": (Header("when", "1.0.0", None),),
    # ';' ends a statement as a line break does
    "video qxl; hugepages 1GiB": (line("video", "qxl"), line("hugepages", L("1GiB"))),
    "when a { b; c }": (When(fact("a"), (line("b"), line("c"))),),
    # a composite trait's declaration
    'trait "fast net" 2 "virtio, queues" { network model virtio; prefer network queues auto }':
        (Declaration(String("fast net"), L("2"), String("virtio, queues"),
                     (line("network", "model", "virtio"),
                      Prefer(line("network", "queues", "auto")))),),
    'trait "x" {\n  a\n}': (Declaration(String("x"), None, None, (line("a"),)),),
}


@pytest.mark.parametrize("text", CONSTRUCTS)
def test_construct(text):
    assert statements(text) == CONSTRUCTS[text]
    assert statements(text + "\n") == CONSTRUCTS[text]


WHEN = {
    "when node { place on host node $node }":
        When(fact("node"), (line("place", "on", "host", "node", ParamRef("node")),)),
    "when machine q35 {\n    pcie root ports 8\n}":
        When(fact("machine", "q35"), (line("pcie", "root", "ports", L("8")),)),
    'when os family "windows" {\n}': When(fact("os", "family", String("windows")), ()),
    "when a {}": When(fact("a"), ()),
    "when a { }": When(fact("a"), ()),
    "when a { # comment\n}": When(fact("a"), ()),
    "when a { b\n c }": When(fact("a"), (line("b"), line("c"))),
    "when a {\n  b\n  c }": When(fact("a"), (line("b"), line("c"))),
    "when a { prefer b }": When(fact("a"), (Prefer(line("b")),)),
    "when a { include b ^1 }": When(fact("a"), (Include("b", "^1", ()),)),
    "when a { param p: int }": When(fact("a"), (Param("p", "int", False, None),)),
    "when a {\n  profile p 1.0.0\n}": When(fact("a"), (Header("p", "1.0.0", None),)),
    "when a and b { x }": When(And((fact("a"), fact("b"))), (line("x"),)),
    "when a or b { x }": When(Or((fact("a"), fact("b"))), (line("x"),)),
    "when not a { x }": When(Not(fact("a")), (line("x"),)),
    "when not not a { x }": When(Not(Not(fact("a"))), (line("x"),)),
    # chains flatten; parentheses nest
    "when a and b and c { x }": When(And((fact("a"), fact("b"), fact("c"))), (line("x"),)),
    "when a or b or c { x }": When(Or((fact("a"), fact("b"), fact("c"))), (line("x"),)),
    "when (a and b) and c { x }":
        When(And((And((fact("a"), fact("b"))), fact("c"))), (line("x"),)),
    "when a and (b and c) { x }":
        When(And((fact("a"), And((fact("b"), fact("c"))))), (line("x"),)),
    "when (a) { x }": When(fact("a"), (line("x"),)),
    "when ((a)) { x }": When(fact("a"), (line("x"),)),
    # precedence: not > and > or
    "when a or b and c { x }": When(Or((fact("a"), And((fact("b"), fact("c"))))), (line("x"),)),
    "when a and b or c { x }": When(Or((And((fact("a"), fact("b"))), fact("c"))), (line("x"),)),
    "when (a or b) and c { x }":
        When(And((Or((fact("a"), fact("b"))), fact("c"))), (line("x"),)),
    "when not a and b { x }": When(And((Not(fact("a")), fact("b"))), (line("x"),)),
    "when not (a and b) { x }": When(Not(And((fact("a"), fact("b")))), (line("x"),)),
    "when not (a or b) and c or d { x }":
        When(Or((And((Not(Or((fact("a"), fact("b")))), fact("c"))), fact("d"))), (line("x"),)),
    # fact tests take any items; keywords the condition cannot take are words
    "when machine q35 and arch x86_64 { x }":
        When(And((fact("machine", "q35"), fact("arch", "x86_64"))), (line("x"),)),
    'when host hugepages 1GiB $n "s" { x }':
        When(fact("host", "hugepages", L("1GiB"), ParamRef("n"), String("s")), (line("x"),)),
    "when a not b { x }": When(fact("a", "not", "b"), (line("x"),)),
    "when a with b { x }": When(fact("a", "with", "b"), (line("x"),)),
    "when profile { x }": When(fact("profile"), (line("x"),)),
    # nesting
    "when a {\n    when b {\n        c\n    }\n    d\n}":
        When(fact("a"), (When(fact("b"), (line("c"),)), line("d"))),
    "when a { when b {\n}\n}": When(fact("a"), (When(fact("b"), ()),)),
}


@pytest.mark.parametrize("text", WHEN)
def test_when(text):
    assert statements(text) == (WHEN[text],)


def test_whole_profile():
    text = """\
# The example profile of DESIGN.md.
profile nfv-guest 1.2.0 "Pinned, hugepage-backed guest for packet processing"
include base-q35 ^1.0            # another profile, with a version range
param queues: int = 4           # typed, overridable by the caller
param node: int?                # optional

dedicated cpus threads isolate  # required by default
emulator threads isolated
hugepages 1GiB
nfv networking queues $queues
prefer device numa affinity     # soft: dropped with a warning when it cannot hold
when node { place on host node $node }
when machine q35 { pcie root ports 8 }
"""
    profile = parse(text, "nfv.vt")
    assert profile.source == "nfv.vt"
    assert profile.header == Header(
        "nfv-guest", "1.2.0", "Pinned, hugepage-backed guest for packet processing")
    assert profile.statements == (
        profile.header,
        Include("base-q35", "^1.0", ()),
        Param("queues", "int", False, L("4")),
        Param("node", "int", True, None),
        line("dedicated", "cpus", "threads", "isolate"),
        line("emulator", "threads", "isolated"),
        line("hugepages", L("1GiB")),
        line("nfv", "networking", "queues", ParamRef("queues")),
        Prefer(line("device", "numa", "affinity")),
        When(fact("node"), (line("place", "on", "host", "node", ParamRef("node")),)),
        When(fact("machine", "q35"), (line("pcie", "root", "ports", L("8")),)),
    )


@pytest.mark.parametrize("text", ["", "\n", "\n\n  \n", "# only a comment",
                                  "# one\n\n\t# two\n", "\r\n", "   "])
def test_nothing(text):
    assert statements(text) == ()


@pytest.mark.parametrize("text", [
    "video qxl\nhugepages 1GiB\n",
    "video qxl\r\nhugepages 1GiB\r\n",
    "video qxl\r\nhugepages 1GiB",
    "\n\n  video\tqxl   # a comment\n\n# another\nhugepages   1GiB\n\n",
    "\tvideo qxl\n        hugepages 1GiB # \"not a string\" { not a block\n",
])
def test_layout_is_not_meaning(text):
    assert statements(text) == (line("video", "qxl"), line("hugepages", L("1GiB")))


def test_profile_header_property():
    assert parse("video qxl\n", "t.vt").header is None
    assert parse("video qxl\nprofile p 1.0.0\n", "t.vt").header == Header("p", "1.0.0", None)


def test_spans():
    profile = parse('when machine q35 {\n    video  qxl "a"\n}\n', "t.vt")
    when = profile.statements[0]
    assert when.span == Span("t.vt", 1, 1, 4, 1)  # ends after the newline of '}'
    assert when.condition.span == Span("t.vt", 1, 6, 1, 17)
    trait = when.body[0]
    assert trait.span == Span("t.vt", 2, 5, 2, 19)
    assert [i.span for i in trait.items] == [
        Span("t.vt", 2, 5, 2, 10), Span("t.vt", 2, 12, 2, 15), Span("t.vt", 2, 16, 2, 19)]
    include = parse("include base ^1.0 with a = 1\n", "i.vt").statements[0]
    assert include.span == Span("i.vt", 1, 1, 1, 29)
    assert include.assignments[0].span == Span("i.vt", 1, 24, 1, 29)


def test_spans_take_no_part_in_equality():
    assert parse("video qxl", "a.vt") == parse("\n\n   video    qxl # x", "b.vt")


@pytest.mark.parametrize("text", ["a b and", "a b or c", "x 1 and", "prefer a b and"])
def test_and_or_are_words_at_every_position_of_a_trait_line(text):
    # Trait lines and 'when' conditions use separate repetition rules, so LALR never
    # merges their states and 'and'/'or' stay keywords only inside conditions.
    (statement,) = parse(text, "t.vt").statements
    line = statement.trait if isinstance(statement, Prefer) else statement
    assert line.words == text.removeprefix("prefer ")


# ---------------------------------------------------------------- diagnostics

MISTAKES = {
    "video = qxl": """\
t.vt:1:7: error: unexpected '=', expected a $param, a number or size, a quoted string, a word or end of line
    video = qxl
          ^
hint: trait lines take no '='; write the value after the words, as in 'video qxl'""",

    "hugepages: 1GiB": """\
t.vt:1:10: error: unexpected ':', expected a $param, a number or size, a quoted string, a word or end of line
    hugepages: 1GiB
             ^
hint: only 'param NAME: TYPE' uses ':'""",

    "when machine q35 {\n    video qxl\n": """\
t.vt:1:18: error: this block is never closed: the file ends before its '}'
    when machine q35 {
                     ^
hint: a 'when ... {' or 'trait ... {' block is still open; close it with '}'""",

    "when a {\n  when b {\n  c\n}\n": """\
t.vt:1:8: error: this block is never closed: the file ends before its '}'
    when a {
           ^
hint: a 'when ... {' or 'trait ... {' block is still open; close it with '}'""",

    "}": """\
t.vt:1:1: error: unexpected '}', expected a word or end of line
    }
    ^
hint: '}' closes a 'when ... {' or 'trait ... {' block; there is no open block here""",

    "when a {\n    b\n}\n}\n": """\
t.vt:4:1: error: unexpected '}', expected 'include', 'param', 'prefer', 'profile', 'trait', 'when', a word, end of file or end of line
    }
    ^
hint: '}' closes a 'when ... {' or 'trait ... {' block; there is no open block here""",

    "video 'qxl'": """\
t.vt:1:7: error: unexpected character "'"
    video 'qxl'
          ^
hint: strings use double quotes""",

    "param queues int = 4": """\
t.vt:1:14: error: unexpected 'int', expected ':'
    param queues int = 4
                 ^""",

    "param node: int??": """\
t.vt:1:17: error: unexpected '?', expected '=' or end of line
    param node: int??
                    ^""",

    "param x: int =": """\
t.vt:1:15: error: unexpected end of line, expected a $param, a number or size, a quoted string or a word
    param x: int =
                  ^""",

    "profile nfv-guest 1.2": """\
t.vt:1:19: error: unexpected '1.2', expected a version like 1.0.0
    profile nfv-guest 1.2
                      ^""",

    "profile": """\
t.vt:1:8: error: unexpected end of line, expected a word
    profile
           ^""",

    'title "unterminated': """\
t.vt:1:7: error: unexpected character '"'
    title "unterminated
          ^""",

    "when {\n}": """\
t.vt:1:6: error: unexpected '{', expected '(' or a word
    when {
         ^""",

    "when a and {\n}": """\
t.vt:1:12: error: unexpected '{', expected '(' or a word
    when a and {
               ^""",

    "when (machine q35 or arch x86_64 {\n}": """\
t.vt:1:34: error: unexpected '{', expected ')'
    when (machine q35 or arch x86_64 {
                                     ^""",

    "include": """\
t.vt:1:8: error: unexpected end of line, expected a word
    include
           ^""",

    "include base with queues": """\
t.vt:1:25: error: unexpected end of line, expected '='
    include base with queues
                            ^""",

    "include base with a = 1,": """\
t.vt:1:25: error: unexpected end of line, expected a word
    include base with a = 1,
                            ^""",

    "include x 1.0 1.0": """\
t.vt:1:15: error: unexpected '1.0', expected 'with' or end of line
    include x 1.0 1.0
                  ^""",

    "prefer": """\
t.vt:1:7: error: unexpected end of line, expected a word
    prefer
          ^""",

    "dedicated cpus $": """\
t.vt:1:16: error: unexpected character '$'
    dedicated cpus $
                   ^""",

    "place on host node $1": """\
t.vt:1:20: error: unexpected character '$'
    place on host node $1
                       ^""",

    # the error is on the right line of a longer file, CRLF or not
    "video qxl\nhugepages 1GiB\nvcpus = 4\n": """\
t.vt:3:7: error: unexpected '=', expected a $param, a number or size, a quoted string, a word or end of line
    vcpus = 4
          ^
hint: trait lines take no '='; write the value after the words, as in 'video qxl'""",

    "video qxl\r\nhugepages 1GiB\r\nvcpus = 4\r\n": """\
t.vt:3:7: error: unexpected '=', expected a $param, a number or size, a quoted string, a word or end of line
    vcpus = 4
          ^
hint: trait lines take no '='; write the value after the words, as in 'video qxl'""",

    # tabs are expanded on both lines, so the caret stays under its column
    "\tvideo = qxl": """\
t.vt:1:8: error: unexpected '=', expected a $param, a number or size, a quoted string, a word or end of line
            video = qxl
                  ^
hint: trait lines take no '='; write the value after the words, as in 'video qxl'""",

    "when a {\n\tb = c\n}": """\
t.vt:2:4: error: unexpected '=', expected '}', a $param, a number or size, a quoted string, a word or end of line
            b = c
              ^
hint: trait lines take no '='; write the value after the words, as in 'video qxl'""",

    # a lone carriage return is not a line break (lark counts "\\n" only)
    "x\ry\n": """\
t.vt:1:2: error: unexpected character '\\r'
    x
     ^""",
}


@pytest.mark.parametrize("text", MISTAKES)
def test_mistake(text):
    assert diagnose(text) == MISTAKES[text]


@pytest.mark.parametrize("text", ["when a\n{\n}", "when machine q35\n{\n}"])
def test_missing_brace_does_not_ask_for_a_parenthesis(text):
    first = text.split("\n")[0]
    assert diagnose(text) == (
        f"t.vt:1:{len(first) + 1}: error: unexpected end of line, expected '{{', a $param, "
        "a number or size, a quoted string or a word\n"
        f"    {first}\n"
        f"    {' ' * len(first)}^\n"
        "hint: a block's '{' goes at the end of its 'when' or 'trait' line")


def test_diagnostic_names_the_file():
    rendered = diagnose("video = qxl", filename="profiles/nfv.vt")
    assert rendered.startswith("profiles/nfv.vt:1:7: error: ")


@pytest.mark.parametrize("text", [
    # characters str.splitlines() takes for line breaks, but lark does not
    "# a\x0cb\nyyyy @",
    'x "a\u2028b"\nyyyy @',
    "# \x85\nwhen a {\n",
    "x\x1c\ny @",
    "x\r\ny\rz\n",
])
def test_unusual_line_breaks_give_a_diagnostic(text):
    with pytest.raises(VirtunedError):
        parse(text, "t.vt")


def test_unclosed_block_after_unusual_line_break():
    assert diagnose("# \x85\nwhen a {\n").startswith(
        "t.vt:2:8: error: this block is never closed")


# ---------------------------------------------------------------- properties

@settings(max_examples=100, deadline=None)
@given(strategies.profile_sources())
def test_any_layout_parses_to_its_ast(source):
    text, profile = source
    assert parse(text, "t.vt") == profile


# Text from the language's own characters, and near-misses of valid profiles: the
# parser returns a profile or raises VirtunedError, and the diagnostic renders.
_FUZZ_ALPHABET = [*"abcxyz019 \t\n\r{}()=:,?$\"\\#^.-+~<>;'@\x0c\x85\u2028",
                  "when ", "and ", "or ", "not ", "profile ", "include ", "param ",
                  "prefer ", "with ", "1.0.0 ", "^1.0 ", "1GiB "]


@st.composite
def _near_misses(draw):
    text, _ = draw(strategies.profile_sources())
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(text)))
        junk = "".join(draw(st.lists(st.sampled_from(_FUZZ_ALPHABET), max_size=3)))
        cut = draw(st.integers(0, 2))
        text = text[:at] + junk + text[at + cut:]
    return text


def _parse_or_diagnose(text):
    try:
        parse(text, "f.vt")
    except VirtunedError as error:
        assert error.exit_code == ExitCode.INVALID_INPUT
        sources = Sources()
        sources.add("f.vt", text)
        for diagnostic in error.diagnostics:
            assert render(diagnostic, sources).startswith("f.vt:")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(_FUZZ_ALPHABET), max_size=30).map("".join)
       | st.text(max_size=20))
def test_random_text_parses_or_gives_a_diagnostic(text):
    _parse_or_diagnose(text)


@settings(max_examples=100, deadline=None)
@given(_near_misses())
def test_near_misses_parse_or_give_a_diagnostic(text):
    _parse_or_diagnose(text)


def test_blocks_nest_at_most_16_deep():
    assert parse("when a {\n" * 16 + "b\n" + "}\n" * 16, "t.vt")
    assert diagnose("when a {\n" * 300 + "b\n" + "}\n" * 300) == """\
t.vt:17:1: error: 'when' blocks nest more than 16 deep here
    when a {
    ^
hint: combine the conditions with 'and'"""


def test_conditions_nest_at_most_32_operators_deep():
    assert parse("when " + "not " * 32 + "a { b }", "t.vt")
    assert diagnose("when " + "not " * 1000 + "a { b }").splitlines()[0] == (
        "t.vt:1:138: error: this condition nests more than 32 operators deep")
