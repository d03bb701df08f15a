"""Shared hypothesis strategies: trait-language ASTs and texts, and domain XML.

Trait language
    ``profiles()`` draws an ``ast.Profile``; ``profile_sources()`` draws a pair
    ``(text, profile)``: the same profile written out with a random but valid layout
    (comments, blank lines, CRLF, tabs, extra spaces and parentheses, one-line
    ``when`` blocks, alternative string escapes), so ``parse(text) == profile``.
    Generated words never are the language's keywords; ``tests/syntax`` tests those
    by hand.

Domain XML
    ``domain_documents()`` draws the bytes of a random document whose root is a
    ``<domain>`` with arbitrary element trees, attributes, text, CDATA, character and
    entity references, comments, processing instructions, namespaced metadata and
    varied whitespace; ``realistic_domains()`` draws one built from libvirt's own
    elements. Both always carry ``@type``, ``<name>``, ``<memory>`` and
    ``<os><type arch machine>hvm</type></os>``, the things completion would otherwise
    add, so compiling them with no traits must give back the input. Pass
    ``complete=False`` to leave some of those out.
"""

from __future__ import annotations

import functools
import re

from hypothesis import strategies as st

from virtuned import domain
from virtuned.syntax import ast


# Strategies are built once: building them inside draws (regexes above all) costs far
# more than drawing from them.
@functools.cache
def _choice(*options):
    return st.sampled_from(options)


@functools.cache
def _ints(low: int, high: int):
    return st.integers(low, high)


_BOOL = st.booleans()

# ---------------------------------------------------------------- trait language

KEYWORDS = frozenset({"profile", "include", "param", "when", "prefer", "not", "and",
                      "or", "with"})

# Bounded versions of the grammar's terminals (grammar/virtuned.lark), so that
# generated tokens stay short; every string they match also matches the real one.
WORD_RE = r"[A-Za-z_][A-Za-z0-9_.+-]{0,7}"
LITERAL_RE = r"[0-9][A-Za-z0-9_.^-]{0,5}(,[0-9^][A-Za-z0-9_.^-]{0,3}){0,2}"
VERSION_RE = r"[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}([-+][A-Za-z0-9.-]{1,6})?"
RANGE_RE = r"(\^|~|>=|<=|>|<|=)?[0-9]{1,3}(\.[0-9]{1,3}){0,2}"
PARAM_RE = r"[A-Za-z_][A-Za-z0-9_]{0,7}"

VOCABULARY = ("video", "qxl", "virtio", "hugepages", "dedicated", "cpus", "threads",
              "isolate", "emulator", "isolated", "place", "on", "host", "node",
              "machine", "q35", "pc", "arch", "x86_64", "os", "family", "windows",
              "disk", "bus", "sata", "agent", "nfv", "networking", "queues", "int",
              "size", "cpuset", "str", "base-q35", "nfv-guest", "pcie", "root", "ports")
SAMPLE_LITERALS = ("0", "4", "8", "1GiB", "2M", "512MiB", "0-3,8,^2", "0-3", "1.2.0",
                   "16", "0,2,4-7", "1e3")


@functools.cache
def words() -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(VOCABULARY),
        st.from_regex(WORD_RE, fullmatch=True),
    ).filter(lambda w: w not in KEYWORDS)


@functools.cache
def literals() -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(SAMPLE_LITERALS),
                     st.from_regex(LITERAL_RE, fullmatch=True))


@functools.cache
def string_values() -> st.SearchStrategy[str]:
    """Any text without surrogates: the language escapes '"', '\\', newline, tab."""
    return st.one_of(
        st.sampled_from(["", "Pinned guest", 'say "hi"', "back\\slash", "tab\there",
                         "two\nlines", "caf\u00e9 \u2603"]),
        st.text(st.characters(exclude_categories=("Cs",)), max_size=6),
    )


