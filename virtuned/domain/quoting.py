"""The input's own start tags in the output: its quoting and spacing.

lxml writes every attribute in ``"``, one space apart, ``<a/>`` closed tight;
``virsh dumpxml`` writes ``'``, and hand-written domains have layouts of their own.
So that a diff of input and output shows only what changed, the output's start tags
are put back as the input wrote them wherever an element kept its attributes:

- a start tag whose element and attributes the input has (aligned in document
  order) is the input's text, byte for byte (``<a></a>`` stays so);
- one whose attributes changed keeps the quote style of the input's tag it
  replaces; a new one takes the input's predominant style;
- the text between two start tags kept side by side is the input's where it reads
  the same (libvirt's ``&apos;``); other text writes quotes as the input does.

Comments, PIs and CDATA are lxml's, which writes them as they came. An input that
lxml writes the same way (``"``-quoted, single spaces, no references) is left alone
at the cost of a few ``in`` tests.
"""

from __future__ import annotations

import re

# Markup the text is split at: a start tag, or a comment, CDATA section, PI or
# declaration (kept whole: they may hold '<'; lxml writes them as they came). End
# tags and text stay between them.
_MARKUP = re.compile(
    r"(<(?![!?/])[^>\"']*(?:(?:\"[^\"]*\"|'[^']*')[^>\"']*)*>"
    r"|<!--.*?-->|<!\[CDATA\[.*?\]\]>|<\?.*?\?>|<![^>]*>)", re.S)
_START = re.compile(r"<([^\s/>]+)((?:\s+[^\s=/>]+\s*=\s*(?:\"[^\"]*\"|'[^']*'))*)\s*(/?)>",
                    re.S)
_ATTRIBUTE = re.compile(r"([^\s=]+)\s*=\s*(?:\"([^\"]*)\"|'([^']*)')")
_TEXT_QUOTES = re.compile(r"(<!--.*?-->|<!\[CDATA\[.*?\]\]>|<\?.*?\?>)|(['\"])", re.S)
_SELF_CLOSING = re.compile(r"\s*/>$")
_REFERENCE = re.compile(r"&(#x[0-9A-Fa-f]+|#[0-9]+|lt|gt|amp|quot|apos);")
_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"', "apos": "'"}


def irregular(original: bytes | str) -> bool:
    """Whether lxml may write the input's tags or text otherwise: another quote, a
    reference, ``<a></a>``, a space before ``/>``, tabs. Plain ``in`` tests on the
    input as it came: they cost nothing beside a compile, where a regular expression
    over the document would. (A ``"``-quoted tag that spreads its attributes over
    lines is not seen: lxml puts them on one.) The marks of one character first: a
    memchr each, where the others are a slower search. ``find``, not ``in``: on
    bytes, ``in`` first tries the mark as an integer and clears the TypeError
    (~2k instructions each)."""
    if isinstance(original, bytes):
        find = original.find
        return find(b"'") >= 0 or find(b"&") >= 0 or find(b"\t") >= 0 or \
            find(b"></") >= 0 or find(b" />") >= 0
    return "'" in original or "&" in original or "\t" in original or \
        "></" in original or " />" in original


def restore(output: str, original: str) -> str:
    """``output`` (lxml's text of the compiled document's root) with the start tags
    of ``original`` (the input's text) wherever they still stand, and the text
    between two of them where it still reads the same."""
    # [text, markup, text, markup, ..., text]: one call each, no object per tag
    before, after = _MARKUP.split(original), _MARKUP.split(output)
    tags_before, tags_after = before[1::2], after[1::2]
    if not tags_before or not tags_after:
        return output
    # Aligned first by their text with one kind of quote (what most tags differ
    # in); among the rest, a tag is the input's of its name, the same when its
    # attributes read the same.
    kept: dict[int, int] = {}  # output tag → the input's tag it is
    placed: dict[int, int] = {}  # a changed output tag → the input's tag it was
    for i1, i2, j1, j2 in _align([t.replace("'", '"') for t in tags_before],
                                 [t.replace("'", '"') for t in tags_after], kept):
        _pair(tags_before, tags_after, range(i1, i2), range(j1, j2), kept, placed)
    style, escape = _predominant(original), _quotes_escaper(original)
    last_before = len(tags_before) - 1
    before[-1] = before[-1][:_root_end(before[-1])]  # what follows the root is not its
    parts = [after[0]]
    for j, tag in enumerate(tags_after):
        i = kept.get(j)
        if i is not None:
            parts.append(_as_written(tags_before[i], tag))
        else:  # a changed tag keeps the quotes of the input's tag it was
            quote = _quote(tags_before[placed[j]]) if j in placed else None
            parts.append(_quoted(tag, quote or style))
        segment = after[2 * j + 2]
        if i is not None and (kept.get(j + 1, -1) == i + 1 or
                              (i == last_before and j == len(tags_after) - 1)):
            written = before[2 * i + 2]
            parts.append(written if written == segment or _text(written) == _text(segment)
                         else escape(segment))
        else:
            parts.append(escape(segment))
    return "".join(parts)


