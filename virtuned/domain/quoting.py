"""The input's own start tags in the output: its quoting and spacing.

lxml writes every attribute in ``"``, one space apart, ``<a/>`` closed tight;
``virsh dumpxml`` writes ``'``, and hand-written domains have layouts of their own.
So that a diff of input and output shows only what changed, the output's start tags
are put back as the input wrote them wherever an element kept its attributes:

- a start tag whose element and attributes the input has (aligned in document
  order) is the input's text, byte for byte;
- one whose attributes changed keeps the quote style of the input's tag it
  replaces; a new one takes the input's predominant style.

Only start tags are looked at (what libvirt writes differently from lxml); text,
comments and end tags are lxml's, which already keeps them. An input whose tags
lxml writes the same way (``"``-quoted, single spaces, no references) is left
alone at the cost of a few ``in`` tests.
"""

from __future__ import annotations

import re

# A markup token: comments, CDATA, PIs and declarations are skipped (they may hold
# '<'); a start tag has its name, its attributes and whether it closes itself.
_TOKEN = re.compile(
    r"<!--.*?-->|<!\[CDATA\[.*?\]\]>|<\?.*?\?>|<![^>]*>"
    r"|<([^\s/>!?][^\s/>]*)((?:\s+[^\s=/>]+\s*=\s*(?:\"[^\"]*\"|'[^']*'))*)\s*(/?)>",
    re.S)
_ATTRIBUTE = re.compile(r"([^\s=]+)\s*=\s*(?:\"([^\"]*)\"|'([^']*)')")
_TEXT_QUOTES = re.compile(r"(<!--.*?-->|<!\[CDATA\[.*?\]\]>|<\?.*?\?>)|(['\"])", re.S)
_SELF_CLOSING = re.compile(r"\s*/>$")
_REFERENCE = re.compile(r"&(#x[0-9A-Fa-f]+|#[0-9]+|lt|gt|amp|quot|apos);")
_ONE_QUOTE = str.maketrans("'", '"')
_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"', "apos": "'"}


def irregular(original: bytes | str) -> bool:
    """Whether lxml may write the input's tags or text otherwise: another quote, a
    reference, ``<a></a>``, a space before ``/>``, tabs. Plain ``in`` tests on the
    input as it came: they cost nothing beside a compile, where a regular expression
    over the document would. (A ``"``-quoted tag that spreads its attributes over
    lines is not seen: lxml puts them on one.)"""
    if isinstance(original, bytes):
        return b"'" in original or b"&" in original or b"></" in original or \
            b" />" in original or b"\t" in original
    return "'" in original or "&" in original or "></" in original or \
        " />" in original or "\t" in original


def restore(output: str, original: str) -> str:
    """``output`` (lxml's text of the compiled document's root) with the start tags
    of ``original`` (the input's text) wherever they still stand, and the text
    between two of them where it still reads the same."""
    import difflib  # only here: most inputs never need it

    before, after = _tags(original), _tags(output)
    if not after or not before:
        return output
    # Aligned first by their text with one kind of quote (what most tags differ
    # in); among the rest, a tag is the input's of its name, the same when its
    # attributes read the same.
    matcher = difflib.SequenceMatcher(None, [tag.plain for tag in before],
                                      [tag.plain for tag in after], autojunk=False)
    kept: dict[int, int] = {}  # output tag → the input's tag it is
    placed: dict[int, int] = {}  # a changed output tag → the input's tag it was
    for operation, i1, i2, j1, j2 in matcher.get_opcodes():
        if operation == "equal":
            kept.update((j1 + offset, i1 + offset) for offset in range(j2 - j1))
            continue
        unused = list(range(i1, i2))
        for j in range(j1, j2):
            i = next((i for i in unused if before[i].name == after[j].name), None)
            if i is not None:
                (kept if before[i].key() == after[j].key() else placed)[j] = i
                unused.remove(i)
    style, escape = _predominant(original), _quotes_escaper(original)
    output_ends = [tag.start for tag in after[1:]] + [len(output)]
    original_ends = [tag.start for tag in before[1:]] + [_root_end(original, before[0])]
    parts = [output[:after[0].start]]
    for j, tag in enumerate(after):
        i = kept.get(j)
        if i is not None:
            parts.append(before[i].as_written(tag.closed))
        else:  # a changed tag keeps the quotes of the input's tag it was
            quote = before[placed[j]].quote() if j in placed else None
            parts.append(tag.quoted(quote or style))
        segment = output[tag.end:output_ends[j]]
        if i is not None and (kept.get(j + 1, -1) == i + 1 or
                              (i == len(before) - 1 and j == len(after) - 1)):
            written = original[before[i].end:original_ends[i]]
            parts.append(written if written == segment or _text(written) == _text(segment)
                         else escape(segment))
        else:
            parts.append(escape(segment))
    return "".join(parts)