@functools.cache
def items() -> st.SearchStrategy[ast.Item]:
    return st.one_of(
        words().map(ast.Word),
        literals().map(ast.Literal),
        string_values().map(ast.String),
        st.from_regex(PARAM_RE, fullmatch=True).map(ast.ParamRef),
    )


@functools.cache
def trait_lines() -> st.SearchStrategy[ast.TraitLine]:
    return st.builds(lambda first, rest: ast.TraitLine((ast.Word(first), *rest)),
                     words(), st.lists(items(), max_size=3))


@functools.cache
def headers() -> st.SearchStrategy[ast.Header]:
    return st.builds(ast.Header, words(), st.from_regex(VERSION_RE, fullmatch=True),
                     st.none() | string_values())


@functools.cache
def includes() -> st.SearchStrategy[ast.Include]:
    assignment = st.builds(ast.Assignment, words(), items())
    return st.builds(ast.Include, words(),
                     st.none() | st.from_regex(RANGE_RE, fullmatch=True),
                     st.lists(assignment, max_size=3).map(tuple))


@functools.cache
def params() -> st.SearchStrategy[ast.Param]:
    return st.builds(ast.Param, words(), words(), st.booleans(), st.none() | items())


@functools.cache
def prefers() -> st.SearchStrategy[ast.Prefer]:
    return trait_lines().map(ast.Prefer)


@functools.cache
def fact_tests() -> st.SearchStrategy[ast.FactTest]:
    return st.builds(lambda first, rest: ast.FactTest((ast.Word(first), *rest)),
                     words(), st.lists(items(), max_size=2))


@functools.cache
def conditions() -> st.SearchStrategy[ast.Condition]:
    def extend(inner):
        operands = st.lists(inner, min_size=2, max_size=3).map(tuple)
        return st.one_of(inner.map(ast.Not), operands.map(ast.And), operands.map(ast.Or))

    return st.recursive(fact_tests(), extend, max_leaves=4)


@functools.cache
def simple_statements() -> st.SearchStrategy[ast.Statement]:
    return st.one_of(trait_lines(), prefers(), includes(), params(), headers())


@functools.cache
def statements() -> st.SearchStrategy[ast.Statement]:
    def extend(inner):
        return st.builds(ast.When, conditions(), st.lists(inner, max_size=3).map(tuple))

    return st.recursive(simple_statements(), extend, max_leaves=6)


@functools.cache
def declarations() -> st.SearchStrategy[ast.Declaration]:
    """``trait "PHRASE" VERSION "doc" { ... }`` (a top-level statement only)."""
    return st.builds(ast.Declaration, string_values().map(ast.String),
                     st.none() | literals().map(ast.Literal),
                     st.none() | string_values().map(ast.String),
                     st.lists(st.one_of(trait_lines(), prefers()), max_size=3).map(tuple))


@functools.cache
def profiles() -> st.SearchStrategy[ast.Profile]:
    return st.lists(statements() | declarations(), max_size=5).map(
        lambda stmts: ast.Profile(source="<generated>", statements=tuple(stmts)))


# ---- the same profiles, written out with a random layout

_COMMENT_TEXT = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\n"),
                        max_size=10)


@st.composite
def profile_sources(draw, profile_strategy=None) -> tuple[str, ast.Profile]:
    """``(text, profile)`` where ``parse(text) == profile``, with a random layout."""
    profile = draw(profile_strategy if profile_strategy is not None else profiles())
    writer = _Writer(draw)
    writer.filler()
    for stmt in profile.statements:
        writer.statement(stmt, 0)
        writer.filler()
    text = "".join(writer.out)
    if text.endswith("\n") and draw(_BOOL):
        # parse() accepts a file without its last newline (unless it is inside a string
        # or ends a comment line with "\r", which we never write).
        text = text[:-1].removesuffix("\r")
    return text, profile


