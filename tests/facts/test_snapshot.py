"""Host snapshots read back (virtuned/facts/snapshot.py): what a guest may take of
the host they describe, and the errors a broken one gets (exit 2, naming the field).
The placements on them are golden cases (tests/golden/placement/snapshot-*)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema_rs
import pytest

from tests.cli_run import run
from virtuned.diagnostics import VirtunedError
from virtuned.facts import snapshot

ROOT = Path(__file__).resolve().parents[2]
BUSY = ROOT / "examples/hosts/busy-host.json"


def test_the_example_snapshot_is_valid_against_the_shipped_schema():
    schema = json.loads((ROOT / "virtuned/host.schema.json").read_text())
    jsonschema_rs.validator_for(schema).validate(json.loads(BUSY.read_text()))


def test_what_other_guests_hold_is_not_offered():
    host = snapshot.parse(BUSY.read_text(), "busy.json")
    # pinned alone: app03 1-2, web01 8-11, db02 12-14; 'batch' floats over 0-15
    assert host.held == ((1, ("app03",)), (2, ("app03",)), (8, ("web01",)),
                         (9, ("web01",)), (10, ("web01",)), (11, ("web01",)),
                         (12, ("db02",)), (13, ("db02",)), (14, ("db02",)))
    # 1GiB pages: node 0's free count already lacks the running app03's; node 1's
    # lacks web01's (running) but not db02's (it starts with the host): 4 - 2
    assert [cell.pool(1048576) for cell in host.cells] == [2, 2]
    assert [cell.memory_kib for cell in host.cells] == [10 * 1048576, 8 * 1048576]
    assert host.kept == ((1, 1048576, 2 * 1048576, ("db02",)),)  # for messages
    assert host.pages_note is None


@pytest.mark.parametrize("text, message", [
    ("{", "host.json:1:2: error: invalid host snapshot: not JSON (Expecting property "
          "name enclosed in double quotes)"),
    ('{"format": "something else"}', "host.json:1:1: error: invalid host snapshot: not a "
     "host snapshot (no \"format\": \"virtuned host snapshot\")"),
    ('{"format": "virtuned host snapshot", "version": 2}', "host.json:1:1: error: invalid "
     "host snapshot: version: version 2; this virtuned reads version 1"),
    ('{"format": "virtuned host snapshot", "version": 1, "nodes": []}', "host.json:1:1: "
     "error: invalid host snapshot: nodes: no NUMA nodes"),
    ('{"format": "virtuned host snapshot", "version": 1, "nodes": [{"id": 0, "cpus": '
     '[{"id": "zero"}]}]}', "host.json:1:1: error: invalid host snapshot: "
     "nodes[0].cpus[0].id: expected a whole number, got \"zero\""),
    ('{"format": "virtuned host snapshot", "version": 1, "nodes": [{"id": 0}], '
     '"guests": [{"name": "a", "running": true, "vcpus": {"0": "0-"}}]}',
     "host.json:1:1: error: invalid host snapshot: guests[0].vcpus.0: "),
])
def test_a_broken_snapshot_is_an_input_error(tmp_path, text, message):
    (tmp_path / "host.json").write_text(text)
    code, out, err = run(["plan", "-t", "dedicated cpus", "--host", "host.json"],
                         cwd=tmp_path)
    assert (code, out) == (2, "")
    assert err.startswith(message)


def test_snapshots_are_told_from_capabilities_by_their_first_character():
    assert snapshot.is_snapshot(b"  \n{}") and not snapshot.is_snapshot(b"<capabilities/>")
    with pytest.raises(VirtunedError):
        snapshot.parse("[]", "x.json")


def test_shared_cpus_need_a_host(tmp_path):
    code, _, err = run(["plan", "-t", "dedicated cpus", "--shared-cpus", "0"], cwd=tmp_path)
    assert (code, err.splitlines()[0]) == (
        2, "--shared-cpus 0: error: --shared-cpus needs the host it applies to")


def test_a_guest_compiled_again_does_not_hold_against_itself():
    host = snapshot.host_of(json.loads(BUSY.read_text()), "busy.json",
                            ignore=frozenset({"web01", "db02"}))
    assert host.held == ((1, ("app03",)), (2, ("app03",)))
    assert [cell.pool(1048576) for cell in host.cells] == [2, 4]  # db02's kept no more


def test_a_snapshot_has_the_cap_of_capabilities_xml():
    from virtuned import inputs

    with pytest.raises(VirtunedError) as raised:
        snapshot.parse("{" + " " * inputs.XML_BYTES + "}", "<host>")
    assert raised.value.diagnostics[0].message == (
        f"host snapshot is larger than {inputs.XML_BYTES} bytes, its limit")
