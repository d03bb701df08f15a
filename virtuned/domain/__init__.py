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

from lxml import etree

from virtuned import caching, inputs
from virtuned.diagnostics import Related, Span, error
from virtuned.domain import quoting

MAX_BYTES = inputs.XML_BYTES
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
    # virDomainFeature's order, which virDomainDefFormatFeatures follows.
    "features": (
        "acpi", "apic", "pae", "hap", "viridian", "privnet", "hyperv", "kvm", "pvspinlock",
        "capabilities", "pmu", "vmport", "gic", "smm", "ioapic", "hpt", "vmcoreinfo", "htm",
        "nested-hv", "msrs", "ccf-assist", "xen", "cfpc", "sbbc", "ibs", "tcg",
        "async-teardown"),
    # virDomainCputuneDefFormat, virDomainNumatuneFormatXML, virCPUDefFormatBuf,
    # virDomainMemoryBackingFormat: where placement traits add their children.
    "cputune": (
        "shares", "period", "quota", "global_period", "global_quota", "emulator_period",
        "emulator_quota", "iothread_period", "iothread_quota", "vcpupin", "emulatorpin",
        "iothreadpin", "vcpusched", "iothreadsched", "emulatorsched", "cachetune",
        "memorytune"),
    "numatune": ("memory", "memnode"),
    "cpu": ("model", "vendor", "topology", "cache", "maxphysaddr", "feature", "numa"),
    "memoryBacking": ("hugepages", "nosharepages", "locked", "source", "access",
                      "allocation", "discard"),
}


def parse(data: bytes | str, filename: str, *, root_tag: str = "domain",
          kind: str = "domain XML"):
    """Parse domain XML into an lxml ElementTree, or raise VirtunedError (exit 2).

    Other libvirt documents (``virsh domcapabilities``, ``virsh capabilities``) get
    the same hardening with their own ``root_tag``; ``kind`` names them in messages.

    The text is decoded here first (byte-order mark, else the XML declaration, else
    UTF-8), so the DOCTYPE check sees UTF-16 input too, a ``str`` is never re-decoded
    with a foreign declared encoding, and libxml2 always reads UTF-8.
    """
    size = _utf8_size(data, filename) if isinstance(data, str) else len(data)
    if size > MAX_BYTES:
        raise error(Span(filename, 1, 1),
                    f"{kind} is {size} bytes; the limit is {MAX_BYTES}")
    if isinstance(data, bytes) and _plain_utf8(data):
        # The common case, UTF-8 with no byte-order mark or other declared encoding:
        # libxml2 reads the bytes as they are (and checks them as UTF-8 itself).
        _refuse_doctype(data, filename, kind)
        document = data
    else:
        text = data if isinstance(data, str) else _decode(data, filename)
        _refuse_doctype(text, filename, kind)
        document = text.lstrip("\ufeff").encode("utf-8")
    try:
        root = etree.fromstring(document, _parser())
    except etree.XMLSyntaxError as exc:
        if document is data:
            _decode(data, filename)  # invalid UTF-8: name the offending byte
        raise _syntax_error(exc, filename, kind) from None
    tree = etree.ElementTree(root)
    if root.tag != root_tag:
        raise error(_element_span(root, filename),
                    f"expected a <{root_tag}> root element, got <{root.tag}>")
    _check_depth(root, document, filename, kind)
    root.held = list(root)  # made once for all of a compile: see Element
    if root_tag == "domain":
        _check_once(root, document, filename)
    return tree


# Children libvirt's schema allows once at most (domaincommon.rng: optional in an
# interleave; each checked with xmllint against a second one), by parent. libvirt
# would read the first and drop the other, or refuse the domain: a second one is an
# input error at its place. <sysinfo> and <seclabel> may repeat; namespaced and
# unknown elements are not the schema's to count.
ONCE = {
    "domain": frozenset(CHILD_ORDER["domain"]) - {"sysinfo", "seclabel"},
    "os": frozenset(CHILD_ORDER["os"]) - {"boot"},
    "features": frozenset(CHILD_ORDER["features"]),
    "cpu": frozenset(("model", "vendor", "topology", "cache", "maxphysaddr", "numa")),
    "memoryBacking": frozenset(CHILD_ORDER["memoryBacking"]),
    "numatune": frozenset(("memory",)),
    "cputune": frozenset(CHILD_ORDER["cputune"]) - {
        "vcpupin", "iothreadpin", "vcpusched", "iothreadsched", "cachetune",
        "memorytune"},
    "devices": frozenset(("emulator",)),
}