class _Writer:
    def __init__(self, draw):
        self.draw = draw
        self.out: list[str] = []

    # whitespace and comments
    def sep(self) -> str:
        return self.draw(_choice(" ", " ", " ", "  ", "\t", " \t "))

    def opt_sep(self) -> str:
        return self.draw(_choice("", "", " ", "\t"))

    def indent(self, depth: int) -> str:
        unit = self.draw(_choice("    ", "  ", "\t", ""))
        return unit * depth + self.draw(_choice("", "", " "))

    def newline(self) -> str:
        comment = ""
        if self.draw(_ints(0, 4)) == 0:
            comment = self.opt_sep() + " #" + self.draw(_COMMENT_TEXT)
        # "# x\r\n": the comment ends before "\n", so its "\r" is part of the comment.
        return comment + self.draw(_choice("\n", "\n", "\r\n"))

    def filler(self) -> None:
        for _ in range(self.draw(_ints(0, 2))):
            self.out.append(self.draw(_choice("", "  ", "\t")))
            if self.draw(_BOOL):
                self.out.append("#" + self.draw(_COMMENT_TEXT))
            self.out.append(self.draw(_choice("\n", "\r\n")))

    # tokens
    def item(self, item: ast.Item) -> str:
        if isinstance(item, ast.String):
            return self.string(item.value)
        return str(item)

    def string(self, value: str) -> str:
        out = ['"']
        for ch in value:
            if ch == "\n":
                out.append("\\n")
            elif ch == "\t":
                out.append(self.draw(_choice("\\t", "\t", "\\\t")))
            elif ch in '"\\':
                out.append("\\" + ch)
            elif ch in "nt":  # "\n" and "\t" are escapes, so these stay bare
                out.append(ch)
            else:  # any other character may be escaped: "\q" is "q"
                out.append(self.draw(_choice(ch, ch, "\\" + ch)))
        out.append('"')
        return "".join(out)

    def items(self, items) -> str:
        return "".join(self.sep() + self.item(i) for i in items)

    # statements
    def line(self, stmt: ast.Statement) -> str:
        s = self.sep
        if isinstance(stmt, ast.TraitLine):
            return self.item(stmt.items[0]) + self.items(stmt.items[1:])
        if isinstance(stmt, ast.Prefer):
            return "prefer" + s() + self.line(stmt.trait)
        if isinstance(stmt, ast.Header):
            summary = "" if stmt.summary is None else s() + self.string(stmt.summary)
            return f"profile{s()}{stmt.name}{s()}{stmt.version}{summary}"
        if isinstance(stmt, ast.Include):
            text = f"include{s()}{stmt.name}"
            if stmt.range is not None:
                text += s() + stmt.range
            for n, a in enumerate(stmt.assignments):
                text += (s() + "with" + s()) if n == 0 else (self.opt_sep() + "," + self.opt_sep())
                text += f"{a.name}{self.opt_sep()}={self.opt_sep()}{self.item(a.value)}"
            return text
        if isinstance(stmt, ast.Param):
            text = f"param{s()}{stmt.name}{self.opt_sep()}:{self.opt_sep()}{stmt.type}"
            if stmt.optional:
                text += "?"
            if stmt.default is not None:
                text += f"{self.opt_sep()}={self.opt_sep()}{self.item(stmt.default)}"
            return text
        raise AssertionError(stmt)

    def statement(self, stmt: ast.Statement, depth: int) -> None:
        self.out.append(self.indent(depth))
        if isinstance(stmt, ast.When):
            self.when(stmt, depth)
        elif isinstance(stmt, ast.Declaration):
            self.declaration(stmt)
        else:
            self.out.append(self.line(stmt) + self.newline())

    def when(self, stmt: ast.When, depth: int) -> None:
        self.out.append(f"when{self.sep()}{self.condition(stmt.condition, None)}"
                        f"{self.opt_sep()}{{")
        body = list(stmt.body)
        # The last statement may share the line of '}' unless it is a header or a when.
        last_inline = (bool(body) and not isinstance(body[-1], (ast.Header, ast.When))
                       and self.draw(_BOOL))
        # The first statement may share the line of '{'.
        first_inline = bool(body) and not (last_inline and len(body) == 1) \
            and self.draw(_BOOL)
        if not body and self.draw(_BOOL):
            self.out.append(self.opt_sep() + "}" + self.newline())
            return
        if first_inline:
            self.out.append(self.sep())
            self.statement_inline(body.pop(0), depth + 1)
        elif last_inline and len(body) == 1:
            self.out.append(self.sep() + self.line(body.pop()) + self.sep() + "}"
                            + self.newline())
            return
        else:
            self.out.append(self.newline())
        self.filler()
        tail = body.pop() if last_inline else None
        for inner in body:
            self.statement(inner, depth + 1)
            self.filler()
        if tail is not None:
            self.out.append(self.indent(depth + 1) + self.line(tail) + self.sep() + "}"
                            + self.newline())
        else:
            self.out.append(self.indent(depth) + "}" + self.newline())

    def declaration(self, stmt: ast.Declaration) -> None:
        """Parts on lines of their own or after ';', the last maybe before '}'."""
        head = "trait" + self.sep() + self.string(stmt.phrase.value)
        if stmt.version is not None:
            head += self.sep() + str(stmt.version)
        if stmt.doc is not None:
            head += self.sep() + self.string(stmt.doc.value)
        self.out.append(head + self.opt_sep() + "{" + self.newline())
        for part in stmt.parts:
            end = self.newline()
            if self.draw(_BOOL):
                end = self.opt_sep() + ";" + self.opt_sep() + end
            self.out.append(self.indent(1) + self.line(part) + end)
        self.out.append("}" + self.newline())

    def statement_inline(self, stmt: ast.Statement, depth: int) -> None:
        if isinstance(stmt, ast.When):
            self.when(stmt, depth)
        else:
            self.out.append(self.line(stmt) + self.newline())

    def condition(self, cond: ast.Condition, parent: type | None) -> str:
        if isinstance(cond, ast.FactTest):
            text = self.item(cond.items[0]) + self.items(cond.items[1:])
            needed = False
        elif isinstance(cond, ast.Not):
            text = "not" + self.sep() + self.condition(cond.operand, ast.Not)
            needed = False
        else:
            joiner = "and" if isinstance(cond, ast.And) else "or"
            text = (self.sep() + joiner + self.sep()).join(
                self.condition(c, type(cond)) for c in cond.operands)
            # A compound needs parentheses inside 'not', inside the same operator (which
            # would flatten) and an 'or' inside an 'and'; an 'and' inside an 'or' does not.
            needed = parent is not None and not (isinstance(cond, ast.And)
                                                 and parent is ast.Or)
        if needed or self.draw(_ints(0, 5)) == 0:
            text = f"({self.opt_sep()}{text}{self.opt_sep()})"
        return text


