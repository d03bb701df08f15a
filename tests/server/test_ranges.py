"""Numbers out of range and CPU lists beyond libvirt's ids are refused over HTTP
as on the command line (values.py, plan/limits.py): 422, at once, in bounded memory
(issue 14: a reserved_cpus of 0-999999999 once grew the server to 17 GB)."""

from __future__ import annotations

from pathlib import Path

import pytest

HOST = (Path(__file__).resolve().parents[2] / "examples/hosts/two-node-smt.xml").read_text()


@pytest.mark.parametrize("body, message", [
    ({"traits": ["dedicated cpus"], "host": HOST, "reserved_cpus": "0-999999999"},
     "/reserved_cpus: CPU 999999999 in '0-999999999' is out of range: CPU ids are "
     "0..16383 (libvirt's limit)"),
    ({"traits": ["pcie root ports 1000000000"]},
     "pcie root ports: count: expected a whole number from 1 to 240, got 1000000000"),
    ({"traits": ["vcpus 64000000"]},
     "vcpus: count: expected a whole number from 1 to 4096, got 64000000"),
])
def test_out_of_range_is_422(client, server, body, message):
    answer = client.post("/v1/compile", json=body)
    assert answer.status_code == 422, answer.text
    [diagnostic] = answer.json()["diagnostics"]
    assert diagnostic["message"] == message
    server.assert_serving()