# Parents with many children of which few are counted: only those few are visited
# (lxml makes an object for each child visited; a <devices> has dozens).
_FEW_COUNTED = {"devices": tuple(ONCE["devices"])}


# The root's children that are parents in ONCE (a nested <domain> is not one).
_PARENTS = tuple(tag for tag in CHILD_ORDER["domain"] if tag in ONCE)


def _check_once(root, document: bytes, filename: str) -> None:
    """Refuse a second child that ``ONCE`` allows once. Keeps the first child of
    each tag under the root in ``firsts`` (see Element): the root's tags are read
    once for all of a compile."""
    held = root.held
    firsts = root.firsts = {child.tag: child for child in reversed(held)}
    if len(firsts) == len(held):  # no tag repeats at the root (the usual case)
        seconds: list = []
        for tag in _PARENTS:
            parent = firsts.get(tag)
            if parent is not None:
                _children_seconds(parent, seconds)
        if not seconds:
            return
    _refuse_second(root, document, filename)


def _children_seconds(parent, seconds: list) -> None:
    """``_seconds`` of ``parent``'s children, if it has several."""
    if len(parent) < 2:
        return  # nothing there can repeat (an empty <cpu/>, one <acpi/>)
    few = _FEW_COUNTED.get(parent.tag)
    _seconds(parent, parent if few is None else parent.iterchildren(*few), seconds)


def _refuse_second(root, document: bytes, filename: str) -> None:
    """The error at the second child the document reaches first, if there is one."""
    seconds: list = []  # (second, first, parent)
    parents = _seconds(root, root.held, seconds)  # one pass: the root's, and its parents'
    for parent in parents:
        _children_seconds(parent, seconds)
    if seconds:  # the one the document reaches first
        child, first, parent = min(seconds, key=lambda found: found[0].sourceline or 0)
        raise error(_exact_span(child, document, filename),
                    f"a second <{child.tag}> in <{parent.tag}>: libvirt's schema allows "
                    "one", related=(Related(_exact_span(first, document, filename),
                                            "the first is here"),))


def _seconds(parent, children, seconds: list) -> list:
    """Append to ``seconds`` each child of ``children`` (of ``parent``) that repeats
    a tag ``ONCE`` allows once there; return the children that are themselves
    parents in ``ONCE``."""
    once, seen, parents = ONCE[parent.tag], {}, []
    for child in children:
        tag = child.tag
        if tag in once:
            first = seen.setdefault(tag, child)
            if first is not child:
                seconds.append((child, first, parent))
            elif tag in ONCE:
                parents.append(child)
    return parents


def _exact_span(element, document: bytes, filename: str) -> Span:
    """Where ``element`` starts, to the column: the n-th ``<tag`` on its line when
    other elements of its tag start there before it (one-line documents)."""
    line = element.sourceline or 1
    before = 0  # elements of its tag that start on its line before it
    for other in element.getroottree().iter(element.tag):
        if other is element:
            break
        before += other.sourceline == line
    text = document.split(b"\n", line)[line - 1] if line else b""
    found = -1
    for _ in range(before + 1):
        found = _next_tag(text, element.tag.encode(), found + 1)
        if found < 0:
            return _element_span(element, filename)
    col = len(text[:found].decode("utf-8", "replace")) + 1
    return Span(filename, line, col, end_line=line, end_col=col + 1 + len(element.tag))


def _next_tag(text: bytes, tag: bytes, start: int) -> int:
    match = re.compile(rb"<" + re.escape(tag) + rb"[\s/>]").search(text, start)
    return match.start() if match else -1


