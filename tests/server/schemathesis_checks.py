"""Checks of virtuned's own contract that schemathesis runs with its built-in ones
(loaded by ``schemathesis run`` through SCHEMATHESIS_HOOKS; see test_schemathesis.py).

A built-in is replaced by a sharper version here:

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

import json
import re

import schemathesis


def _problem(response) -> dict:
    """The problem document of an error answer (headers: lower-case keys, lists)."""
    assert response.headers.get("content-type") == ["application/problem+json"], \
        f"a {response.status_code} that is not a problem document"
    return json.loads(response.content)


_LIBRARY_JUDGED = re.compile(
    r"/profiles/\d+: no profile '|/params/"
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
