"""The input's own start tags in the output (virtuned/domain/quoting.py): a domain as
``virsh dumpxml`` writes it (``'`` quotes, ``&apos;`` in text) compiled with traits
differs from its input only on the lines that changed."""

from __future__ import annotations

import difflib
import itertools
import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests import strategies
from tests.test_corpus_roundtrip import CORPUS, PASSING, corpus_files
from virtuned import domain
from virtuned.api import compile
from virtuned.diagnostics import VirtunedError

# `virsh -c test:///default dumpxml --inactive test`
DUMPED = """<domain type='test'>
  <name>test</name>
  <uuid>6695eb01-f6a4-8304-79aa-97f2502e193f</uuid>
  <memory unit='KiB'>8388608</memory>
  <currentMemory unit='KiB'>2097152</currentMemory>
  <vcpu placement='static'>2</vcpu>
  <os>
    <type arch='i686'>hvm</type>
    <boot dev='hd'/>
  </os>
  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <disk type='file' device='disk'>
      <source file='/guest/diskimage1'/>
      <target dev='vda' bus='virtio'/>
      <address type='pci' domain='0x0000' bus='0x01' slot='0x00' function='0x0'/>
    </disk>
    <interface type='network'>
      <mac address='aa:bb:cc:dd:ee:ff'/>
      <source network='default'/>
      <target dev='testnet0'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x01' function='0x0'/>
    </interface>
    <memballoon model='virtio'>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x02' function='0x0'/>
    </memballoon>
  </devices>
</domain>
"""
# DUMPED with 'clock localtime' and 'vcpus 4' over what it states (--override):
# the values that changed, what completion adds, and nothing else; libvirt's quotes.
DIFF = """--- a/test
+++ b/test
@@ -1,17 +1,31 @@
 <domain type='test'>
   <name>test</name>
   <uuid>6695eb01-f6a4-8304-79aa-97f2502e193f</uuid>
+  <metadata>
+    <virtuned:provenance xmlns:virtuned='https://virtuned.dev/xmlns/provenance/1' \
compiler='0.1.0'>
+      <virtuned:traits source='&lt;trait 1&gt;' \
sha256='01131f135cd8813a79eb810e71c7442a77b8b73f1b0cc6ba124221ea46928824'/>
+      <virtuned:traits source='&lt;trait 2&gt;' \
sha256='3a884ef8e6109bc2f391ffaf501276b087fdbcf2d82ba3df07af16e5e5e49c26'/>
+    </virtuned:provenance>
+  </metadata>
   <memory unit='KiB'>8388608</memory>
   <currentMemory unit='KiB'>2097152</currentMemory>
-  <vcpu placement='static'>2</vcpu>
+  <vcpu placement='static'>4</vcpu>
   <os>
     <type arch='i686'>hvm</type>
     <boot dev='hd'/>
   </os>
-  <clock offset='utc'/>
+  <features>
+    <acpi/>
+    <apic/>
+  </features>
+  <clock offset='localtime'/>
   <on_poweroff>destroy</on_poweroff>
   <on_reboot>restart</on_reboot>
   <on_crash>destroy</on_crash>
+  <pm>
+    <suspend-to-mem enabled='no'/>
+    <suspend-to-disk enabled='no'/>
+  </pm>
   <devices>
     <disk type='file' device='disk'>
       <source file='/guest/diskimage1'/>
@@ -23,6 +37,7 @@
       <source network='default'/>
       <target dev='testnet0'/>
       <address type='pci' domain='0x0000' bus='0x00' slot='0x01' function='0x0'/>
+      <model type='virtio'/>
     </interface>
     <memballoon model='virtio'>
       <address type='pci' domain='0x0000' bus='0x00' slot='0x02' function='0x0'/>
"""


def diff(before: str, after: str, name: str = "test") -> str:
    return "".join(difflib.unified_diff(before.splitlines(keepends=True),
                                        after.splitlines(keepends=True),
                                        f"a/{name}", f"b/{name}"))


def test_a_dumped_domain_compiled_with_traits_differs_only_where_it_changed():
    out = compile(DUMPED, traits=("clock localtime", "vcpus 4"), override=True).xml
    assert diff(DUMPED, out) == DIFF


def test_a_dumped_domain_no_trait_touches_comes_back_byte_for_byte():
    assert compile(DUMPED).xml == DUMPED


def serialized(document: str, edit=None) -> str:
    tree = domain.parse(document, "in.xml")
    if edit is not None:
        edit(tree.getroot())
    return domain.serialize(tree, document)


def test_a_changed_tag_keeps_its_own_quotes_and_a_new_one_takes_the_most_used():
    document = ("<domain type='kvm'>\n  <clock offset=\"utc\"/>\n  <on_crash>destroy"
                "</on_crash>\n  <vcpu placement='static'>2</vcpu>\n</domain>")

    def edit(root):
        root.find("clock").set("offset", "localtime")
        root.find("vcpu").set("cpuset", "0-1")
        domain.insert_child(root, domain.etree.fromstring("<memory unit='KiB'>1</memory>"))

    assert serialized(document, edit) == (
        "<domain type='kvm'>\n  <memory unit='KiB'>1</memory>\n"
        "  <clock offset=\"localtime\"/>\n  <on_crash>destroy</on_crash>\n"
        "  <vcpu placement='static' cpuset='0-1'>2</vcpu>\n</domain>\n")