def _tags(text: str) -> list:
    plain = text.translate(_ONE_QUOTE)  # one character for one: the same places
    return [_Tag(match, plain) for match in _TOKEN.finditer(text) if match.group(1)]


def _root_end(original: str, root) -> int:
    """Where the input's root element ends (after its end tag)."""
    if root.closed:
        return root.end
    end = original.rfind(f"</{root.name}")
    return original.find(">", end) + 1 if end >= 0 else len(original)


def _text(segment: str) -> str:
    """Text between tags as XML reads it: references resolved."""
    return _REFERENCE.sub(_resolved, segment) if "&" in segment else segment


def _quotes_escaper(original: str):
    """How the output's text writes quotes: as references where the input always
    does (libvirt writes ``qemu&apos;s``), else as themselves."""
    text = _TOKEN.sub("", original)
    escaped = [(quote, reference) for quote, reference in (("'", "&apos;"), ('"', "&quot;"))
               if reference in text and quote not in text]
    if not escaped:
        return _same
    references = dict(escaped)

    def escape(segment: str) -> str:  # comments, CDATA and PIs stay as they are
        return _TEXT_QUOTES.sub(lambda found: found.group(1) or
                                references.get(found.group(2), found.group(2)), segment)

    return escape


def _same(text: str) -> str:
    return text


class _Tag:
    """A start tag of a text: where it is, its name, its text with one kind of
    quote; its attributes (read when needed) and their quote."""

    __slots__ = ("match", "start", "end", "name", "closed", "plain", "_attributes")

    def __init__(self, match, plain: str):
        self.match = match
        self.start, self.end = start, end = match.span()
        self.name, self.closed = match.group(1), match.group(3) == "/"
        self.plain = plain[start:end]
        self._attributes = None

    @property
    def text(self) -> str:
        return self.match.group(0)

    def attributes(self) -> list[tuple[str, str, str]]:
        """(name, quote, value as written) of each attribute."""
        if self._attributes is None:
            self._attributes = [
                (found.group(1), "'", found.group(3)) if found.group(2) is None
                else (found.group(1), '"', found.group(2))
                for found in _ATTRIBUTE.finditer(self.match.group(2))]
        return self._attributes

    def key(self) -> tuple:
        """Its name and attributes as a parser reads them, in any order (lxml
        writes namespace declarations first)."""
        return (self.name, frozenset((name, _value(raw))
                                     for name, _, raw in self.attributes()))

    def quote(self) -> str | None:
        attributes = self.attributes()
        return attributes[0][1] if attributes else None

    def as_written(self, closed: bool) -> str:
        """This tag of the input where the output's tag is ``closed`` or not: the
        input's ``<a></a>`` stays so; an empty ``<a/>`` that gained children opens."""
        if closed == self.closed:
            return self.text
        if closed:
            return f"{self.text}</{self.name}>"
        return _SELF_CLOSING.sub(">", self.text)

    def quoted(self, quote: str) -> str:
        """This tag (lxml's: ``"``, single spaces) with its values in ``quote``."""
        if quote == '"':
            return self.text
        attributes = "".join(f" {name}='{raw.replace(chr(39), '&apos;')}'"
                             for name, _, raw in self.attributes())
        return f"<{self.name}{attributes}{'/' if self.closed else ''}>"


def _value(raw: str) -> str:
    """An attribute's value as XML reads it: references resolved, each tab, newline
    or carriage return a space."""
    if "\t" in raw or "\n" in raw or "\r" in raw:
        raw = raw.replace("\r\n", " ").replace("\t", " ").replace("\n", " ") \
            .replace("\r", " ")
    return _REFERENCE.sub(_resolved, raw) if "&" in raw else raw


def _resolved(match) -> str:
    name = match.group(1)
    if name[0] != "#":
        return _NAMED[name]
    return chr(int(name[2:], 16) if name[1] == "x" else int(name[1:]))


def _predominant(original: str) -> str:
    """The quote most of the input's attributes are written in (``"`` on a tie)."""
    return "'" if original.count("='") > original.count('="') else '"'
