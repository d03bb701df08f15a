"""Domain XML in and out: hardened parsing, lossless serialization, tidy insertion.

Parsing refuses DTDs (so no entity can ever be expanded), never touches the network,
caps size and depth, and keeps everything else: comments, processing instructions,
other applications' metadata, unknown elements, attribute order. Serialization writes
the same document back; with no edits the output equals the input in canonical XML.
"""

from __future__ import annotations

import functools
import re
import threading

from virtuned.diagnostics import Span, error

MAX_BYTES = 10 * 1024 * 1024
MAX_DEPTH = 64

# Where a new child goes among its siblings: libvirt's own formatting order
# (virDomainDefFormat, virDomainDefFormatDevices), so added elements land where
# `virsh dumpxml` would show them.
CHILD_ORDER = {
    "domain": (
        "name", "uuid", "genid", "title", "description", "metadata", "maxMemory",
        "memory", "currentMemory", "blkiotune", "memtune", "memoryBacking", "vcpu",
        "vcpus", "iothreads", "iothreadids", "cputune", "numatune", "resource",
        "sysinfo", "bootloader", "bootloader_args", "os", "idmap", "features", "cpu",
        "clock", "on_poweroff", "on_reboot", "on_crash", "on_lockfailure", "pm", "perf",
        "devices", "seclabel", "keywrap", "launchSecurity"),
    "devices": (
        "emulator", "disk", "controller", "lease", "filesystem", "interface", "smartcard",
        "serial", "parallel", "console", "channel", "input", "tpm", "graphics", "sound",
        "audio", "video", "hostdev", "redirdev", "redirfilter", "hub", "watchdog",
        "memballoon", "rng", "nvram", "panic", "shmem", "memory", "iommu", "vsock",
        "crypto"),
    "os": ("type", "firmware", "loader", "nvram", "kernel", "initrd", "cmdline", "dtb",
           "boot", "bootmenu", "smbios", "bios"),
}


def parse(data: bytes | str, filename: str):
    """Parse domain XML into an lxml ElementTree, or raise VirtunedError (exit 2)."""
    from lxml import etree

    raw = data.encode("utf-8") if isinstance(data, str) else data
    if len(raw) > MAX_BYTES:
        raise error(Span(filename, 1, 1),
                    f"domain XML is {len(raw)} bytes; the limit is {MAX_BYTES}")
    doctype = re.search(rb"<!DOCTYPE|<!ENTITY", raw)
    if doctype:
        raise error(_offset_span(raw, doctype.start(), filename),
                    "DTDs and entity declarations are not allowed in domain XML",
                    hint="libvirt domain XML never needs a DOCTYPE; remove it")
    try:
        tree = etree.ElementTree(etree.fromstring(raw, _parser()))
    except etree.XMLSyntaxError as exc:
        line, col = exc.position if exc.position else (1, 1)
        message = re.sub(r", line \d+, column \d+$", "", exc.msg or "malformed XML")
        raise error(Span(filename, max(line, 1), max(col, 1)),
                    f"malformed XML: {message}") from None
    docinfo = tree.docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        # The byte scan above misses a DOCTYPE in UTF-16 and other encodings; nothing
        # was expanded (resolve_entities=False), but such input is refused all the same.
        text = raw.decode(docinfo.encoding or "utf-8", "replace").lstrip("\ufeff")
        found = re.search(r"<!DOCTYPE|<!ENTITY", text)
        offset = found.start() if found else 0
        line = text.count("\n", 0, offset) + 1
        raise error(Span(filename, line, offset - (text.rfind("\n", 0, offset) + 1) + 1),
                    "DTDs and entity declarations are not allowed in domain XML",
                    hint="libvirt domain XML never needs a DOCTYPE; remove it")
    root = tree.getroot()
    if root.tag != "domain":
        raise error(_element_span(root, filename),
                    f"expected a <domain> root element, got <{root.tag}>")
    _check_depth(root, filename)
    return tree


_PARSERS = threading.local()  # an lxml parser must not be shared between threads


def _parser():
    parser = getattr(_PARSERS, "parser", None)
    if parser is None:
        from lxml import etree

        parser = _PARSERS.parser = etree.XMLParser(
            resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
            huge_tree=False, remove_blank_text=False, remove_comments=False,
            remove_pis=False, strip_cdata=False)
    return parser


def empty_domain():
    from lxml import etree

    return etree.ElementTree(etree.fromstring(b"<domain/>"))


