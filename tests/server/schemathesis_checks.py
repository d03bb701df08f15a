"""Checks of virtuned's own contract that schemathesis runs with its built-in ones
(loaded by ``schemathesis run`` through SCHEMATHESIS_HOOKS; see test_schemathesis.py).

Two built-ins are replaced by sharper versions here:

- ``not_a_server_error`` fails on every 5xx, but 501 is the documented answer for an
  operation or field the library behind the server does not have (as plan and fit
  were, before they landed). ``no_server_error`` allows a 501 only where ``virtuned.api`` really lacks
  what it names, found out independently of the server, with ``inspect``.
- ``positive_data_acceptance`` wants 2xx for every request the schema calls valid;
  but trait text, domain XML and profile names are languages and a library that no
  JSON Schema can hold, so a compiler's 422 (or 409) is a right answer to them.
  ``valid_requests_pass_validation`` fails when the server's own request validation
  refuses what the document allows: a 400, 413 or 415, or a 422 about a field of the
  request that only the server's library can judge (which profiles it has and which
  params they declare, whether CPU lists parse and are on the host, PCI addresses).
  The library names those fields by JSON pointer on ``<request>`` too, so they are
  told apart by the library's own messages.
"""

from __future__ import annotations

import inspect
import json
import re

import schemathesis

from virtuned import api


def _problem(response) -> dict:
    """The problem document of an error answer (headers: lower-case keys, lists)."""
    assert response.headers.get("content-type") == ["application/problem+json"], \
        f"a {response.status_code} that is not a problem document"
    return json.loads(response.content)


def _missing_from_api(operation_name: str, body: dict) -> bool:
    """Whether a 501's body names only what virtuned.api does not have."""
    operation = getattr(api, operation_name, None)
    if not inspect.isfunction(operation):  # api.plan is still the module virtuned.plan
        return body["detail"] == (f"'{operation_name}' is not available in this version "
                                  "of virtuned yet")
    parameters = inspect.signature(operation).parameters
    if any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
        parameters = inspect.signature(api.compile).parameters  # explain's **request
    fields = [d["message"].split(":", 1)[0].lstrip("/") for d in body["diagnostics"]]
    return bool(fields) and not any(field in parameters for field in fields)


@schemathesis.check
def no_server_error(ctx, response, case):
    """No 5xx, but for a 501 that names what this build of virtuned truly lacks."""
    if response.status_code < 500:
        return None
    if response.status_code == 501:
        body = _problem(response)
        name = case.operation.path.rsplit("/", 1)[1]
        if body["type"] == "urn:virtuned:problem:not-implemented" and \
                _missing_from_api(name, body):
            return None
    raise AssertionError(f"{response.status_code} for {case.operation.label}: "
                         f"{response.content[:2000]!r}")


_LIBRARY_JUDGED = re.compile(
    r"/(profiles|params)/"
    r"|/(reserved|allocated)_cpus( needs the host|: (expected a CPU list|CPU))"
    r"|/device_nodes/[^:]*: expected a PCI address")


@schemathesis.check
def valid_requests_pass_validation(ctx, response, case):
    """What the OpenAPI document allows, the server's request validation accepts."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or case.body is None:
        return None
    status = response.status_code
    if status in (400, 413, 415):
        raise AssertionError(f"a request valid by the document got {status}: "
                             f"{response.content[:2000]!r}")
    if status != 422:
        return None
    refused = [d for d in _problem(response)["diagnostics"]
               if d["file"] == "<request>" and not _LIBRARY_JUDGED.match(d["message"])]
    if refused:
        raise AssertionError("the document allows what the server's validation refuses: "
                             + "; ".join(d["message"] for d in refused))
    return None
