"""The documents generated from the contract's types (virtuned/server/contract.py) are
the checked-in files, and the contract's two ways of reading a request agree."""

from __future__ import annotations

import json
import math

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from virtuned.server import contract, documents
from virtuned.server.validation import Problem, check, decode


@pytest.mark.parametrize("path", list(documents.DOCUMENTS), ids=lambda p: p.name)
def test_the_checked_in_documents_are_generated(path):
    """Regenerate with: python -m virtuned.server.documents --write"""
    assert path.read_text(encoding="utf-8") == documents.text(documents.DOCUMENTS[path]())


def test_the_documents_describe_plan_and_fit_alike():
    """plan.schema.json and the OpenAPI document describe 'virtuned plan' and
    'virtuned fit' answers with the same definitions."""
    shipped = json.loads(documents.PLAN_SCHEMA.read_text())["$defs"]
    schemas = json.loads(documents.OPENAPI.read_text())["components"]["schemas"]
    as_components = json.loads(json.dumps(shipped).replace('"#/$defs/',
                                                           '"#/components/schemas/'))
    assert sorted(as_components) == ["CellPlacement", "CpuNeeds", "EmulatorNeeds", "Fit",
                                     "GuestCell", "Hugepages", "Placement", "Plan",
                                     "Requirements"]
    for name, definition in as_components.items():
        if name != "Plan":  # over HTTP a plan comes with its warnings: PlanResult
            assert schemas[name] == definition
    assert schemas["PlanResult"]["properties"] == {
        **as_components["Plan"]["properties"],
        "warnings": schemas["CompileResult"]["properties"]["warnings"]}


def test_every_example_of_the_document_is_a_valid_request():
    for op in contract.OPERATIONS:
        if op.example is not None:
            assert decode(json.dumps(op.example).encode(), op.request) == \
                msgspec.convert(op.example, op.request)


# -- the fast path (msgspec) and the second pass (check) take the same requests



def _mostly(usual, rare, odds: int = 8):
    """``usual`` ``odds`` times as often as ``rare``."""
    return st.integers(0, odds).flatmap(lambda n: rare if n == 0 else usual)


_TEXTS = _mostly(st.text(max_size=4), st.sampled_from([
    "", "server", "a..b", "x.vt", "server\n", "\ud800", "x" * 129,
    "y" * (contract.TEXT_CHARS + 1)]), odds=4)
_NUMBERS = st.one_of(st.integers(0, 3), st.sampled_from([4.0, 1.0, 1.5, -1e3, 1e20]),
                     st.integers(-2, 70_000), st.just(math.inf))
_ANY = st.one_of(st.none(), st.booleans(), _NUMBERS, _TEXTS, st.lists(_TEXTS, max_size=2),
                 st.dictionaries(_TEXTS, _TEXTS, max_size=2))


def _many(strategy, min_size=0):
    return _mostly(st.lists(strategy, min_size=min_size, max_size=3),
                   st.lists(strategy, min_size=63, max_size=66))


_TEXT = st.one_of(st.none(), _TEXTS)
_FIELDS = {
    "domain": _TEXT, "host": _TEXT, "domcaps": _TEXT, "reserved_cpus": _TEXT,
    "allocated_cpus": _TEXT, "name": _TEXT, "text": _TEXTS,
    "profiles": st.one_of(st.none(), _many(_mostly(
        st.sampled_from(["server", "nfv", "a.b+c"]), st.sampled_from(["a..b", "/etc",
                                                                      "n" * 129])))),
    "traits": st.one_of(st.none(), _many(_TEXTS)),
    "hosts": _many(st.one_of(_TEXTS, st.fixed_dictionaries({"sha256": _mostly(
        st.sampled_from(["0" * 64, "f" * 64]), _ANY)}))),
    "best": st.one_of(st.none(), _NUMBERS),
    "override": st.one_of(st.none(), st.booleans(), _NUMBERS),
    "params": st.one_of(st.none(), st.dictionaries(_TEXTS, st.one_of(
        st.booleans(), _NUMBERS, _TEXTS, st.none()), max_size=3)),
    "device_nodes": st.one_of(st.none(), st.dictionaries(_TEXTS, _NUMBERS, max_size=3)),
}


def _bodies(kind):
    """Bodies of requests of ``kind``: mostly its own fields, sometimes another."""
    own_fields = msgspec.structs.fields(kind)
    names = [field.encode_name for field in own_fields]
    fields = {name: _mostly(_FIELDS[name], _ANY) for name in names}
    stranger = st.sampled_from(["domian", *sorted(set(_FIELDS) - set(names))])
    own = _mostly(st.fixed_dictionaries(
        {f.encode_name: fields[f.encode_name] for f in own_fields if f.required},
        optional={f.encode_name: fields[f.encode_name] for f in own_fields
                  if not f.required}), st.fixed_dictionaries({}, optional=fields))
    return st.tuples(st.just(kind), _mostly(own, own.flatmap(
        lambda body: st.builds(lambda name, value: {**body, name: value}, stranger, _ANY)),
        odds=4))


_REQUESTS = st.sampled_from([contract.CompileRequest, contract.FitRequest,
                             contract.CheckRequest]).flatmap(_bodies)


@settings(max_examples=400, deadline=None)
@given(_REQUESTS)
def test_the_fast_path_and_the_second_pass_agree(request):
    kind, body = request
    raw = json.dumps(body).encode()
    value, problems = check(json.loads(raw), kind)
    try:
        fast = msgspec.json.decode(raw, type=kind)
    except (msgspec.ValidationError, msgspec.DecodeError):
        fast = None
    if fast is not None:  # what msgspec takes, the second pass takes, as the same value
        assert problems == []
        assert msgspec.convert(value, kind) == fast
    elif not problems:  # what only the second pass takes: whole floats as integers
        assert json.dumps(value) != json.dumps(body)
        assert decode(raw, kind) == msgspec.convert(value, kind)
    else:
        with pytest.raises(Problem) as refused:
            decode(raw, kind)
        assert [d.message for d in refused.value.diagnostics] == [
            f"{pointer or '/'}: {message}" for pointer, message, _ in problems]
