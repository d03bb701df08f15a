"""The formatter: the canonical text of every construct, and (hypothesis) that it
keeps the AST (``parse(format(ast)) == ast``), is idempotent, and gives one text
whatever the layout of its input."""

from __future__ import annotations

import pytest
from hypothesis import given, settings

from tests import strategies
from virtuned.syntax import ast
from virtuned.syntax.format import format_condition, format_profile
from virtuned.syntax.parser import parse


def fmt(text: str) -> str:
    return format_profile(parse(text, "t.vt"))


CANONICAL = {
    # header
    "profile   nfv-guest\t1.2.0": "profile nfv-guest 1.2.0\n",
    'profile nfv-guest 1.2.0    "Pinned guest"  # c': 'profile nfv-guest 1.2.0 "Pinned guest"  # c\n',
    # include
    "include   base-q35": "include base-q35\n",
    "include base-q35    ^1.0": "include base-q35 ^1.0\n",
    "include x with a=1,b=2": "include x with a = 1, b = 2\n",
    'include x ~1.2 with  q = $q ,tag="t"': 'include x ~1.2 with q = $q, tag = "t"\n',
    "include x with cpus = 0-3,8,^2": "include x with cpus = 0-3,8,^2\n",
    # param
    "param queues:int": "param queues: int\n",
    "param queues : int=4": "param queues: int = 4\n",
    "param node:int?": "param node: int?\n",
    "param node: int ?": "param node: int?\n",
    "param node:int?=0": "param node: int? = 0\n",
    # trait lines
    "video    qxl": "video qxl\n",
    "\tcpuset\t0-3,8,^2": "cpuset 0-3,8,^2\n",
    "hugepages 1GiB   # comment": "hugepages 1GiB  # comment\n",
    "x $a$b": "x $a $b\n",
    # strings: the canonical escapes are \" \\ \n \t; any other escape is the character
    'title "a\tb"': 'title "a\\tb"\n',
    r'title "\q\u\"\\"': r'title "qu\"\\"' + "\n",
    'title "caf\u00e9"': 'title "caf\u00e9"\n',
    # prefer
    "prefer   device numa affinity": "prefer device numa affinity\n",
    # when: always a block, four spaces per level
    "when node { place on host node $node }":
        "when node {\n    place on host node $node\n}\n",
    "when a {}": "when a {\n}\n",
    "when a { b\n c }": "when a {\n    b\n    c\n}\n",
    "when a {\n when b {\n c\n }\n}": "when a {\n    when b {\n        c\n    }\n}\n",
    # conditions: redundant parentheses go; a compound inside another gets them
    "when ((a)) { x }": "when a {\n    x\n}\n",
    "when a and b and c { x }": "when a and b and c {\n    x\n}\n",
    "when a or b and c { x }": "when a or (b and c) {\n    x\n}\n",
    "when (a and b) and c { x }": "when (a and b) and c {\n    x\n}\n",
    "when not (a or b) and c or d { x }": "when (not (a or b) and c) or d {\n    x\n}\n",
    "when not not a { x }": "when not not a {\n    x\n}\n",
    # comments stay; runs of blank lines become one; CRLF becomes LF
    "\n\n# c\nvideo qxl\r\n\r\n\r\nhugepages 1GiB # c\n\n":
        "# c\nvideo qxl\n\nhugepages 1GiB  # c\n",
    "": "",
    "# only a comment\n": "# only a comment\n",
    "when a { # open\n  # in\n  b\n} # shut": "when a {  # open\n    # in\n    b\n}  # shut\n",
}


@pytest.mark.parametrize("text", CANONICAL)
def test_canonical_text(text):
    assert fmt(text) == CANONICAL[text]


def test_design_example():
    text = """\
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
    assert fmt(text) == """\
profile nfv-guest 1.2.0 "Pinned, hugepage-backed guest for packet processing"
include base-q35 ^1.0  # another profile, with a version range
param queues: int = 4  # typed, overridable by the caller
param node: int?  # optional

dedicated cpus threads isolate  # required by default
emulator threads isolated
hugepages 1GiB
nfv networking queues $queues
prefer device numa affinity  # soft: dropped with a warning when it cannot hold
when node {
    place on host node $node
}
when machine q35 {
    pcie root ports 8
}
"""


def test_format_hand_built_ast():
    fact = ast.FactTest((ast.Word("a"),))
    profile = ast.Profile("<built>", (
        ast.Header("p", "1.0.0", 'say "hi"\n\tbye \\'),
        ast.TraitLine((ast.Word("x"), ast.String(""), ast.Literal("4"), ast.ParamRef("p"))),
        ast.When(ast.Or((ast.And((fact, ast.Not(fact))), ast.Not(ast.Or((fact, fact))))), ()),
    ))
    text = format_profile(profile)
    assert text == ('profile p 1.0.0 "say \\"hi\\"\\n\\tbye \\\\"\n'
                    'x "" 4 $p\n'
                    "when (a and not a) or not (a or a) {\n}\n")
    assert parse(text, "t.vt") == profile


@pytest.mark.parametrize("condition, text", [
    (ast.FactTest((ast.Word("machine"), ast.Word("q35"))), "machine q35"),
    (ast.Not(ast.FactTest((ast.Word("a"),))), "not a"),
    (ast.And((ast.FactTest((ast.Word("a"),)), ast.FactTest((ast.Word("b"),)))), "a and b"),
    (ast.Or((ast.Not(ast.And((ast.FactTest((ast.Word("a"),)),
                              ast.FactTest((ast.Word("b"),))))),
             ast.FactTest((ast.Word("c"),)))), "not (a and b) or c"),
])
def test_format_condition(condition, text):
    assert format_condition(condition) == text


def test_format_keeps_comments():
    text = "# Guests for the packet-processing cluster.\nvideo qxl  # spice clients\n"
    assert fmt(text) == text


# ---------------------------------------------------------------- properties

@settings(max_examples=150, deadline=None)
@given(strategies.profiles())
def test_format_keeps_the_ast_and_is_idempotent(profile):
    once = format_profile(profile)
    assert parse(once, "t.vt") == profile
    assert format_profile(parse(once, "t.vt")) == once


@settings(max_examples=80, deadline=None)
@given(strategies.profile_sources())
def test_format_does_not_depend_on_layout(source):
    text, profile = source
    formatted = fmt(text)
    assert parse(formatted, "t.vt") == profile
    assert fmt(formatted) == formatted
    # Every comment survives, in order.
    assert [c.text for c in parse(formatted, "t.vt").comments] == \
        [c.text for c in parse(text, "t.vt").comments]


def test_format_declarations():
    assert fmt('trait "a  b" 1 "doc" { video qxl; prefer disk bus virtio\n guest agent }\n'
               'trait "c" 2 "d" { a b }') == '''\
trait "a  b" 1 "doc" {
    video qxl
    prefer disk bus virtio
    guest agent
}
trait "c" 2 "d" {
    a b
}
'''
