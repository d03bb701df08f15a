"""How much of each input virtuned takes: every file, stdin and text has a cap, and
a file is read with it (at most the cap and one byte more), never whole first, so
``virtuned compile /dev/zero`` ends at once. docs/security.md lists them all.
"""

from __future__ import annotations

import re

from virtuned.diagnostics import Span, VirtunedError, error

# Domain XML, host capabilities and domain capabilities: libvirt's own documents
# are a few KiB to a few hundred KiB (a 1000-CPU host's capabilities: ~200 KiB).
XML_BYTES = 10 * 1024 * 1024
# A profile (.vt) or an inline trait text: the shipped profiles are under 2 KiB.
# Resolving takes time that grows with the square of the trait lines today
# (resolve/traits.py compares each line's slot with every other's): 64 KiB of
# 'prefer video qxl' lines resolve in 2 s, of alternating 'prefer hugepages' and
# 'prefer memory' lines in 18 s (docs/security.md).
TRAIT_BYTES = 64 * 1024
# A lock (JSON): one entry of about 300 bytes per resolved trait.
LOCK_BYTES = 1024 * 1024

# What an input is → its cap in bytes.
CAPS = {
    "domain XML": XML_BYTES,
    "host capabilities XML": XML_BYTES,
    "domain capabilities XML": XML_BYTES,
    "profile": TRAIT_BYTES,
    "trait text": TRAIT_BYTES,
    "lock": LOCK_BYTES,
}


def read(stream, source: str, what: str) -> bytes:
    """All of a binary ``stream`` if it holds no more than ``what``'s cap, else
    VirtunedError naming ``source`` and the cap; OSError as it comes."""
    limit = CAPS[what]
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise too_large(source, what)
    return data


def read_file(path: str, what: str) -> bytes:
    """The bytes of the file at ``path``, read with its cap."""
    with open(path, "rb") as handle:
        return read(handle, path, what)


def read_text(path: str, what: str) -> str:
    """A UTF-8 text file read with its cap, newlines as Python's text mode makes
    them (\\r\\n and \\r become \\n); UnicodeDecodeError when it is not UTF-8."""
    text = read_file(path, what).decode("utf-8")
    return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text


def check(text: str | bytes, source: str, what: str) -> None:
    """An input given as a value (the API, a request body) is held to its cap too."""
    size = len(text) if isinstance(text, bytes) or text.isascii() else \
        len(text.encode("utf-8", "surrogatepass"))
    if size > CAPS[what]:
        raise too_large(source, what)


def too_large(source: str, what: str) -> VirtunedError:
    return error(Span(source, 1, 1), f"{what} is larger than {CAPS[what]} bytes, "
                 "its limit", hint="docs/security.md lists the limit of every input")


# C0 controls but tab, newline and carriage return; DEL; C1 controls. XML 1.0 has
# no way to write most of them, libvirt refuses them in names, and a terminal that
# shows them can be made to do things. And lone surrogates: what Python makes of
# bytes that are not UTF-8 in a command's arguments, which no UTF-8 text can hold.
_CONTROL = "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]"


def _plain_ascii(text: str) -> bool:
    """ASCII without a control character: the usual text, told without compiling
    _CONTROL (a command-line run would spend more on that than on the test).
    (str.replace, not str.translate: translate looks up each character in Python.)"""
    return text.isascii() and (text.isprintable() or text.replace("\n", "").replace(
        "\t", "").replace("\r", "").isprintable())


def control_character(text: str) -> int | None:
    """Where ``text`` has its first control character, or None."""
    if _plain_ascii(text):
        return None
    found = re.search(_CONTROL, text)
    return found.start() if found else None


def escaped(text: str) -> str:
    """``text`` with its control characters written as Python escapes (``a\\x01b``),
    so a message that names it never sends them to a terminal."""
    if _plain_ascii(text):
        return text
    return re.sub(_CONTROL, lambda m: repr(m.group())[1:-1], text)


def refuse_control_characters(text: str, span: Span, what: str) -> None:
    """VirtunedError at ``span`` when ``text`` (a name, a value) has one."""
    at = control_character(text)
    if at is not None:
        shown = escaped(text[:40]) + ("..." if len(text) > 40 else "")
        raise error(span, f"{what} '{shown}': {_named(text[at])} is not allowed")


def refuse_control_characters_in_text(text: str, source: str, what: str) -> None:
    """VirtunedError at the line and column of a text's first control character."""
    at = control_character(text)
    if at is not None:
        line = text.count("\n", 0, at) + 1
        col = at - text.rfind("\n", 0, at)
        raise error(Span(source, line, col), f"{_named(text[at])} in {what} is not "
                    "allowed")


def _named(character: str) -> str:
    code = ord(character)
    if 0xDC80 <= code <= 0xDCFF:  # os.fsdecode's stand-in for a byte
        return f"byte 0x{code - 0xDC00:02x}, which is not UTF-8,"
    if 0xD800 <= code <= 0xDFFF:
        return f"lone surrogate U+{code:04X}"
    return f"control character {escaped(character)} (U+{code:04X})"