# ---------------------------------------------------------------- domain XML

# Characters XML 1.0 allows (no C0 controls but tab/newline/CR, no surrogates, no
# U+FFFE/U+FFFF).
XML_CHARS = st.characters(exclude_categories=("Cs", "Cc"),
                          exclude_characters="\ufffe\uffff") | st.sampled_from("\t\n\r\x7f\x85")

KNOWN_NAMES = ("disk", "source", "target", "address", "driver", "interface", "model",
               "mac", "controller", "video", "graphics", "serial", "console", "channel",
               "feature", "acpi", "apic", "cpu", "topology", "numa", "cell", "clock",
               "timer", "boot", "seclabel", "label", "entry", "system", "alias")


@functools.cache
def xml_names() -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(KNOWN_NAMES),
        st.from_regex(r"[A-Za-z_][A-Za-z0-9._-]{0,8}", fullmatch=True)
        .filter(lambda n: not n.lower().startswith("xml")),
    )


XML_TEXT = st.text(XML_CHARS, max_size=10)
_ATTRIBUTE_VALUES = _choice("yes", "on", "0", "kvm", "") | st.text(XML_CHARS, max_size=8)
_ATTRIBUTE_NAMES = st.lists(xml_names(), max_size=3, unique=True)
_DOMAIN_NAMES = st.from_regex(r"[A-Za-z0-9_.-]{1,12}", fullmatch=True)
_SHORT_NAMES = st.from_regex(r"[a-z][a-z0-9-]{0,10}", fullmatch=True)

