"""Whatever exits 0 is accepted by libvirt's schema: random combinations of the
registry's traits, with values drawn from each slot's own range (or the trait's
example where a slot takes free text), compiled onto the example domains, with and
without a host, and every compiled domain validated against libvirt's domain.rng
in process (lxml's RelaxNG). Anything but a VirtunedError (exit 2 or 3) fails."""

from __future__ import annotations

import functools
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from tests.libvirt import require_libvirt
from virtuned import api, vocab  # noqa: F401  (registers the traits)
from virtuned.diagnostics import ExitCode, VirtunedError
from virtuned.resolve import registry

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = "/usr/share/libvirt/schemas/domain.rng"
DOMAINS = (None, *sorted((ROOT / "examples/domains").glob("*.xml")))
HOST = ROOT / "examples/hosts/two-node-smt.xml"
SIZES = ("4KiB", "2MiB", "1GiB", "512MiB", "2GiB", "4GiB", "3MiB", "1b")
CPU_LISTS = ("0-1", "0-3,8", "2", "0-15,^3", "4-7")


@functools.cache
def schema() -> etree.RelaxNG:
    return etree.RelaxNG(etree.parse(SCHEMA))


def _value(slot: registry.Slot) -> st.SearchStrategy[str] | None:
    """Text the slot takes, from its own range (the edges included), or None for a
    slot of free text (a word, a string, an OS id), whose trait's example is used."""
    if slot.type == "choice" or (slot.type == "int" and slot.choices):
        return st.sampled_from(slot.choices)
    if slot.type == "int":
        low = slot.low or 0
        high = slot.high if slot.high is not None else low + 64
        return st.one_of(st.integers(low, min(high, low + 8)),
                         st.sampled_from((low, high))).map(str)
    if slot.type == "size":
        return st.sampled_from(SIZES)
    if slot.type == "cpus":
        return st.sampled_from(CPU_LISTS)
    return None


@st.composite
def trait_lines(draw, definition: registry.TraitDef) -> str:
    words: list[str] = []

    def walk(tokens) -> bool:
        for token in tokens:
            if isinstance(token, str):
                words.append(token)
            elif isinstance(token, registry.Optional):
                if draw(st.booleans()) and not walk(token.tokens):
                    return False
            else:
                value = _value(token)
                if value is None:
                    return False
                words.append(draw(value))
        return True

    if draw(st.integers(0, 3)) == 0 or not walk(definition.tokens):
        return definition.example
    return " ".join(words)


@st.composite
def requests(draw) -> dict:
    definitions = draw(st.lists(st.sampled_from(registry.all_traits()), min_size=1,
                                max_size=5, unique_by=lambda d: d.phrase))
    lines = [draw(trait_lines(d)) for d in definitions]
    domain = draw(st.sampled_from(DOMAINS))
    request = {"traits": ("\n".join(lines),),
               "domain_xml": domain.read_bytes() if domain else None,
               "domain_name": str(domain) if domain else "<domain>"}
    if draw(st.booleans()):
        request.update(host=HOST.read_bytes(), host_name=str(HOST))
    return request


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(requests())
def test_every_compiled_domain_passes_libvirts_schema(request):
    require_libvirt()
    try:
        xml = api.compile(**request).xml
    except VirtunedError as exc:  # a combination that conflicts or cannot be placed
        assert exc.exit_code in (ExitCode.INVALID_INPUT, ExitCode.CONFLICT)
        return
    document = etree.fromstring(xml.encode("utf-8"))
    assert schema().validate(document), (request["traits"], str(schema().error_log))
