"""Domain XML in and out (virtuned/domain/, through ``virtuned.api.compile``).

Hostile input gets exit code 2, an exact message and nothing else: no entity is
expanded, no file is opened. Any other well-formed domain compiled with no traits
comes back equal in canonical XML (C14N)."""

from __future__ import annotations

import contextlib
import os
import threading
import time

import pytest
from hypothesis import HealthCheck, given, settings
from lxml import etree

from tests import strategies
from virtuned import domain
from virtuned.api import compile
from virtuned.diagnostics import ExitCode, Sources, Span, VirtunedError, render

DTD_MESSAGE = "DTDs and entity declarations are not allowed in domain XML"
DTD_HINT = "libvirt domain XML never needs a DOCTYPE; remove it"
MINIMAL = ("<domain type='kvm'><name>vm</name><memory>1048576</memory>"
           "<os><type arch='x86_64' machine='q35'>hvm</type></os></domain>")


def c14n(document: bytes) -> bytes:
    """Canonical XML of a document (with its top-level comments and PIs)."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                             huge_tree=False)
    return etree.tostring(etree.ElementTree(etree.fromstring(document, parser)),
                          method="c14n")


def output_bytes(xml: str) -> bytes:
    """The compiled text as the CLI writes it (UTF-8)."""
    return xml.encode("utf-8")


def failure(document, name: str = "d.xml") -> tuple[Span, str, str | None, str]:
    """(span, message, hint, rendered) of the single diagnostic a document must give."""
    sources = Sources()
    with pytest.raises(VirtunedError) as info:
        compile(document, domain_name=name, diagnostics_sources=sources)
    error = info.value
    assert error.exit_code == ExitCode.INVALID_INPUT
    assert len(error.diagnostics) == 1
    d = error.diagnostics[0]
    return d.span, d.message, d.hint, render(d, sources)


@contextlib.contextmanager
def watched_file(directory):
    """A named pipe that records whether anything opens it for reading.

    A reader of a FIFO blocks until a writer comes; the watcher keeps trying to open
    the write end without blocking (which fails while there is no reader), so if the
    parser ever opens the file it gets a marker and EOF instead of hanging, and
    ``opened`` is set before the parser can return."""
    path = os.path.join(directory, "secret")
    os.mkfifo(path)
    opened, stop = threading.Event(), threading.Event()

    def watch():
        while not stop.is_set():
            try:
                fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:  # ENXIO: nobody has the file open for reading
                time.sleep(0.0005)
                continue
            opened.set()
            try:
                os.write(fd, b"SECRET-MARKER")
            finally:
                os.close(fd)
            return

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        yield path, opened
    finally:
        stop.set()
        watcher.join()


def attempt(document):
    """Compile; return the result or the VirtunedError (anything else propagates)."""
    try:
        return compile(document, domain_name="d.xml")
    except VirtunedError as error:
        return error


def assert_refused_without_access(document: bytes, opened, line: int, col: int = 1):
    outcome = attempt(document)
    assert not opened.is_set(), "the parser opened the entity's file"
    text = outcome.xml if not isinstance(outcome, VirtunedError) else str(outcome)
    assert "SECRET-MARKER" not in text and "root:" not in text
    assert isinstance(outcome, VirtunedError), f"accepted, giving {outcome.xml!r}"
    assert outcome.exit_code == ExitCode.INVALID_INPUT
    assert [(d.span, d.message, d.hint) for d in outcome.diagnostics] == [
        (Span("d.xml", line, col), DTD_MESSAGE, DTD_HINT)]


# ---------------------------------------------------------------- XXE

XXE = """<?xml version="1.0"?>
<!DOCTYPE domain [<!ENTITY xxe SYSTEM "file://{path}">]>
<domain type="kvm"><name>&xxe;</name></domain>
"""


def test_xxe_etc_passwd():
    span, message, hint, rendered = failure(XXE.format(path="/etc/passwd").encode())
    assert (span, message, hint) == (Span("d.xml", 2, 1), DTD_MESSAGE, DTD_HINT)
    assert rendered == (
        "d.xml:2:1: error: DTDs and entity declarations are not allowed in domain XML\n"
        '    <!DOCTYPE domain [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
        "    ^\n"
        "hint: libvirt domain XML never needs a DOCTYPE; remove it")


XXE_VARIANTS = {
    "general entity": XXE,
    "parameter entity": """<?xml version="1.0"?>