NAMESPACES = (("app", "http://example.org/app/1.0"),
              ("qemu", "http://libvirt.org/schemas/domain/qemu/1.0"),
              ("nova", "http://openstack.org/xmlns/libvirt/nova/1.1"),
              ("libosinfo", "http://libosinfo.org/xmlns/libvirt/domain/1.0"),
              ("p", "urn:x-test:p"))


class _Xml:
    """Random but well-formed XML text; ``draw`` makes every choice."""

    def __init__(self, draw, max_depth: int):
        self.draw = draw
        self.max_depth = max_depth

    def ws(self, allow_empty: bool = True) -> str:
        choices = [" ", "\n", "\n  ", "\n    ", "\t", "\r\n  ", "  \n\t"]
        if allow_empty:
            choices += ["", ""]
        return self.draw(_choice(*choices))

    def char_data(self, text: str, quote: str | None = None) -> str:
        """Escape ``text`` for content (quote None) or an attribute value."""
        out = []
        for ch in text:
            form = self.draw(_ints(0, 9))
            if form == 0:
                out.append(f"&#{ord(ch)};")
            elif form == 1:
                out.append(f"&#x{ord(ch):X};")
            elif ch == "&":
                out.append("&amp;")
            elif ch == "<":
                out.append("&lt;")
            elif ch == ">":
                out.append(self.draw(_choice("&gt;", ">")) if quote else "&gt;")
            elif ch == quote:
                out.append("&quot;" if ch == '"' else "&apos;")
            elif ch == "'" and form == 2:
                out.append("&apos;")
            elif ch == '"' and form == 2:
                out.append("&quot;")
            else:
                out.append(ch)
        return "".join(out)

    def text(self) -> str:
        return self.draw(XML_TEXT)

    def attributes(self, names: list[str]) -> str:
        out = []
        for name in names:
            quote = self.draw(_choice('"', "'"))
            value = self.draw(_ATTRIBUTE_VALUES)
            eq = self.draw(_choice("=", "=", " = ", "=\n"))
            out.append(f"{self.ws(False)}{name}{eq}{quote}{self.char_data(value, quote)}{quote}")
        return "".join(out)

    def attribute_names(self, prefixes: list[str]) -> list[str]:
        names = self.draw(_ATTRIBUTE_NAMES)
        if prefixes and self.draw(_ints(0, 3)) == 0:
            names.append(f"{self.draw(_choice(*prefixes))}:{self.draw(xml_names())}")
        return names

    def comment(self) -> str:
        body = self.text()
        body = re.sub("-+", "-", body).rstrip("-")  # no "--", no "-" before "-->"
        return f"<!--{body}-->"

    def pi(self) -> str:
        target = self.draw(xml_names())
        data = self.text().replace("?>", "? >")
        return f"<?{target}{(' ' + data) if data else ''}?>"

    def misc(self) -> str:
        """A comment or a processing instruction."""
        return self.comment() if self.draw(_BOOL) else self.pi()

    def cdata(self) -> str:
        return "<![CDATA[" + self.text().replace("]]>", "]] >") + "]]>"

    def content(self, depth: int, prefixes: list[str]) -> str:
        parts = []
        for _ in range(self.draw(_ints(0, 4 if depth < self.max_depth else 0))):
            kind = self.draw(_ints(0, 9))
            if kind <= 3:
                parts.append(self.ws() + self.element(depth + 1, prefixes))
            elif kind == 4:
                parts.append(self.char_data(self.text()))
            elif kind == 5:
                parts.append(self.comment())
            elif kind == 6:
                parts.append(self.pi())
            elif kind == 7:
                parts.append(self.cdata())
            elif kind == 8:
                parts.append(self.draw(_choice(
                    "&amp;", "&lt;", "&gt;", "&quot;", "&apos;", "&#233;", "&#x1F600;")))
            else:
                parts.append(self.ws())
        return "".join(parts)

    def element(self, depth: int, prefixes: list[str], name: str | None = None,
                declarations: str = "") -> str:
        prefixes = list(prefixes)
        if not declarations and self.draw(_ints(0, 6)) == 0:
            prefix, uri = self.draw(_choice(*NAMESPACES))
            if self.draw(_BOOL):
                declarations = f' xmlns:{prefix}="{uri}"'
                prefixes.append(prefix)
            else:
                declarations = f' xmlns="{uri}"'
        if name is None:
            name = self.draw(xml_names())
            if prefixes and self.draw(_ints(0, 3)) == 0:
                name = f"{self.draw(_choice(*prefixes))}:{name}"
        start = f"<{name}{declarations}{self.attributes(self.attribute_names(prefixes))}"
        body = self.content(depth, prefixes)
        if not body and self.draw(_BOOL):
            return start + self.draw(_choice("/>", " />", "\n/>"))
        return f"{start}{self.opt_space()}>{body}</{name}{self.opt_space()}>"

    def opt_space(self) -> str:
        return self.draw(_choice("", "", " ", "\n"))

    def metadata(self) -> str:
        """``<metadata>`` with one application's namespaced element, its namespace
        declared on that element (as libvirt writes it) or on ``<metadata>``."""
        prefix, uri = self.draw(_choice(*NAMESPACES))
        declaration = f' xmlns:{prefix}="{uri}"'
        on_child = self.draw(_BOOL)
        inner = self.element(2, [prefix], name=f"{prefix}:{self.draw(xml_names())}",
                             declarations=declaration if on_child else "")
        outer = "" if on_child else declaration
        return f"<metadata{outer}>{self.ws()}{inner}{self.ws()}</metadata>"