def test_spacing_references_and_empty_elements_stay_as_written():
    document = ("<domain  type='kvm' >\n  <description>qemu&apos;s &quot;test&quot;"
                "</description>\n  <os></os>\n  <name\n    >a</name>\n"
                "  <metadata><x:y xmlns:x='urn:x' a='&#65;&amp;'/></metadata>\n</domain>")
    assert serialized(document) == document + "\n"


def test_an_empty_element_that_gains_a_child_opens():
    document = "<domain type='kvm'>\n  <os />\n</domain>"

    def edit(root):
        domain.insert_child(root.find("os"), domain.etree.fromstring(
            "<type arch='x86_64'>hvm</type>"))

    assert serialized(document, edit) == (
        "<domain type='kvm'>\n  <os>\n    <type arch='x86_64'>hvm</type>\n  </os>\n"
        "</domain>\n")


def test_a_value_with_a_quote_is_escaped_in_single_quotes():
    document = "<domain type='kvm'>\n  <title>x</title>\n</domain>"

    def edit(root):
        root.find("title").set("note", "it's \"x\"")

    assert serialized(document, edit) == (
        "<domain type='kvm'>\n  <title note='it&apos;s &quot;x&quot;'>x</title>\n"
        "</domain>\n")


def test_comments_and_cdata_are_not_tags():
    document = ("<domain type='kvm'>\n  <!-- <name a='b'> isn't a tag -->\n"
                "  <description><![CDATA[<x y='z'>]]></description>\n</domain>")

    def edit(root):
        root.set("id", "1")

    assert serialized(document, edit) == document.replace("type='kvm'",
                                                          "type='kvm' id='1'") + "\n"


# ---------------------------------------------------------------- the corpus

def _dumped_files() -> list[str]:
    if not PASSING.exists():
        return []
    dumped = (name for name in corpus_files()
              if "='" in (text := (CORPUS / name).read_text()) and '="' not in text)
    return list(itertools.islice(dumped, 400))  # read no more files than that


DUMPED_FILES = _dumped_files()
TRAITS = ("clock localtime", "video virtio", "memory balloon off", "rng virtio",
          "disk cache none", "network model virtio", "vcpus 3", "usb tablet",
          "serial console", "guest agent", "pvpanic", "memory 3GiB")


def _normalized(line: str) -> str:
    return re.sub(r"""=(["'])(.*?)\1""", r'="\2"', line)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.sampled_from(DUMPED_FILES or [""]), st.lists(st.sampled_from(TRAITS),
                                                       min_size=1, max_size=3, unique=True))
def test_a_dumped_corpus_domain_differs_only_on_changed_lines(name, traits):
    """Whatever libvirt-written domain and traits: no line leaves and comes back
    with only its quotes or spacing changed, and every added line is in ``'``."""
    if not name:
        return  # no corpus here: test_corpus_round_trips says so
    text = (CORPUS / name).read_text()
    try:
        out = compile(text, traits=tuple(traits), override=True, domain_name=name).xml
    except VirtunedError:
        return  # refused (exit 2 or 3): nothing to compare
    lines = list(difflib.unified_diff(text.splitlines(), out.splitlines(), lineterm="", n=0))
    removed = {_normalized(line[1:]) for line in lines
               if line.startswith("-") and not line.startswith("---")}
    added = [line[1:] for line in lines if line.startswith("+") and not line.startswith("+++")]
    assert removed.isdisjoint(_normalized(line) for line in added)
    assert [line for line in added if '="' in line] == []


def _c14n(text: str) -> bytes:
    from lxml import etree

    return etree.tostring(etree.fromstring(text.encode()), method="c14n")


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.one_of(strategies.domain_documents(), strategies.realistic_domains()),
       st.lists(st.sampled_from(TRAITS), min_size=1, max_size=2, unique=True))
def test_keeping_the_inputs_tags_never_changes_what_the_output_says(document, traits):
    """Whatever the input's quotes, spacing, references, comments and CDATA: the
    output with the input's tags reads (canonical XML) as lxml's own does."""
    import virtuned.domain.quoting as quoting

    try:
        kept = compile(document, traits=tuple(traits), override=True).xml
    except VirtunedError:
        return
    real = quoting.irregular
    quoting.irregular = lambda original: False
    try:
        plain = compile(document, traits=tuple(traits), override=True).xml
    finally:
        quoting.irregular = real
    assert _c14n(kept) == _c14n(plain)


def test_a_domain_of_many_alike_devices_changes_only_its_changed_lines():
    """300 interfaces, each tag repeated 300 times: the alignment places every one
    (tags this common are not used to align, or aligning would take minutes)."""
    nics = "".join(f"    <interface type='network'>\n      <mac address='52:54:00:00:"
                   f"{i // 256:02x}:{i % 256:02x}'/>\n      <source network='default'/>\n"
                   "    </interface>\n" for i in range(300))
    dumped = ("<domain type='kvm'>\n  <name>many</name>\n  <memory unit='KiB'>1048576"
              "</memory>\n  <os>\n    <type arch='x86_64' machine='pc-q35-7.2'>hvm</type>\n"
              f"  </os>\n  <devices>\n{nics}  </devices>\n</domain>\n")
    xml = compile(dumped, traits=["network model virtio"]).xml
    removed = [line for line in difflib.ndiff(dumped.splitlines(), xml.splitlines())
               if line.startswith("- ")]
    assert removed == []  # every input line is still there, as written
    assert xml.count("<model type='virtio'/>") == 300