<!DOCTYPE domain [<!ENTITY % p SYSTEM "file://{path}"> %p;]>
<domain type="kvm"><name>x</name></domain>
""",
    "external subset": """<?xml version="1.0"?>
<!DOCTYPE domain SYSTEM "file://{path}">
<domain type="kvm"><name>x</name></domain>
""",
    "entity in an attribute": """<?xml version="1.0"?>
<!DOCTYPE domain [<!ENTITY xxe SYSTEM "file://{path}">]>
<domain type="kvm" id="&xxe;"><name>x</name></domain>
""",
}


@pytest.mark.parametrize("variant", XXE_VARIANTS)
def test_xxe_opens_nothing(tmp_path, variant):
    with watched_file(str(tmp_path)) as (path, opened):
        document = XXE_VARIANTS[variant].format(path=path).encode()
        assert_refused_without_access(document, opened, line=2)


UTF16 = {  # codec, declared encoding, byte order mark
    "utf-16-bom": ("utf-16-le", "UTF-16", "\ufeff"),
    "utf-16le": ("utf-16-le", "UTF-16LE", ""),
    "utf-16be": ("utf-16-be", "UTF-16BE", ""),
}


def utf16(text: str, form: str) -> bytes:
    codec, declared, bom = UTF16[form]
    text = text.replace('<?xml version="1.0"?>',
                        f'<?xml version="1.0" encoding="{declared}"?>')
    return (bom + text).encode(codec)


@pytest.mark.parametrize("form", UTF16)
@pytest.mark.parametrize("variant", XXE_VARIANTS)
def test_xxe_in_utf16_opens_nothing(tmp_path, variant, form):
    """The DOCTYPE check must not depend on the document being ASCII-compatible."""
    with watched_file(str(tmp_path)) as (path, opened):
        document = utf16(XXE_VARIANTS[variant].format(path=path), form)
        assert_refused_without_access(document, opened, line=2)


def test_xinclude_is_kept_not_processed():
    document = (b"<domain type='kvm'><name>vm</name><memory>1</memory>"
                b"<os><type arch='x86_64' machine='q35'>hvm</type></os>"
                b"<xi:include xmlns:xi='http://www.w3.org/2001/XInclude' "
                b"href='/etc/passwd' parse='text'/></domain>")
    out = compile(document).xml
    assert "root:" not in out
    assert c14n(output_bytes(out)) == c14n(document)


# ---------------------------------------------------------------- entity expansion

def billion_laughs(levels: int = 10) -> str:
    entities = ['<!ENTITY lol0 "lol">'] + [
        f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, levels)]
    return ('<?xml version="1.0"?>\n<!DOCTYPE domain [\n'
            + "\n".join(f"  {e}" for e in entities)
            + f"\n]>\n<domain type='kvm'><name>&lol{levels - 1};</name></domain>\n")


def quadratic_blowup() -> str:
    return ('<?xml version="1.0"?>\n'
            f'<!DOCTYPE domain [<!ENTITY a "{"x" * 50_000}">]>\n'
            f"<domain type='kvm'><name>{'&a;' * 50_000}</name></domain>\n")


@pytest.mark.parametrize("document", [billion_laughs(), quadratic_blowup()],
                         ids=["billion-laughs", "quadratic-blowup"])
def test_entity_expansion_refused(document):
    started = time.perf_counter()
    span, message, hint, rendered = failure(document.encode())
    assert time.perf_counter() - started < 1.0
    assert (span, message, hint) == (Span("d.xml", 2, 1), DTD_MESSAGE, DTD_HINT)
    # Only the source line of the DOCTYPE, never an expansion, is shown.
    assert "lollollol" not in rendered
    assert len(rendered) < len(document.splitlines()[1]) + 300


@pytest.mark.parametrize("form", UTF16)
def test_billion_laughs_in_utf16_refused_before_expansion(form):
    """libxml2 itself stops the expansion at its amplification limit, but only after
    expanding up to it; virtuned must refuse the DTD before any expansion starts."""
    span, message, hint, _ = failure(utf16(billion_laughs(), form))
    assert (span, message, hint) == (Span("d.xml", 2, 1), DTD_MESSAGE, DTD_HINT)


def test_undeclared_entity():
    span, message, hint, rendered = failure(b"<domain>&xxe;</domain>")
    assert (span, message, hint) == (
        Span("d.xml", 1, 14), "malformed XML: Entity 'xxe' not defined", None)
    assert rendered == ("d.xml:1:14: error: malformed XML: Entity 'xxe' not defined\n"
                        "    <domain>&xxe;</domain>\n"
                        "                 ^")


@pytest.mark.parametrize("inside", [
    "<!-- no <!DOCTYPE here -->",
    "<description><![CDATA[<!DOCTYPE html><p>notes</p>]]></description>",
    "<?app <!ENTITY?>",
])
def test_doctype_text_inside_comments_and_cdata_is_not_a_dtd(inside):
    document = MINIMAL.replace("</domain>", inside + "</domain>").encode()
    assert c14n(output_bytes(compile(document).xml)) == c14n(document)


# ---------------------------------------------------------------- deep nesting

def nested(levels: int) -> bytes:
    return b"<domain>" + b"<a>" * levels + b"</a>" * levels + b"</domain>"


def test_ten_thousand_levels():
    started = time.perf_counter()
    span, message, hint, _ = failure(nested(10_000))
    assert time.perf_counter() - started < 1.0
    # libxml2 stops at 256 levels (virtuned never sets XML_PARSE_HUGE) before our own
    # 64-level check can run; the message is ours all the same.
    assert (span, message, hint) == (
        Span("d.xml", 1, 776), "domain XML nests deeper than 64 levels", None)


@pytest.mark.parametrize("levels", [64, 100, 255])
def test_deeper_than_max_depth(levels):
    span, message, hint, _ = failure(nested(levels))
    assert (span, message, hint) == (
        Span("d.xml", 1, 1), f"domain XML nests deeper than {domain.MAX_DEPTH} levels", None)


def test_max_depth_is_accepted():
    # <domain> is level 1, so 63 levels of <a> make 64.
    inner = "<a>" * 63 + "</a>" * 63
    document = MINIMAL.replace("</domain>", inner + "</domain>").encode()
    assert c14n(output_bytes(compile(document).xml)) == c14n(document)


# ---------------------------------------------------------------- size

def test_oversized():
    document = b"<domain><name>" + b"x" * domain.MAX_BYTES + b"</name></domain>"
    started = time.perf_counter()
    span, message, hint, _ = failure(document)
    assert time.perf_counter() - started < 1.0
    assert (span, message, hint) == (
        Span("d.xml", 1, 1),
        f"domain XML is {len(document)} bytes; the limit is {domain.MAX_BYTES}", None)
    assert message == "domain XML is 10485790 bytes; the limit is 10485760"


def test_oversized_counts_utf8_bytes_of_text_input():
    document = "<domain><name>" + "\u00e9" * (domain.MAX_BYTES // 2) + "</name></domain>"
    _, message, _, _ = failure(document)
    assert message == "domain XML is 10485790 bytes; the limit is 10485760"


def test_exactly_the_limit_is_accepted():
    head, tail = MINIMAL.encode().split(b"</domain>")
    comment = b"<!--" + b"c" * 1000 + b"-->\n"
    padding = domain.MAX_BYTES - len(head) - len(b"</domain>")
    count, rest = divmod(padding, len(comment))
    document = head + comment * count + b" " * rest + b"</domain>"
    assert len(document) == domain.MAX_BYTES
    assert c14n(output_bytes(compile(document).xml)) == c14n(document)


# ---------------------------------------------------------------- encoding

def test_invalid_utf8():
    span, message, hint, rendered = failure(b"<domain><name>\xff\xfe</name></domain>")
    assert (span, message, hint) == (
        Span("d.xml", 1, 15), "not valid utf-8 text: byte 0xff", None)
    assert rendered == (
        "d.xml:1:15: error: not valid utf-8 text: byte 0xff\n"
        "    <domain><name>\ufffd\ufffd</name></domain>\n"
        "                  ^")


def test_truncated_utf8_sequence():
    span, message, _, _ = failure(b"<domain type='kvm'>\n  <name>caf\xc3</name>\n</domain>")
    assert (span, message) == (Span("d.xml", 2, 12), "not valid utf-8 text: byte 0xc3")


def test_utf8_bom_is_accepted():
    document = b"\xef\xbb\xbf" + MINIMAL.encode()
    assert c14n(output_bytes(compile(document).xml)) == c14n(document)


def test_utf16_document_round_trips():
    document = ('<?xml version="1.0" encoding="UTF-16"?>\n'
                + MINIMAL.replace("<name>vm</name>", "<name>caf\u00e9</name>")).encode("utf-16")
    assert c14n(output_bytes(compile(document).xml)) == c14n(document)


def test_latin1_document_round_trips():
    document = ('<?xml version="1.0" encoding="ISO-8859-1"?>\n'
                + MINIMAL.replace("<name>vm</name>", "<name>caf\u00e9</name>")).encode("latin-1")
    assert c14n(output_bytes(compile(document).xml)) == c14n(document)


def test_text_input_with_a_foreign_encoding_declaration():
    text = ('<?xml version="1.0" encoding="ISO-8859-1"?>\n'
            + MINIMAL.replace("<name>vm</name>", "<name>caf\u00e9</name>"))
    outcome = attempt(text)
    assert isinstance(outcome, VirtunedError) or "caf\u00e9" in outcome.xml


# ---------------------------------------------------------------- not a domain

@pytest.mark.parametrize("document, span, message", [
    (b"<foo/>", Span("d.xml", 1, 1), "expected a <domain> root element, got <foo>"),
    (b"<?xml version='1.0'?>\n<!-- c -->\n<capabilities>\n</capabilities>",
     Span("d.xml", 3, 1), "expected a <domain> root element, got <capabilities>"),
    (b"<domain xmlns='urn:x'/>", Span("d.xml", 1, 1),
     "expected a <domain> root element, got <{urn:x}domain>"),
    (b"<x:domain xmlns:x='http://libvirt.org/schemas/domain/qemu/1.0'/>",
     Span("d.xml", 1, 1),
     "expected a <domain> root element, got <{http://libvirt.org/schemas/domain/qemu/1.0}domain>"),
    (b"", Span("d.xml", 1, 1), "malformed XML: Document is empty"),
    (b"   ", Span("d.xml", 1, 4), "malformed XML: Start tag expected, '<' not found"),
    (b"\x1f\x8b\x08\x00", Span("d.xml", 1, 2), "not valid utf-8 text: byte 0x8b"),
    (b"<domain/><domain/>", Span("d.xml", 1, 10),
     "malformed XML: Extra content at the end of the document"),
    (b"<domain type='kvm'><name>a</name>", Span("d.xml", 1, 34),
     "malformed XML: Premature end of data in tag domain line 1"),
    (b"<domain>\n  <name>a</nam>\n</domain>", Span("d.xml", 2, 16),
     "malformed XML: Opening and ending tag mismatch: name line 2 and nam"),
])
def test_not_a_domain(document, span, message):
    assert failure(document)[:3] == (span, message, None)


def test_not_a_domain_rendered():
    assert failure(b"<foo>\n</foo>")[3] == (
        "d.xml:1:1: error: expected a <domain> root element, got <foo>\n"
        "    <foo>\n"
        "    ^^^^")


@pytest.mark.parametrize("document", [
    b"<domain>some text</domain>",
    b"<domain type='kvm'><name>a</name><memory>1</memory><os>hvm</os></domain>",
])
def test_text_where_completion_adds_an_element(document):
    with pytest.raises(VirtunedError) as info:
        compile(document)
    assert info.value.exit_code == ExitCode.INVALID_INPUT


def test_completion_does_not_duplicate_text():
    document = (b"<domain type='kvm'>TEXT<memory>1</memory>"
                b"<os><type arch='x86_64' machine='q35'>hvm</type></os></domain>")
    assert compile(document).xml.count("TEXT") == 1


# ---------------------------------------------------------------- lossless round trip

SETTINGS = settings(max_examples=100, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(strategies.domain_documents())
def test_generated_domain_round_trips(document):
    assert c14n(output_bytes(compile(document).xml)) == c14n(document)


@settings(max_examples=30, deadline=None)
@given(strategies.domain_documents())
def test_generated_domain_round_trips_as_text(document):
    text = document.decode("utf-8")
    assert c14n(output_bytes(compile(text).xml)) == c14n(document)


@settings(max_examples=100, deadline=None)
@given(strategies.realistic_domains())
def test_realistic_domain_round_trips(document):
    assert c14n(output_bytes(compile(document).xml)) == c14n(document)


# Incomplete domains: completion adds @type, <name>, <memory> (with <vcpu>) and
# <os><type>, and must change nothing else. It only adds an element whose tag no
# sibling has, so the output's children are matched to the input's in order by tag;
# whitespace-only text is ignored (an insertion re-indents its neighbours).
COMPLETION_TAGS = {"name", "memory", "vcpu", "os", "type"}


def _significant(text):
    return None if text is None or not text.strip() else text


def assert_only_additions(given_, got, path="/domain"):
    assert got.tag == given_.tag, path
    extra = set(got.attrib) - set(given_.attrib)
    assert extra <= ({"type"} if path == "/domain" else set()), (path, extra)
    assert {k: got.get(k) for k in given_.attrib} == dict(given_.attrib), path
    assert _significant(got.text) == _significant(given_.text), path
    remaining = list(given_)
    for child in got:
        if remaining and remaining[0].tag == child.tag:
            expected = remaining.pop(0)
            assert _significant(child.tail) == _significant(expected.tail), path
            if isinstance(child.tag, str):
                assert_only_additions(expected, child, f"{path}/{child.tag}")
            else:  # comment or processing instruction
                assert child.text == expected.text, path
        else:
            assert isinstance(child.tag, str) and child.tag in COMPLETION_TAGS, \
                (path, child.tag)
            assert _significant(child.tail) is None, path
    assert not remaining, (path, [c.tag for c in remaining])


@SETTINGS
@given(strategies.domain_documents(complete=False))
def test_completion_only_adds(document):
    given_root = etree.fromstring(document, etree.XMLParser(resolve_entities=False))
    got_root = etree.fromstring(output_bytes(compile(document).xml))
    assert_only_additions(given_root, got_root)
    assert got_root.get("type") == (given_root.get("type") or "kvm")
    assert got_root.find("name") is not None
    assert got_root.find("memory") is not None
    if got_root.get("type") in ("kvm", "qemu"):
        assert got_root.find("os/type") is not None
    if given_root.find("name") is None:
        name = got_root.find("name")
        assert (name.text, dict(name.attrib), len(name)) == ("vm", {}, 0)
    if given_root.find("memory") is None:
        memory = got_root.find("memory")
        assert (memory.text, dict(memory.attrib)) == ("1048576", {"unit": "KiB"})


# ---- shapes libvirt's schema forbids (virtuned/domain ONCE)

@pytest.mark.parametrize("document, message, first", [
    ('<domain type="kvm"><name>a</name><name>b</name></domain>',
     "<domain>:1:34: a second <name> in <domain>: libvirt's schema allows one", (1, 20)),
    ('<domain type="kvm">\n  <memory>1</memory>\n  <os><type>hvm</type><type>hvm</type>'
     '</os>\n  <memory>2</memory>\n</domain>',
     "<domain>:3:23: a second <type> in <os>: libvirt's schema allows one", (3, 7)),
    ('<domain>\n  <devices/>\n  <uuid>x</uuid>\n  <devices/>\n  <uuid>y</uuid>\n</domain>',
     "<domain>:4:3: a second <devices> in <domain>: libvirt's schema allows one", (2, 3)),
    ('<domain><features><acpi/><apic/><acpi/></features></domain>',
     "<domain>:1:33: a second <acpi> in <features>: libvirt's schema allows one",
     (1, 19)),
])
def test_a_second_of_what_the_schema_allows_once_is_refused_at_its_place(
        document, message, first):
    with pytest.raises(VirtunedError) as caught:
        domain.parse(document, "<domain>")
    assert (caught.value.exit_code, str(caught.value)) == (2, message)
    [related] = caught.value.diagnostics[0].related
    assert ((related.span.line, related.span.col), related.message) == (
        first, "the first is here")


@pytest.mark.parametrize("tag", sorted(domain.ONCE["domain"]))
def test_every_domain_singleton_is_counted(tag):
    with pytest.raises(VirtunedError, match=f"a second <{tag}> in <domain>"):
        domain.parse(f"<domain>\n<{tag}/>\n<{tag}/>\n</domain>", "in.xml")


def test_what_may_repeat_passes_unchanged():
    document = ("<domain><sysinfo type='smbios'/><sysinfo type='fwcfg'/>"
                "<seclabel type='none'/><seclabel type='dynamic' model='dac'/>"
                "<os><boot dev='hd'/><boot dev='cdrom'/></os>"
                "<app:x xmlns:app='urn:a'/><app:x xmlns:app='urn:a'/><unknown/><unknown/>"
                "</domain>")
    assert domain.serialize(domain.parse(document, "in.xml"), document.encode()) == \
        document + "\n"