def _prolog_and_epilog(xml: _Xml) -> tuple[str, str]:
    draw = xml.draw
    prolog = draw(_choice(
        "", "", '<?xml version="1.0"?>', '<?xml version="1.0" encoding="UTF-8"?>',
        "<?xml version='1.0' encoding='utf-8' standalone='yes'?>"))
    if prolog:
        prolog += xml.ws()
    for _ in range(draw(_ints(0, 2))):
        prolog += xml.misc() + xml.ws()
    epilog = ""
    for _ in range(draw(_ints(0, 2))):
        epilog += xml.ws() + xml.misc()
    return prolog, epilog + xml.ws()


def _required(xml: _Xml, complete: bool) -> list[str]:
    """The parts completion adds when missing: name, memory, os/type."""
    draw = xml.draw
    name = draw(_DOMAIN_NAMES)
    memory_attr = draw(_choice("", " unit='KiB'", ' unit="MiB"', " unit='GiB'"))
    arch, machine = draw(_choice(("x86_64", "q35"), ("x86_64", "pc"),
                                          ("i686", "pc-i440fx-7.2"),
                                          ("aarch64", "virt"), ("x86_64", "pc-q35-8.0")))
    os_inner = (f"{xml.ws()}<type arch='{arch}' machine='{machine}'>hvm</type>"
                + draw(_choice("", "<boot dev='hd'/>", "\n    <boot dev='cdrom'/>"))
                + xml.ws())
    parts = [f"<name>{xml.char_data(name)}</name>",
             f"<memory{memory_attr}>{draw(_ints(1, 2**40))}</memory>",
             f"<os>{os_inner}</os>"]
    if not complete:
        keep = [draw(_BOOL) for _ in range(3)]
        parts = [p for p, k in zip(parts, keep) if k]
    return parts


