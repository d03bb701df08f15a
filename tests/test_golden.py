"""Every golden case gives exactly its expected XML or its expected error, and every
expected XML is accepted by libvirt (RelaxNG schema and the QEMU driver)."""

import pytest

from tests.golden_cases import case_id, cases, machine_of, run_case, traits_of

CASES = cases()


@pytest.mark.parametrize("case", CASES, ids=[case_id(c) for c in CASES])
def test_golden(case, regenerate):
    code, out, err = run_case(case)
    expected_xml, expected_err = case / "expected.xml", case / "expected.err"
    if regenerate:
        _regenerate(case, code, out, err)
    if expected_xml.exists():  # success, perhaps with warnings (expected.err: exit 0)
        warnings = expected_err.read_text() if expected_err.exists() else "exit 0\n"
        assert (f"exit {code}\n{err}", out) == (warnings, expected_xml.read_text())
    else:
        assert (out, f"exit {code}\n{err}") == ("", expected_err.read_text())


def _regenerate(case, code: int, out: str, err: str) -> None:
    expected_xml, expected_err = case / "expected.xml", case / "expected.err"
    expected_xml.unlink(missing_ok=True)
    expected_err.unlink(missing_ok=True)
    if code == 0:
        expected_xml.write_text(out)
    if code != 0 or err:
        expected_err.write_text(f"exit {code}\n{err}")


def test_golden_outputs_pass_libvirt():
    from tests.libvirt import assert_libvirt_accepts

    outputs = {case_id(c): (c / "expected.xml").read_text()
               for c in CASES if (c / "expected.xml").exists()}
    assert outputs
    assert_libvirt_accepts(outputs)


def test_every_trait_has_golden_cases_on_pc_and_on_q35():
    """A trait is its module and its golden cases: a trait without a case on each
    machine (a refusal counts: it is the behaviour there) fails here."""
    from virtuned.resolve import registry

    covered = set()
    for case in CASES:
        traits = traits_of(case)
        covered |= {(t.phrase, machine_of(case, traits)) for t in traits}
    missing = [f"{d.name} on {machine}" for d in registry.all_traits()
               for machine in ("pc", "q35") if (d.phrase, machine) not in covered]
    assert missing == []