def serialize(tree, original: bytes | None = None) -> str:
    """The document as text; keeps the input's XML declaration if it had one."""
    from lxml import etree

    root = tree.getroot()
    declaration = _declaration(original)
    if root.getprevious() is None and root.getnext() is None:
        body = etree.tostring(root, encoding="unicode")
        return (declaration + "\n" if declaration else "") + body + "\n"
    # Top-level comments and PIs have no whitespace of their own in lxml; put each on
    # its own line, as canonical XML does.
    nodes = [*reversed(list(root.itersiblings(preceding=True))), root,
             *root.itersiblings()]
    parts = [etree.tostring(node, encoding="unicode", with_tail=False) for node in nodes]
    if declaration:
        parts.insert(0, declaration)
    return "\n".join(parts) + "\n"


def int_attr(element, name: str, default: int, filename: str) -> int:
    """An integer attribute of an input element; anything else is an input error
    (libvirt would refuse it too), never an internal one."""
    text = element.get(name)
    if text is None:
        return default
    try:
        return int(text, 0)  # libvirt accepts 0x-prefixed numbers in addresses
    except ValueError:
        raise error(_element_span(element, filename),
                    f"<{element.tag} {name}='{text}'>: expected a whole number") from None


def element_span(element, filename: str) -> Span:
    return _element_span(element, filename)


def _element_span(element, filename: str) -> Span:
    return Span(filename, element.sourceline or 1, 1)


def _declaration(original: bytes | None) -> str | None:
    if not original:
        return None
    match = re.match(rb"\s*(<\?xml[^?]*\?>)", original)
    return match.group(1).decode("ascii", "replace") if match else None


def _offset_span(raw: bytes, offset: int, filename: str) -> Span:
    before = raw[:offset]
    line = before.count(b"\n") + 1
    col = offset - (before.rfind(b"\n") + 1) + 1
    return Span(filename, line, col)


def _check_depth(root, filename: str) -> None:
    too_deep = _too_deep()(root)
    if too_deep:
        raise error(_element_span(too_deep[0], filename),
                    f"domain XML nests deeper than {MAX_DEPTH} levels")


@functools.lru_cache(maxsize=None)
def _too_deep():
    # One XPath step per level, evaluated in C: finds the first element that is too
    # deep without walking the tree in Python.
    from lxml import etree

    return etree.XPath("/*" * (MAX_DEPTH + 1))


# ---------------------------------------------------------------- insertion

def insert_child(parent, child, unit: str = "  ") -> None:
    """Insert ``child`` at its canonical place in ``parent``, indented like its siblings
    (``unit`` is the document's indent step, from ``indent_unit``).

    The place is right after the last sibling that libvirt's order puts at or before
    the child; unknown and foreign-namespace siblings count as coming last. New
    elements usually belong near the end, so the scan runs backwards.
    """
    ranks = _RANKS.get(parent.tag)
    index = len(parent)
    if ranks is not None and child.tag in ranks:
        rank = ranks[child.tag]
        for sibling in reversed(parent):
            tag = sibling.tag
            if isinstance(tag, str) and ranks.get(tag, len(ranks)) <= rank:
                index = parent.index(sibling) + 1
                break
        else:
            index = 0
    # Inserting right after that sibling keeps a comment that introduces the next
    # sibling next to it.
    _insert_indented(parent, index, child, unit)


_RANKS = {parent: {tag: i for i, tag in enumerate(order)}
          for parent, order in CHILD_ORDER.items()}


def _insert_indented(parent, index: int, child, unit: str) -> None:
    level = _depth(parent)
    inner = "\n" + unit * (level + 1)
    outer = "\n" + unit * level
    _indent_subtree(child, unit, level + 1)
    if len(parent) == 0:
        if parent.text and parent.text.strip():
            raise ValueError(f"<{parent.tag}> holds text; cannot add <{child.tag}>")
        parent.text = inner
        child.tail = outer
        parent.append(child)
        return
    if index == len(parent):
        last = parent[-1]
        child.tail = last.tail if last.tail is not None else outer
        last.tail = inner
        parent.append(child)
        return
    previous_ws = parent[index - 1].tail if index > 0 else parent.text
    child.tail = previous_ws if previous_ws is not None else inner
    parent.insert(index, child)


def indent_unit(root) -> str:
    """The document's indent step, read off the first element that has children."""
    for element in root.iter(tag="*"):
        text = element.text if len(element) else None
        if text and text.startswith("\n") and not text.strip():
            if "\t" in text:
                return "\t"
            width = len(text) - 1
            if width:
                return " " * max(width // (_depth(element) + 1), 1)
    return "  "


def _depth(element) -> int:
    depth = 0
    while element.getparent() is not None:
        depth += 1
        element = element.getparent()
    return depth


def _indent_subtree(element, unit: str, level: int) -> None:
    if len(element) == 0:
        return
    element.text = "\n" + unit * (level + 1)
    for child in element:
        _indent_subtree(child, unit, level + 1)
        child.tail = "\n" + unit * (level + 1)
    element[-1].tail = "\n" + unit * level