@st.composite
def domain_documents(draw, complete: bool = True, max_depth: int = 4) -> bytes:
    """A random well-formed document with a ``<domain>`` root, as UTF-8 bytes."""
    xml = _Xml(draw, max_depth)
    children = _required(xml, complete)
    if draw(_BOOL):
        children.append(xml.metadata())
    for _ in range(draw(_ints(0, 4))):
        # Not a second of what libvirt's schema allows once (<name>, <os>...): that
        # input is refused (tests/domain/test_domain.py).
        name = draw(xml_names().filter(lambda n: n not in domain.ONCE["domain"]))
        children.insert(draw(_ints(0, len(children))), xml.element(1, [], name=name))
    for _ in range(draw(_ints(0, 2))):
        children.insert(draw(_ints(0, len(children))),
                        xml.misc())
    if complete:
        # Mixed content right under <domain> (not when completion has to insert
        # there: see tests/domain/test_domain.py's test_text_where_completion_adds_an_element).
        for _ in range(draw(_ints(0, 1))):
            children.insert(draw(_ints(0, len(children))), xml.char_data(xml.text()))
    body = "".join(xml.ws() + c for c in children) + xml.ws()
    root_attrs = ""
    if complete or draw(_BOOL):
        root_attrs += draw(_choice(' type="kvm"', " type='kvm'", ' type="qemu"',
                                            ' type="xen"', ' type="lxc"', ' type="test"'))
    root_attrs += draw(_choice(
        "", " id='3'", ' xmlns:qemu="http://libvirt.org/schemas/domain/qemu/1.0"'))
    prolog, epilog = _prolog_and_epilog(xml)
    return f"{prolog}<domain{root_attrs}>{body}</domain>{epilog}".encode("utf-8")


# ---- realistic domains, from libvirt's own elements

def _pick(draw, *options):
    return draw(_choice(*options))


@st.composite
def _devices(draw) -> list[str]:
    devices = []
    for _ in range(draw(_ints(0, 8))):
        kind = draw(_ints(0, 11))
        n = draw(_ints(0, 5))
        if kind == 0:
            bus, dev = _pick(draw, ("virtio", "vd"), ("sata", "sd"), ("scsi", "sd"), ("ide", "hd"))
            devices.append(
                f"<disk type='file' device='{_pick(draw, 'disk', 'cdrom')}'>"
                f"<driver name='qemu' type='{_pick(draw, 'qcow2', 'raw')}'/>"
                f"<source file='/var/lib/libvirt/images/d{n}.img'/>"
                f"<target dev='{dev}{'abcdef'[n]}' bus='{bus}'/>"
                + ("<readonly/>" if draw(_BOOL) else "") + "</disk>")
        elif kind == 1:
            devices.append(
                f"<interface type='network'><mac address='52:54:00:00:00:{n:02x}'/>"
                f"<source network='default'/><model type='{_pick(draw, 'virtio', 'e1000e', 'rtl8139')}'/>"
                "</interface>")
        elif kind == 2:
            devices.append(_pick(draw, "<controller type='usb' index='0' model='qemu-xhci'/>",
                                 "<controller type='pci' index='0' model='pcie-root'/>",
                                 f"<controller type='pci' index='{n + 1}' model='pcie-root-port'/>",
                                 "<controller type='sata' index='0'/>",
                                 "<controller type='virtio-serial' index='0'/>"))
        elif kind == 3:
            devices.append(f"<graphics type='{_pick(draw, 'vnc', 'spice')}' autoport='yes'>"
                           "<listen type='address'/></graphics>")
        elif kind == 4:
            model = _pick(draw, "qxl", "virtio", "vga", "cirrus", "bochs")
            extra = " ram='65536' vram='65536' vgamem='16384'" if model == "qxl" else ""
            devices.append(f"<video><model type='{model}'{extra} heads='1' primary='yes'/></video>")
        elif kind == 5:
            devices.append("<serial type='pty'><target port='0'/></serial>"
                           "<console type='pty'><target type='serial' port='0'/></console>")
        elif kind == 6:
            devices.append("<channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>")
        elif kind == 7:
            devices.append(_pick(draw, "<input type='tablet' bus='usb'/>",
                                 "<input type='mouse' bus='ps2'/>",
                                 "<input type='keyboard' bus='ps2'/>"))
        elif kind == 8:
            devices.append(f"<memballoon model='{_pick(draw, 'virtio', 'none')}'/>")
        elif kind == 9:
            devices.append("<rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>")
        elif kind == 10:
            devices.append("<hostdev mode='subsystem' type='pci' managed='yes'><source>"
                           f"<address domain='0x0000' bus='0x0{n}' slot='0x00' function='0x0'/>"
                           "</source></hostdev>")
        else:
            devices.append("<!-- added by hand -->")
    return devices


