"""virtuned against the real virt-install: the same intent, the same facts, except the
differences tests/parity.py lists (each with its reason, in docs/parity.md).

virt-install runs for real (Debian's ``virtinst``, installed by scripts/setup.sh), in
one process for all cases, each time the tests run: nothing is cached between runs.
"""

from __future__ import annotations

import pytest

import virtuned
from tests import parity


@pytest.fixture(scope="module")
def compared() -> dict[str, tuple[dict, dict]]:
    return parity.compare_all()


@pytest.mark.parametrize("case", parity.CASES, ids=[c.name for c in parity.CASES])
def test_virtuned_writes_what_virt_install_writes_but_for_the_listed_differences(
        case, compared):
    theirs, ours = compared[case.name]
    assert not theirs["machine"].startswith("error: "), theirs["machine"]
    wanted, _ = parity.expected(case, theirs)
    assert ours == wanted


def test_every_listed_difference_is_a_real_one(compared):
    """A difference that no case shows any more is gone: its rule must go too."""
    used = {key for case in parity.CASES
            for keys in parity.expected(case, compared[case.name][0])[1].values()
            for key in keys}
    assert [d.key for d in parity.DIFFERENCES if d.key not in used] == []


def test_the_cases_cover_what_the_comparison_promises():
    """At least 15 guest OSes (Windows, RHEL and its rebuilds, Fedora, Debian,
    Ubuntu, SUSE, Alpine, Arch, FreeBSD, none in particular) × every variant."""
    families = {parity._osinfo(c).family for c in parity.CASES}
    assert (len(parity.OSES), len(parity.CASES), sorted(families)) == (
        17, 17 * 7, ["bsd", "linux", "other", "windows"])


def test_docs_parity_md_has_the_current_table(compared):
    """docs/parity.md shows what the tools write today: rewrite it with
    ``.venv/bin/python -m tests.parity --write`` and review the change."""
    text = parity.DOC.read_text()
    assert parity.replace_generated(text, parity.markdown(compared)) == text


def test_win11_gets_a_tpm_exactly_when_the_host_has_swtpm():
    """virt-install adds <tpm model='tpm-crb'><backend type='emulator'/> to a UEFI
    guest when the domain capabilities offer the emulator backend (swtpm); so does
    'recommended' for win11, and it says why when the host has no swtpm."""
    def compile_win11(domcaps):
        return virtuned.compile(parity.INPUT, traits=["os win11", "recommended"],
                                domcaps=(parity.DOMCAPS / domcaps).read_text(),
                                domcaps_name=domcaps)

    without = compile_win11("kvm-q35.xml")
    assert [w.message for w in without.warnings] == [
        "preference 'tpm (recommended for win11: UEFI guests get a TPM, as virt-install "
        "gives them)' dropped: it cannot hold: tpm (recommended for win11: UEFI guests "
        "get a TPM, as virt-install gives them): the domain capabilities "
        "(kvm-q35.xml) offer no TPM backend 'emulator' (<tpm> enum "
        "'backendModel' lists passthrough)"]
    with_swtpm = compile_win11("kvm-q35-swtpm.xml")
    assert (with_swtpm.warnings, parity.facts(with_swtpm.xml)["tpm"]) == (
        (), "tpm-crb/emulator")
