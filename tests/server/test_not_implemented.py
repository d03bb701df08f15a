"""501: what the service answers when the library it serves lacks an operation or
a parameter (as it did before plan and fit landed). Played on an in-process server
whose virtuned.api is patched to lack them."""

from __future__ import annotations

import httpx

from tests.server.harness import in_process_server, problem, request_diagnostic
from virtuned import api
from virtuned import plan as plan_module
from virtuned.server import create_app

JSON_BODY = {"content-type": "application/json", "x-request-id": "n-1"}


def test_an_operation_the_library_lacks_is_501(monkeypatch):
    monkeypatch.setattr(api, "plan", plan_module)  # what api.plan was before it landed
    with in_process_server(create_app()) as url:
        answer = httpx.post(f"{url}/v1/plan", content=b'{"traits": ["video qxl"]}',
                            headers=JSON_BODY, timeout=60)
    assert answer.status_code == 501
    assert answer.json() == problem(
        501, "not-implemented", "Not implemented in this version",
        "'plan' is not available in this version of virtuned yet", [], 1, "n-1")


def test_a_field_the_library_cannot_take_is_501_never_ignored(monkeypatch):
    real = api.compile

    def compile_without_cpu_lists(domain_xml=None, *, sources=(), traits=(), settings=(),
                                  profile_path=(), name=None, domcaps=None,
                                  device_nodes=(), host=None, diagnostics_sources=None):
        return real(domain_xml, sources=sources, traits=traits, settings=settings,
                    profile_path=profile_path, name=name, domcaps=domcaps,
                    device_nodes=device_nodes, host=host,
                    diagnostics_sources=diagnostics_sources)

    monkeypatch.setattr(api, "compile", compile_without_cpu_lists)
    with in_process_server(create_app()) as url:
        answered = httpx.post(f"{url}/v1/compile", json={"traits": ["video qxl"],
                                                         "reserved_cpus": None}, timeout=60)
        refused = httpx.post(f"{url}/v1/compile", content=b'{"reserved_cpus": "0-1", '
                             b'"allocated_cpus": "2-3"}', headers=JSON_BODY, timeout=60)
    assert answered.status_code == 200  # null is not given: nothing is ignored
    messages = [f"/{field}: this version of virtuned cannot use '{field}' yet in "
                "compile_without_cpu_lists" for field in ("reserved_cpus", "allocated_cpus")]
    assert refused.json() == problem(
        501, "not-implemented", "Not implemented in this version",
        "\n".join(f"<request>:1:1: error: {m}" for m in messages),
        [request_diagnostic(m) for m in messages], 1, "n-1")