@st.composite
def realistic_domains(draw) -> bytes:
    """A domain like the ones virt-install and management applications write."""
    unit = _pick(draw, "  ", "    ", "\t", "")
    newline = _pick(draw, "\n", "\n", "\r\n")
    children: list[tuple[str, list | None]] = []
    name = draw(_SHORT_NAMES)
    children.append((f"<name>{name}</name>", None))
    if draw(_BOOL):
        children.append((f"<uuid>{draw(st.uuids())}</uuid>", None))
    if draw(_BOOL):
        title = draw(XML_TEXT)
        children.append((f"<title>{_Xml(draw, 0).char_data(title)}</title>", None))
    if draw(_BOOL):
        children.append(("<metadata>", [
            '<libosinfo:libosinfo xmlns:libosinfo="http://libosinfo.org/xmlns/libvirt/domain/1.0">',
            '<libosinfo:os id="http://fedoraproject.org/fedora/39"/>', "</libosinfo:libosinfo>"]))
    mem = draw(_ints(1, 64)) * 1024 * 1024
    children.append((f"<memory unit='KiB'>{mem}</memory>", None))
    if draw(_BOOL):
        children.append((f"<currentMemory unit='KiB'>{mem}</currentMemory>", None))
    if draw(_BOOL):
        children.append(("<memoryBacking>", ["<hugepages/>"]))
    children.append((f"<vcpu placement='static'>{draw(_ints(1, 64))}</vcpu>", None))
    machine = _pick(draw, "q35", "pc-q35-7.2", "pc", "pc-i440fx-7.2")
    os = [f"<type arch='x86_64' machine='{machine}'>hvm</type>"]
    if draw(_BOOL):
        os.append("<boot dev='hd'/>")
    children.append(("<os>", os))
    if draw(_BOOL):
        children.append(("<features>", ["<acpi/>", "<apic/>", "<vmport state='off'/>"]))
    if draw(_BOOL):
        children.append((f"<cpu mode='{_pick(draw, 'host-passthrough', 'host-model')}' check='none'/>", None))
    if draw(_BOOL):
        children.append(("<clock offset='utc'>", ["<timer name='rtc' tickpolicy='catchup'/>",
                                                  "<timer name='hpet' present='no'/>"]))
    for event, action in (("on_poweroff", "destroy"), ("on_reboot", "restart"),
                          ("on_crash", "destroy")):
        if draw(_BOOL):
            children.append((f"<{event}>{action}</{event}>", None))
    devices = draw(_devices())
    children.append(("<devices>", [f"<emulator>/usr/bin/qemu-system-x86_64</emulator>", *devices]))

    lines = [f"<domain type='{_pick(draw, 'kvm', 'qemu')}'>"]
    for element, inner in children:
        if inner is None:
            lines.append(unit + element)
            continue
        tag = re.match(r"<([\w:]+)", element).group(1)
        lines.append(unit + element)
        lines += [unit * 2 + line for line in inner]
        lines.append(f"{unit}</{tag}>")
    lines.append("</domain>")
    prolog = _pick(draw, "", "<?xml version='1.0' encoding='UTF-8'?>" + newline)
    return (prolog + newline.join(lines) + _pick(draw, "", newline)).encode("utf-8")
