"""The documents generated from the contract's types (contract.py), checked in:

- ``virtuned/openapi.json``: the HTTP service's OpenAPI 3.1 document, which the
  server serves at ``/openapi.json`` byte for byte;
- ``virtuned/plan.schema.json``: the JSON Schema of what ``virtuned plan`` and
  ``virtuned fit`` print;
- ``virtuned/host.schema.json``: the JSON Schema of a host snapshot (``virtuned host
  snapshot``), from host_contract.py.

    python -m virtuned.server.documents --write   # after changing contract.py
    python -m virtuned.server.documents           # exit 1 when a file is stale

tests/server/test_documents.py fails when a checked-in file is not what this writes.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import msgspec

from virtuned.server.contract import OPERATIONS, PROBLEMS, Fit, Plan, Problem
from virtuned.server.host_contract import HostSnapshot
from virtuned.version import __version__

PACKAGE = Path(__file__).resolve().parent.parent
OPENAPI = PACKAGE / "openapi.json"
PLAN_SCHEMA = PACKAGE / "plan.schema.json"
HOST_SCHEMA = PACKAGE / "host.schema.json"


def openapi() -> dict:
    """The OpenAPI document of the service."""
    kinds = [kind for op in OPERATIONS for kind in (op.request, op.answer)
             if kind is not None] + [Problem]
    schemas, components = msgspec.json.schema_components(
        kinds, ref_template="#/components/schemas/{name}")
    schema_of = dict(zip(map(repr, kinds), schemas))
    paths: dict[str, dict] = {}
    for op in OPERATIONS:
        entry: dict = {"operationId": op.name, "summary": op.summary,
                       "description": op.description}
        if op.request is not None:
            body = {"schema": schema_of[repr(op.request)]}
            if op.example is not None:
                body["example"] = op.example
            entry["requestBody"] = {"required": True, "content": {"application/json": body}}
        content = {media: {"schema": schema_of[repr(op.answer)] if index == 0 and
                           op.answer is not None else {"type": "string"}}
                   for index, media in enumerate(op.media)}
        entry["responses"] = {"200": {"description": op.answer_description,
                                      "content": content}}
        for kind in op.problems:  # a status two kinds share refers to the first
            entry["responses"].setdefault(str(PROBLEMS[kind].status),
                                          {"$ref": f"#/components/responses/{kind}"})
        paths.setdefault(op.path, {})[op.method.lower()] = entry
    used = dict.fromkeys(kind for op in OPERATIONS for kind in op.problems)
    responses = {kind: {
        "description": PROBLEMS[kind].when,
        "content": {"application/problem+json": {"schema": schema_of[repr(Problem)]}},
        **({"headers": {"Retry-After": {"schema": {"type": "string"}}}}
           if PROBLEMS[kind].retry_after else {})} for kind in used}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "virtuned", "version": __version__,
            "description": (
                "Compile VM traits into complete, host-aware libvirt domain XML. Every "
                "error is an RFC 9457 problem document (`application/problem+json`) with "
                "the CLI's `file:line:col` diagnostics and exit code. Every response "
                "carries an `X-Request-ID` header (the client's own, when it sends a sane "
                "one). Limits and operation: docs/server.md. Generated from "
                "virtuned/server/contract.py."),
            "license": {"name": "LGPL-2.1-or-later", "identifier": "LGPL-2.1-or-later"}},
        "paths": paths,
        "components": {"schemas": components, "responses": responses},
    }


def plan_schema() -> dict:
    """The JSON Schema of 'virtuned plan' and 'virtuned fit' answers."""
    (plan, fits), definitions = msgspec.json.schema_components(
        [Plan, list[Fit]], ref_template="#/$defs/{name}")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://virtuned.dev/schemas/plan/1",
        "title": "virtuned plan and fit answers",
        "description": (
            "What 'virtuned plan' prints (a Plan) and what 'virtuned fit' prints (an "
            "array of Fit). CPU and node lists are in libvirt's syntax, e.g. \"0-3,8\". "
            "Generated from virtuned/server/contract.py."),
        "oneOf": [plan, fits],
        "$defs": definitions,
    }


def host_schema() -> dict:
    """The JSON Schema of a host snapshot."""
    (snapshot,), definitions = msgspec.json.schema_components(
        [HostSnapshot], ref_template="#/$defs/{name}")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://virtuned.dev/schemas/host/1",
        "title": "virtuned host snapshot",
        "description": (
            "What 'virtuned host snapshot --connect URI' writes and --host/--hosts read: "
            "a host's NUMA nodes, free memory and pages, the other guests and what they "
            "hold, its domain capabilities. CPU and node lists are in libvirt's syntax, "
            "e.g. \"0-3,8\". Generated from virtuned/server/host_contract.py."),
        **snapshot,
        "$defs": definitions,
    }


def text(document: dict) -> str:
    """A document as its checked-in file holds it."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


DOCUMENTS = {OPENAPI: openapi, PLAN_SCHEMA: plan_schema, HOST_SCHEMA: host_schema}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Generate virtuned/openapi.json and "
                                     "virtuned/plan.schema.json from the contract's types.")
    parser.add_argument("--write", action="store_true",
                        help="write the files (default: exit 1 if one is stale)")
    args = parser.parse_args(argv)
    stale = []
    for path, build in DOCUMENTS.items():
        wanted = text(build())
        if path.read_text(encoding="utf-8") != wanted:
            if args.write:
                path.write_text(wanted, encoding="utf-8")
                print(f"wrote {path}", file=sys.stderr)
            else:
                stale.append(path)
    for path in stale:
        print(f"{path} is stale: run python -m virtuned.server.documents --write",
              file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