def _align(before: list[str], after: list[str], kept: dict) -> list[tuple]:
    """Equal items of two sequences paired in order (into ``kept``: after's index →
    before's), and the stretches between them that differ, as (i1, i2, j1, j2).
    Greedy and linear, for sequences mostly alike (a compile's output and its
    input): where the items differ, the nearer of the two next occurrences decides
    whether the input's item went or the output's is new; neither occurring again
    is a change of both. (difflib's SequenceMatcher is quadratic or worse on a
    domain of many alike devices with something added to each.)"""
    import collections

    def positions(items):
        found: dict[str, collections.deque] = {}
        for index, item in enumerate(items):
            found.setdefault(item, collections.deque()).append(index)
        return found

    def next_of(queue, start: int) -> int | None:
        while queue and queue[0] < start:
            queue.popleft()
        return queue[0] if queue else None

    in_before, in_after = positions(before), positions(after)
    stretches, i, j, i0, j0 = [], 0, 0, 0, 0
    while i < len(before) and j < len(after):
        if before[i] == after[j]:
            if (i0, j0) != (i, j):
                stretches.append((i0, i, j0, j))
            kept[j] = i
            i, j = i + 1, j + 1
            i0, j0 = i, j
            continue
        went = next_of(in_before.get(after[j]), i)  # after[j] later in before
        new = next_of(in_after.get(before[i]), j)  # before[i] later in after
        if went is None and new is None:
            i, j = i + 1, j + 1
        elif new is None or (went is not None and went - i <= new - j):
            i = went
        else:
            j = new
    if (i0, j0) != (len(before), len(after)):
        stretches.append((i0, len(before), j0, len(after)))
    return stretches


def _pair(tags_before, tags_after, old, new, kept: dict, placed: dict) -> None:
    """Tags of a stretch that differs: each output start tag is the input's first
    unused one of its name; kept when their attributes read the same. Linear: each
    name is read once, the unused tags of a name wait in a queue."""
    import collections

    unused: dict[str, collections.deque] = {}
    for i in old:
        if _is_start(tags_before[i]):
            unused.setdefault(_name(tags_before[i]), collections.deque()).append(i)
    for j in new:
        tag = tags_after[j]
        if not _is_start(tag):
            continue
        waiting = unused.get(_name(tag))
        if waiting:
            i = waiting.popleft()
            (kept if _key(tags_before[i]) == _key(tag) else placed)[j] = i


def _is_start(markup: str) -> bool:
    return markup[1] not in "!?"


def _name(tag: str) -> str:
    return _START.match(tag).group(1)


def _attributes(tag: str) -> list[tuple[str, str, str]]:
    """(name, quote, value as written) of each attribute of a start tag."""
    return [(found.group(1), "'", found.group(3)) if found.group(2) is None
            else (found.group(1), '"', found.group(2))
            for found in _ATTRIBUTE.finditer(_START.match(tag).group(2))]


def _key(tag: str) -> tuple:
    """A start tag's name and attributes as a parser reads them, in any order (lxml
    writes namespace declarations first)."""
    return (_name(tag), frozenset((name, _value(raw)) for name, _, raw in _attributes(tag)))


def _quote(tag: str) -> str | None:
    attributes = _attributes(tag)
    return attributes[0][1] if attributes else None


def _closed(tag: str) -> bool:
    return tag.endswith("/>")


def _as_written(written: str, tag: str) -> str:
    """The input's tag ``written`` where the output has ``tag``: the input's
    ``<a></a>`` stays so; an empty ``<a/>`` that gained children opens."""
    if not _is_start(written) or _closed(written) == _closed(tag):
        return written
    if _closed(tag):
        return f"{written}</{_name(written)}>"
    return _SELF_CLOSING.sub(">", written)


def _quoted(tag: str, quote: str) -> str:
    """An output tag (lxml's: ``"``, single spaces) with its values in ``quote``."""
    if quote == '"' or not _is_start(tag):
        return tag
    if "'" not in tag:  # lxml writes '"' in a value as &quot;: only delimiters are '"'
        return tag.replace('"', "'")
    attributes = "".join(f" {name}='{raw.replace(chr(39), '&apos;')}'"
                         for name, _, raw in _attributes(tag))
    return f"<{_name(tag)}{attributes}{'/' if _closed(tag) else ''}>"


def _root_end(tail: str) -> int:
    """Where the root element ends in the text after the input's last markup: after
    its end tag (comments and PIs after it belong to the document)."""
    end = tail.rfind("</")
    return tail.find(">", end) + 1 if end >= 0 else len(tail)


def _text(segment: str) -> str:
    """Text between tags as XML reads it: references resolved."""
    return _REFERENCE.sub(_resolved, segment) if "&" in segment else segment


def _quotes_escaper(original: str):
    """How the output's text writes quotes: as references where the input always
    does (libvirt writes ``qemu&apos;s``), else as themselves."""
    if "&apos;" not in original and "&quot;" not in original:
        return _same
    text = _MARKUP.sub("", original)
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
