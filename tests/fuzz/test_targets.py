"""The fuzz targets (fuzz/targets.py) run clean on their seeds and on every input a
fuzzer once crashed virtuned with (each also has a test of its exact answer below);
scripts/fuzz.sh is the coverage-guided tier (docs/security.md)."""

from __future__ import annotations

import glob

import pytest

from fuzz.targets import INLINE_SEEDS, ROOT, SEEDS, TARGETS
from tests.cli_run import run


def seeds(target: str) -> list[bytes]:
    found = [open(path, "rb").read() for pattern in SEEDS[target]
             for path in sorted(glob.glob(str(ROOT / pattern)))]
    return found[:12] + list(INLINE_SEEDS.get(target, ()))


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_every_target_runs_clean_on_its_seeds(target):
    for data in seeds(target) or [b""]:
        TARGETS[target](data)


CELL_WITHOUT_MEMORY = (b"<domain type='kvm'>\n  <name>g</name>\n  <memory unit='GiB'>4"
                       b"</memory><cpu>\n    <numa>\n      <cell id='0' cpus='0-1' "
                       b"me-ory='2' unit='GiB'/>\n      <cell id='1' cpus='2-3' "
                       b"memory='2' unit='GiB'/>\n    </numa>\n  </cpu>\n</domain>\n")

METADATA_WITH_TEXT = b'<domain type="kvm">\n  <metadata>\n   text\n  </metadata>\n</domain>\n'

# Inputs a fuzzer found (scripts/fuzz.sh), by target: each once ended in an exception
# other than VirtunedError.
FOUND = {
    # a byte that is not UTF-8 in -t: its surrogate reached a hash (UnicodeEncodeError)
    "dsl": [b"dedicateatepus\nmla#e pla#e on ho\x8bt node 1\n"],
    # a guest cell without memory= (AttributeError in the planner); a <metadata>
    # holding text, where the provenance goes (domain.MixedContent)
    "domain": [CELL_WITHOUT_MEMORY, METADATA_WITH_TEXT],
}


@pytest.mark.parametrize("target, data", [(t, d) for t, found in FOUND.items()
                                          for d in found])
def test_what_a_fuzzer_found_is_answered(target, data):
    TARGETS[target](data)


def test_a_byte_that_is_not_utf8_in_an_argument_is_exit_2():
    assert run(["compile", "-t", "video \udc8b"]) == (
        2, "", "<trait 1>:1:7: error: byte 0x8b, which is not UTF-8, in trait text is "
               "not allowed\n")


@pytest.mark.parametrize("document, trait, error", [
    (CELL_WITHOUT_MEMORY, "dedicated cpus",
     "in.xml:5:7: error: invalid <cell> size '' unit 'GiB'\n"
     "          <cell id='0' cpus='0-1' me-ory='2' unit='GiB'/>\n          ^^^^^\n"),
    (METADATA_WITH_TEXT, "video qxl",
     "in.xml:2:3: error: <metadata> holds text, and virtuned records the profiles it "
     "used there\n      <metadata>\n      ^^^^^^^^^\n"
     "hint: libvirt keeps only elements in <metadata>\n"),
], ids=["cell without memory", "metadata with text"])
def test_the_domains_a_fuzzer_found_are_exit_2(tmp_path, document, trait, error):
    (tmp_path / "in.xml").write_bytes(document)
    assert run(["compile", "in.xml", "-t", trait], cwd=tmp_path) == (2, "", error)