def _utf8_size(text: str, filename: str) -> int:
    """The size of a ``str`` document in UTF-8; a lone surrogate (a JSON "\\ud800",
    a byte that is not UTF-8 in an argument) is an input error at its place."""
    try:
        return len(text.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise error(_text_span(text, exc.start, filename), f"not valid text: lone "
                    f"surrogate U+{ord(text[exc.start]):04X}") from None


_BOMS = ((b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe\x00\x00", "utf-32-le"),
         (b"\x00\x00\xfe\xff", "utf-32-be"), (b"\xff\xfe", "utf-16-le"),
         (b"\xfe\xff", "utf-16-be"))
# Patterns are compiled when first used (re's own cache): a run needs few of them.
_DECLARED = rb"""\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._-]+)["']"""


def _decode(raw: bytes, filename: str) -> str:
    encoding = next((name for bom, name in _BOMS if raw.startswith(bom)), None)
    if encoding is None and raw[:2] in (b"<\x00", b"\x00<"):
        encoding = "utf-16-le" if raw[0] == ord("<") else "utf-16-be"  # no BOM
    if encoding is None and raw.lstrip()[:5] == b"<?xml":
        declared = re.match(_DECLARED, raw)
        encoding = declared.group(1).decode("ascii") if declared else None
    encoding = encoding or "utf-8"
    try:
        text = raw.decode(encoding)
    except LookupError:
        raise error(Span(filename, 1, 1), f"unknown encoding {encoding!r}") from None
    except UnicodeDecodeError as exc:
        before = raw[:exc.start].decode(encoding, "replace")
        raise error(_text_span(before, len(before), filename),
                    f"not valid {encoding} text: byte 0x{raw[exc.start]:02x}") from None
    # The declaration still names the old encoding; libxml2 gets UTF-8 and is told so.
    return text


# Everything that may come before the root element: a declaration, comments, PIs,
# whitespace. A DOCTYPE can only be there, and an entity can only be declared in one.
_SPACE = r"[\ufeff\s]*"
_SPACE_BYTES = rb"\s*"
_UTF8_DECLARATION = rb"""(?i)<\?xml[^>]*?encoding\s*=\s*["']utf-?8["']"""


def _plain_utf8(raw: bytes) -> bool:
    """UTF-8 with no byte-order mark, declared as such or not declared at all."""
    if raw[:1] == b"<" and raw[1:2] != b"\x00" and not raw.startswith(b"<?xml"):
        return True  # the usual case: no byte-order mark, no declaration
    if raw[:1] in (b"\xef", b"\xff", b"\xfe", b"\x00") or raw[:2] == b"<\x00":
        return False
    head = raw.lstrip()[:200]
    return not head.startswith(b"<?xml") or b"encoding" not in head.split(b"?>", 1)[0] \
        or re.match(_UTF8_DECLARATION, head) is not None


def _refuse_doctype(text: str | bytes, filename: str, kind: str) -> None:
    marks = (b"<!DOCTYPE", b"<!ENTITY") if isinstance(text, bytes) else ("<!DOCTYPE",
                                                                         "<!ENTITY")
    if not _has_mark(text, marks):
        return  # the common case, found without walking the prolog
    end = _prolog_end(text)
    if text.startswith(marks, end):
        if isinstance(text, bytes):
            text = text[:end].decode("utf-8", "replace")
            end = len(text)
        raise error(_text_span(text, end, filename),
                    f"DTDs and entity declarations are not allowed in {kind}",
                    hint=f"libvirt {kind} never needs a DOCTYPE; remove it")


def _has_mark(text: str | bytes, marks: tuple) -> bool:
    """Whether ``text`` holds one of ``marks`` (which start with ``<!``). Looks for
    the rare ``!`` (one memchr) rather than the markup-dense two-character ``<!``."""
    bang = marks[0][1:2]
    found = text.find(bang)
    while found >= 0:
        if found and text.startswith(marks, found - 1):
            return True
        found = text.find(bang, found + 1)
    return False


def _prolog_end(text: str | bytes) -> int:
    """Where the prolog ends: after the declaration, comments, PIs and whitespace
    that may come before the root element (a DOCTYPE can only stand there)."""
    is_bytes = isinstance(text, bytes)
    pi, comment = (b"<?", b"<!--") if is_bytes else ("<?", "<!--")
    pi_end, comment_end = (b"?>", b"-->") if is_bytes else ("?>", "-->")
    space = re.compile(_SPACE_BYTES if is_bytes else _SPACE)
    position = 0
    while True:
        position = space.match(text, position).end()
        if text.startswith(pi, position):
            found, width = text.find(pi_end, position), 2
        elif text.startswith(comment, position):
            found, width = text.find(comment_end, position + 4), 3
        else:
            return position
        if found < 0:
            return position  # unterminated: libxml2 reports it
        position = found + width


def _syntax_error(exc, filename: str, kind: str):
    line, col = exc.position if exc.position else (1, 1)
    message = re.sub(r", line \d+, column \d+$", "", exc.msg or "malformed XML")
    if message.startswith("Excessive depth in document"):
        # libxml2's own limit (256) comes first for absurd nesting; say ours.
        return error(Span(filename, max(line, 1), max(col, 1)),
                     f"{kind} nests deeper than {MAX_DEPTH} levels")
    return error(Span(filename, max(line, 1), max(col, 1)), f"malformed XML: {message}")


class Element(etree.ElementBase):
    """The elements of the documents ``parse`` reads. A compile looks up children by
    plain paths (``devices``, ``os/type``) hundreds of times; for those, ``find``,
    ``findall`` and ``iterfind`` walk the children in C directly, as lxml's
    ElementPath does for such steps after tokenizing and dispatching in Python.
    Anything else (``*``, ``//``, predicates, prefixes, namespace maps) goes to
    ElementPath: the results are the same, in the same order.

    lxml makes a Python object (a proxy) for an element each time Python reaches it
    with no proxy of it alive, and drops it when the last reference goes. A compile
    reaches the root's children again and again (<devices>, <os>, <features>...
    from each stage), so ``parse`` has the root hold them in ``held``: each is made
    once per document (the benchmark's compile: 25k instructions fewer). A domain's
    root also keeps the first child of each tag in ``firsts`` (reading a tag makes a
    new string each time), which ``first_children`` copies. Both are the children as
    parsed: what reads them (the parse's own checks, then the platform's facts and
    emit, before anything changes the tree) reads the input; an element removed
    later is merely kept a little longer."""

    __slots__ = ("held", "firsts")  # no __dict__ for each proxy

    def find(self, path, namespaces=None):
        steps = _child_steps(path) if namespaces is None else None
        if steps is None:
            return super().find(path, namespaces)
        return next(_children(self, steps), None)

    def findall(self, path, namespaces=None):
        steps = _child_steps(path) if namespaces is None else None
        if steps is None:
            return super().findall(path, namespaces)
        return list(_children(self, steps))

    def iterfind(self, path, namespaces=None):
        steps = _child_steps(path) if namespaces is None else None
        if steps is None:
            return super().iterfind(path, namespaces)
        return _children(self, steps)


_STEP = r"(?:\{[^}]+\})?[A-Za-z_][\w.-]*"
_CHILD_PATH = f"{_STEP}(?:/{_STEP})*"
@functools.lru_cache(maxsize=1024)
def _child_steps(path):
    """A plain child path's steps, or None (not one: a QName, a predicate...)."""
    if type(path) is not str:
        return None
    return tuple(re.findall(_STEP, path)) if re.fullmatch(_CHILD_PATH, path) else None


def _children(element, steps):
    if len(steps) == 1:
        return element.iterchildren(steps[0])
    return (found for child in element.iterchildren(steps[0])
            for found in _children(child, steps[1:]))


_PARSERS = threading.local()  # an lxml parser must not be shared between threads


def _parser():
    parser = getattr(_PARSERS, "parser", None)
    if parser is None:
        parser = _PARSERS.parser = etree.XMLParser(
            encoding="utf-8", resolve_entities=False, no_network=True, load_dtd=False,
            dtd_validation=False, huge_tree=False, remove_blank_text=False,
            remove_comments=False, remove_pis=False, strip_cdata=False)
        parser.set_element_class_lookup(etree.ElementDefaultClassLookup(element=Element))
    return parser


def empty_domain():
    return etree.ElementTree(etree.fromstring(b"<domain/>", _parser()))


def serialize(tree, original: bytes | None = None) -> str:
    """The document as text; keeps the input's XML declaration if it had one, and
    its start tags where they still stand (their quotes and spacing: quoting.py)."""
    root = tree.getroot()
    text = etree.tostring(root, encoding="unicode")
    if original and quoting.irregular(original):
        text = quoting.restore(text, _text_of(original))
    # Top-level comments and PIs have no whitespace of their own in lxml; put each
    # on its own line, as canonical XML does.
    parts = _beside(root, _PREVIOUS)
    parts.reverse()
    parts.append(text)
    parts += _beside(root, _NEXT)
    declaration = _declaration(original)
    if declaration:
        parts.insert(0, declaration)
    parts.append("")  # the last newline
    return "\n".join(parts)


_PREVIOUS, _NEXT = etree._Element.getprevious, etree._Element.getnext


def _beside(root, step) -> list[str]:
    """The texts of the comments and PIs beside the root, going out from it by
    ``step`` (``_PREVIOUS`` or ``_NEXT``)."""
    found, node = [], step(root)
    while node is not None:
        found.append(_top_level_text(node))
        node = step(node)
    return found


def _text_of(original: bytes | str) -> str:
    """The input document as text (it was parsed, so it decodes)."""
    if isinstance(original, str):
        return original
    try:
        return original.decode("utf-8")
    except UnicodeDecodeError:
        return _decode(original, "<domain>")


def _top_level_text(node) -> str:
    """A comment or PI beside the root as libxml2 writes it: its text is known without
    serializing it (the root is serialized on its own, the largest part of the work)."""
    if node.tag is etree.Comment:
        return f"<!--{node.text or ''}-->"
    if node.tag is etree.ProcessingInstruction:
        return f"<?{node.target} {node.text}?>" if node.text else f"<?{node.target}?>"
    return etree.tostring(node, encoding="unicode", with_tail=False)


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


# Devices a domain has at most one of: named without a position.
_SINGLE_DEVICES = frozenset(("emulator", "memballoon", "iommu", "nvram", "vsock"))


def path_of(element) -> str:
    """An XPath naming an element of a document, for messages: each step's tag (with
    its namespace prefix) and, where its parent has several children of that tag,
    its position among them; a device's position always, as a domain has several of
    most kinds (``/domain/devices/disk[2]/target``)."""
    steps = []
    node = element
    while node is not None:
        parent = node.getparent()
        step = f"{node.prefix}:{etree.QName(node).localname}" if node.prefix else \
            etree.QName(node).localname
        if parent is not None:
            same = list(parent.iterchildren(node.tag))
            device = parent.tag == "devices" and node.tag not in _SINGLE_DEVICES
            if len(same) > 1 or device:
                step += f"[{same.index(node) + 1}]"
        steps.append(step)
        node = parent
    return "/" + "/".join(reversed(steps))


def first_children(root) -> dict:
    """The first child of each tag under ``root`` (tag → element; comments' and PIs'
    under lxml's functions): a new dict (callers add to it) of the input's, as
    domain.parse found them (``firsts``, see Element), else from one pass over
    lxml's children. Asking lxml for a few tags costs more to set up than reading
    every child's tag."""
    firsts = getattr(root, "firsts", None)
    if firsts is not None:
        return dict(firsts)
    return {child.tag: child for child in reversed(root)}


def first_child(root, tag: str):
    """``root``'s first child of ``tag``, or None: the input's, as domain.parse found
    it (``firsts``), while it still stands under the root (an element added of its
    tag goes after it: Inserter), without asking lxml; else lxml's."""
    found = getattr(root, "firsts", {}).get(tag)
    if found is not None and found.getparent() is root:
        return found
    return next(root.iterchildren(tag), None)


def element_span(element, filename: str) -> Span:
    return _element_span(element, filename)


def _element_span(element, filename: str) -> Span:
    tag = element.tag if isinstance(element.tag, str) else ""
    local = tag.rsplit("}", 1)[-1]
    # A prefixed tag (<qemu:commandline>) is anchored on its local name's start.
    anchor = f"<{local}" if tag == local else f":{local}"
    return Span(filename, element.sourceline or 1, 1, anchor=anchor)


def _declaration(original: bytes | str | None) -> str | None:
    """The input's XML declaration, naming UTF-8: the output is always UTF-8 text."""
    if not original:
        return None
    if original[:1] in (b"<", "<") and original[1:2] not in (b"?", "?", b"\x00"):
        return None  # the common case: no declaration, no byte-order mark, not UTF-16
    head = original[:400]
    if head.lstrip()[:5] not in ("<?xml", b"<?xml") and head[:1] not in (
            "\ufeff", b"\xef", b"\xff", b"\xfe", b"\x00") and head[:2] != b"<\x00":
        return None  # fast path: no declaration, no byte-order mark, not UTF-16
    if isinstance(head, bytes):
        encoding = next((name for bom, name in _BOMS if head.startswith(bom)), None)
        if encoding is None and head[:2] in (b"<\x00", b"\x00<"):
            encoding = "utf-16-le" if head[0] == ord("<") else "utf-16-be"
        head = head.decode(encoding or "latin-1", "ignore")  # the declaration is ASCII
    match = re.match(r"\ufeff?\s*(<\?xml[^?]*\?>)", head)
    if match is None:
        return None
    return re.sub(r"""encoding\s*=\s*(["'])[^"']*\1""", r"encoding=\1UTF-8\1",
                  match.group(1))


def _text_span(text: str, offset: int, filename: str) -> Span:
    line = text.count("\n", 0, offset) + 1
    return Span(filename, line, offset - (text.rfind("\n", 0, offset) + 1) + 1)


def _check_depth(root, document: bytes, filename: str, kind: str) -> None:
    # Each element above the deepest one has an end tag: with fewer than MAX_DEPTH
    # '</' in the text (comments and CDATA may only add some), no element can be
    # too deep. One count in C settles it for a typical domain, without running the
    # XPath below (a count of '</' also costs less than one of '<', and passes more
    # documents: their empty elements need none).
    if document.count(b"</") < MAX_DEPTH:
        return
    too_deep = _too_deep()(root)
    if too_deep:
        raise error(_element_span(too_deep[0], filename),
                    f"{kind} nests deeper than {MAX_DEPTH} levels")


@functools.lru_cache(maxsize=None)
def _too_deep():
    # One XPath step per level, evaluated in C: finds the first element that is too
    # deep without walking the tree in Python.
    return etree.XPath("/*" * (MAX_DEPTH + 1), regexp=False, smart_strings=False)


# ---------------------------------------------------------------- insertion

def insert_child(parent, child, unit: str = "  ") -> None:
    """Insert ``child`` at its canonical place in ``parent``, indented like its siblings
    (``unit`` is the document's indent step, from ``indent_unit``).

    The place is right after the last sibling that libvirt's order puts at or before
    the child; unknown and foreign-namespace siblings count as coming last.
    """
    Inserter(unit).insert(parent, child)


class Inserter:
    """``insert_child`` for many children of one document: each parent's depth is
    found once, and the siblings a search has passed are remembered with their
    places, so the next child added to that parent looks only further back."""

    def __init__(self, unit: str = "  "):
        self.unit = unit  # the document's indent step, from ``indent_unit``
        self._depths: dict = {}  # parent element → its depth
        # parent element → its last children as far back as a search has looked,
        # the last first: their places in libvirt's order, and the children.
        self._passed: dict = {}

    def depth(self, parent) -> int:
        depth = self._depths.get(parent)
        if depth is None:
            depth = self._depths[parent] = _depth(parent)
        return depth

    def insert(self, parent, child, *, indented: bool = False) -> None:
        """Insert ``child`` as ``insert_child`` does. ``indented``: the inside of
        ``child`` is already indented for its level (one deeper than ``parent``)."""
        level = self.depth(parent)
        if not indented:
            indent_subtree(child, self.unit, level + 1)
        order = _RANKS.get(parent.tag)
        if order is None:  # no order: last
            _insert_after(parent, child, parent[-1] if len(parent) else None, True,
                          self.unit, level)
            return
        rank = order.get(child.tag, _LAST)
        passed = self._passed.get(parent)
        if passed is None:
            passed = self._passed[parent] = ([], [])
        back, after = _place(parent, order, rank, passed)
        _insert_after(parent, child, after, back == 0, self.unit, level)
        passed[0].insert(back, rank)
        passed[1].insert(back, child)


def _place(parent, order: dict, rank: int, passed: tuple) -> tuple:
    """Where a child of place ``rank`` goes among ``parent``'s children: how many go
    after it, and the one it goes right after (None: first). From the end, where
    new elements usually belong, so only the siblings after the place are looked
    at (lxml makes an object for each), and each only once (``passed``). Right
    after that sibling: a comment that introduces the next sibling stays next to
    it."""
    places, siblings = passed
    for back, place in enumerate(places):
        if place <= rank:
            return back, siblings[back]
    back = len(places)
    if rank == _LAST and not back:  # after everything: only the last is needed
        return 0, parent[-1] if len(parent) else None
    sibling = siblings[-1].getprevious() if back else parent[-1] if len(parent) else None
    while sibling is not None:
        place = order.get(sibling.tag, _LAST)  # comments and PIs too: last
        places.append(place)
        siblings.append(sibling)
        if place <= rank:
            return back, sibling
        back += 1
        sibling = sibling.getprevious()
    return back, None


def append_child(parent, child, unit: str, level: int) -> None:
    """Add ``child`` after ``parent``'s last child, indented like its siblings, as
    ``Inserter.insert(parent, child, indented=True)`` does for a parent libvirt gives
    no order (<metadata>): for a caller that knows ``parent``'s depth, ``level``,
    and so needs no search and no Inserter."""
    _insert_after(parent, child, parent[-1] if len(parent) else None, True, unit, level)


_LAST = 1 << 30  # the place of what libvirt's order does not name: after everything


# parent tag → child tag → its place in libvirt's order.
_RANKS = {parent: {tag: i for i, tag in enumerate(order)}
          for parent, order in CHILD_ORDER.items()}


class MixedContent(Exception):
    """An element that holds text where an element must be added (``<os>hvm</os>``)."""

    def __init__(self, parent, child_tag: str):
        super().__init__(f"<{parent.tag}> holds text; cannot add <{child_tag}>")
        self.parent, self.child_tag = parent, child_tag


def _insert_after(parent, child, after, last: bool, unit: str, level: int) -> None:
    """Put ``child`` right after ``after`` (None: first), ``parent``'s last child if
    ``last``; ``parent`` stands at depth ``level``."""
    if after is None and last:  # no children yet
        if parent.text and parent.text.strip():
            raise MixedContent(parent, child.tag)
        parent.text = _newline(unit, level + 1)
        child.tail = _newline(unit, level)
        parent.append(child)
        return
    # Whitespace around the new element copies its neighbours' indentation; any real
    # text there stays where it is and the new element gets plain indentation.
    if last:
        tail = after.tail
        if _is_blank(tail):
            child.tail = tail if tail is not None else _newline(unit, level)
            after.tail = _newline(unit, level + 1)
        else:
            child.tail = _newline(unit, level)
        parent.append(child)
        return
    before = after.tail if after is not None else parent.text
    child.tail = before if before is not None and _is_blank(before) \
        else _newline(unit, level + 1)
    if after is None:
        parent.insert(0, child)
    else:
        after.addnext(child)


def _is_blank(text: str | None) -> bool:
    return text is None or not text.strip()


@functools.lru_cache(maxsize=256)
def _newline(unit: str, level: int) -> str:
    return "\n" + unit * level


def indent_unit(root) -> str:
    """The document's indent step, read off the first element that has children."""
    text = root.text
    if text and len(text) > 1 and text[0] == "\n" and len(root) and not text.strip():
        # The common case: the root's own indentation, which the loop below finds first.
        return "\t" if "\t" in text else " " * (len(text) - 1)
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
    depth, parent = 0, element.getparent()
    while parent is not None:
        depth, parent = depth + 1, parent.getparent()
    return depth


def detach(element) -> None:
    """Remove ``element`` and the indentation before it (the last child's tail,
    which closes its parent, goes to the child before it)."""
    parent, previous, tail = element.getparent(), element.getprevious(), element.tail
    if element.getnext() is None:
        if previous is not None:
            previous.tail = tail
        else:
            parent.text = None if tail is None or not tail.strip() else tail
    elif tail and tail.strip():  # text between elements (libvirt has none there) stays
        if previous is not None:
            previous.tail = (previous.tail or "") + tail
        else:
            parent.text = (parent.text or "") + tail
    parent.remove(element)  # lxml takes the tail with the element


def indent_subtree(element, unit: str, level: int) -> None:
    """Indent the inside of ``element``, which stands at depth ``level``."""
    if len(element) == 0:
        return
    element.text = "\n" + unit * (level + 1)
    for child in element:
        indent_subtree(child, unit, level + 1)
        child.tail = "\n" + unit * (level + 1)
    element[-1].tail = "\n" + unit * level


_PROTOTYPES = caching.PerThread(4096)  # lxml elements are not shared between threads


def copy_of(key, make):
    """A copy of the element ``make()`` returns, which is made once per ``key`` (and
    thread) and then only copied: copying is several times faster than parsing or
    building, and the same elements are added compile after compile."""
    return _PROTOTYPES.get_or_make(key, make).__copy__()
