"""The HTTP service's contract, against the real server (``virtuned serve``, uvicorn)
on a loopback port: every answer checked to the byte where it is deterministic.

Hostile input, limits and the schemathesis run are in the other tests here. These
tests speak to the server tests/server/conftest.py starts once for the session."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.server.harness import problem, request_diagnostic
from virtuned import __version__, api
from virtuned import reference
from virtuned.api import explanation_json
from virtuned.resolve.profiles import Library, load_library_file, search_path

ROOT = Path(__file__).resolve().parents[2]
WEB_SERVER = (ROOT / "examples" / "domains" / "web-server.xml").read_text()
JSON_BODY = {"content-type": "application/json"}


def library_file(name):
    return load_library_file(Library(search_path(())).find(name, _any()))


def _any():
    from virtuned.resolve.profiles import ANY_VERSION

    return ANY_VERSION


def post(client, path, body, request_id="t-1", **headers):
    return client.post(path, content=json.dumps(body).encode(), headers={
        **JSON_BODY, "x-request-id": request_id, **headers})


def assert_problem(answer, expected):
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json() == expected
    assert answer.status_code == expected["status"]


# ---------------------------------------------------------------- health, documents

def test_healthz(client):
    answer = client.get("/healthz")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    assert answer.json() == {"status": "ok", "version": __version__}
    assert re.fullmatch(r"[0-9a-f]{32}", answer.headers["x-request-id"])


def test_a_sane_request_id_of_the_client_is_echoed_and_a_wild_one_replaced(client):
    assert client.get("/healthz", headers={"x-request-id": "lb-7f3a:1"}) \
        .headers["x-request-id"] == "lb-7f3a:1"
    replaced = client.get("/healthz", headers={"x-request-id": "a b\tc"})
    assert re.fullmatch(r"[0-9a-f]{32}", replaced.headers["x-request-id"])


def test_the_openapi_document_served_is_the_shipped_file(client):
    answer = client.get("/openapi.json")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    assert answer.content == (ROOT / "virtuned" / "openapi.json").read_bytes()
    document = answer.json()
    assert document["openapi"] == "3.1.0"
    assert document["info"]["version"] == __version__
    assert sorted(document["paths"]) == [
        "/healthz", "/metrics", "/openapi.json", "/v1/check", "/v1/compile",
        "/v1/explain", "/v1/fit", "/v1/plan", "/v1/profiles", "/v1/traits"]


def test_profiles_lists_the_library(client):
    answer = client.get("/v1/profiles")
    assert answer.status_code == 200
    rows = {row["name"]: row for row in answer.json()}
    # The shipped library (the test server has no /etc or user profiles of its own).
    assert sorted(rows) == sorted(path.stem for path in (ROOT / "traits").glob("*.vt"))
    assert {"base", "desktop", "secure", "server", "windows"} <= set(rows)
    server = library_file("server")
    assert rows["server"] == {
        "name": "server", "version": "1.1.0", "versions": ["1.1.0"],
        "summary": "A headless server: paravirtual disks and NICs, guest agent",
        "sha256": server.sha256}


def test_traits_lists_the_vocabulary(client):
    answer = client.get("/v1/traits")
    assert answer.status_code == 200
    assert answer.json() == reference.listing_json()  # as 'virtuned traits --json' lists


# ---------------------------------------------------------------- compile

def test_compile_answers_what_the_library_answers(client):
    answer = post(client, "/v1/compile", {"domain": WEB_SERVER, "profiles": ["server"],
                                          "traits": ["video qxl"]})
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    expected = api.compile(WEB_SERVER, sources=[library_file("server")],
                           traits=["video qxl"])
    assert answer.json() == {"xml": expected.xml, "warnings": [{
        "severity": "warning",
        "message": "preference 'graphics none' dropped: it cannot hold: 'graphics none' "
                   "wants no display, but the input has a <graphics type='vnc'> display",
        "file": "traits/bundles.vt", "line": 34, "col": 5, "end_line": 34, "end_col": 25,
        "hint": None, "related": [{"message": "'headless server' is used here",
                                   "file": "traits/server.vt", "line": 3, "col": 1}]}]}
    assert '<virtuned:profile name="server" version="1.1.0"' in answer.json()["xml"]


def test_compile_of_nothing_is_the_empty_domain_completed(client):
    answer = post(client, "/v1/compile", {})
    assert answer.status_code == 200
    assert answer.json() == {"xml": api.compile(None).xml, "warnings": []}


def test_nulls_mean_not_given(client):
    answer = post(client, "/v1/compile", {
        "domain": None, "profiles": None, "traits": None, "params": None, "host": None,
        "domcaps": None, "reserved_cpus": None, "allocated_cpus": None, "name": None,
        "device_nodes": None})
    assert answer.status_code == 200
    assert answer.json() == {"xml": api.compile(None).xml, "warnings": []}


def test_compile_answers_xml_when_asked(client):
    answer = post(client, "/v1/compile", {"domain": WEB_SERVER, "profiles": ["server"]},
                  accept="application/xml")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/xml; charset=utf-8"
    assert answer.headers["virtuned-warnings"] == "1"
    assert answer.text == api.compile(WEB_SERVER, sources=[library_file("server")]).xml


@pytest.mark.parametrize("accept, xml", [
    ("application/xml", True), ("text/xml", True),
    ("application/xml, application/json;q=0.5", True),
    ("application/xml;q=0.5, application/json", False),
    ("application/xml, application/json", False),  # a tie: JSON, the default
    ("application/xml, */*", True), ("*/*", False), ("application/json", False),
    ("application/xml;q=0", False), ("application/xml;q=bogus", False),
])
def test_content_negotiation(client, accept, xml):
    answer = post(client, "/v1/compile", {}, accept=accept)
    assert answer.status_code == 200
    assert answer.headers["content-type"] == (
        "application/xml; charset=utf-8" if xml else "application/json")


PARAM_DOMAIN = '<domain type="kvm"><devices><interface type="user"/></devices></domain>'


@pytest.mark.parametrize("value, text", [(4, "4"), (4.0, "4")])
def test_params_reach_the_profile_as_the_cli_text(client, value, text):
    # nfv declares 'param queues: int?'. 4.0 is an integer: JSON has one kind of number.
    answer = post(client, "/v1/compile", {"domain": PARAM_DOMAIN, "profiles": ["nfv"],
                                          "params": {"queues": value}})
    expected = api.compile(PARAM_DOMAIN, sources=[library_file("nfv")],
                           settings=[("queues", text)]).xml
    assert answer.status_code == 200
    assert answer.json()["xml"] == expected
    assert '<driver queues="4"/>' in expected


@pytest.mark.parametrize("value, text", [(-1e3, "-1000"), (True, "true"), ("a b", "a b")])
def test_params_of_any_json_type_are_typed_by_the_profile(client, value, text):
    # Booleans and strings are taken as the CLI's text; the param's type judges them.
    answer = post(client, "/v1/compile", {"domain": PARAM_DOMAIN, "profiles": ["nfv"],
                                          "params": {"queues": value}})
    message = f"param 'queues' (int): expected a whole number, got '{text}'"
    assert_problem(answer, problem(422, "invalid-input", "Invalid input",
                                   f"<request>:1:1: error: {message}",
                                   [request_diagnostic(message)], 2, "t-1"))


def test_a_param_no_profile_declares_is_named_by_its_pointer(client):
    answer = post(client, "/v1/compile", {"profiles": ["server"], "params": {"a/b": 4}})
    message = "/params/a~1b: no profile given declares a param 'a/b'"
    assert_problem(answer, problem(422, "invalid-input", "Invalid input",
                                   f"<request>:1:1: error: {message}",
                                   [request_diagnostic(message)], 2, "t-1"))


def test_device_nodes_reach_the_compiler_and_may_be_whole_floats(client):
    domain = (ROOT / "tests/golden/numa/two-cells-q35/input.xml").read_text()
    nodes = {"0000:3b:00.0": 1, "3b:00.1": 1, "86:00.0": 0}
    expected = api.compile(domain, traits=["device numa affinity"], device_nodes=nodes).xml
    for written in (nodes, {address: float(node) for address, node in nodes.items()}):
        answer = post(client, "/v1/compile", {"domain": domain, "device_nodes": written,
                                              "traits": ["device numa affinity"]})
        assert answer.status_code == 200
        assert answer.json() == {"xml": expected, "warnings": []}


def test_a_trait_error_is_422_with_the_cli_diagnostic(client):
    answer = post(client, "/v1/compile", {"traits": ["video qxl", "video qxxl"]})
    message = ("video: model: expected one of vga, cirrus, vmvga, qxl, virtio, bochs, "
               "ramfb, none, got 'qxxl' (did you mean 'qxl'?)")
    assert_problem(answer, problem(
        422, "invalid-input", "Invalid input",
        f"<trait 2>:1:7: error: {message}\n    video qxxl\n          ^^^^\n"
        "hint: usage: video MODEL",
        [{"severity": "error", "message": message, "file": "<trait 2>", "line": 1,
          "col": 7, "end_line": 1, "end_col": 11, "hint": "usage: video MODEL",
          "related": []}], 2, "t-1"))


def test_a_conflict_is_409_exit_code_3_with_both_places(client):
    answer = post(client, "/v1/compile", {"traits": ["machine pc", "machine q35"]})
    body = answer.json()
    assert answer.status_code == 409
    assert body["type"] == "urn:virtuned:problem:conflict"
    assert body["title"] == "Conflicting or infeasible request"
    assert body["exit_code"] == 3
    [diagnostic] = body["diagnostics"]
    assert diagnostic["message"] == "'machine q35' conflicts with 'machine pc'"
    assert (diagnostic["file"], diagnostic["line"], diagnostic["col"]) == ("<trait 2>", 1, 1)
    assert [(r["file"], r["line"], r["col"]) for r in diagnostic["related"]] == [
        ("<trait 1>", 1, 1)]
    assert body["detail"].startswith(
        "<trait 2>:1:1: error: 'machine q35' conflicts with 'machine pc'\n")


def test_a_domain_error_points_into_the_domain(client):
    answer = post(client, "/v1/compile", {"domain": "<domain>\n  <name>a</nam>\n</domain>"})
    message = "malformed XML: Opening and ending tag mismatch: name line 2 and nam"
    assert_problem(answer, problem(
        422, "invalid-input", "Invalid input",
        f"<domain>:2:16: error: {message}\n      <name>a</nam>\n                   ^",
        [{"severity": "error", "message": message, "file": "<domain>", "line": 2,
          "col": 16, "end_line": None, "end_col": None, "hint": None, "related": []}],
        2, "t-1"))


# ---------------------------------------------------------------- request validation

@pytest.mark.parametrize("name", [
    "../etc/passwd", "/etc/passwd", "server.vt", "a..b", "traits/server", "", " server",
    "..", "C:\\x", "server\n"])
def test_a_profile_that_is_not_a_plain_name_is_refused(client, name):
    answer = post(client, "/v1/compile", {"profiles": [name]})
    assert_problem(answer, problem(
        422, "invalid-input", "Invalid input",
        f"<request>:1:1: error: /profiles/0: {json.dumps(name)} is not a profile name\n"
        "hint: profiles are names from the server's library (GET /v1/profiles), never "
        "files or paths",
        [request_diagnostic(f"/profiles/0: {json.dumps(name)} is not a profile name",
                            "profiles are names from the server's library "
                            "(GET /v1/profiles), never files or paths")], 2, "t-1"))


def test_an_unknown_profile_gets_a_suggestion(client):
    answer = post(client, "/v1/compile", {"profiles": ["server", "servr", "nothing"]})
    assert_problem(answer, problem(
        422, "invalid-input", "Invalid input",
        "<request>:1:1: error: /profiles/1: no profile 'servr' in the server's library\n"
        "hint: did you mean 'server'?\n"
        "<request>:1:1: error: /profiles/2: no profile 'nothing' in the server's library\n"
        "hint: GET /v1/profiles lists them",
        [request_diagnostic("/profiles/1: no profile 'servr' in the server's library",
                            "did you mean 'server'?"),
         request_diagnostic("/profiles/2: no profile 'nothing' in the server's library",
                            "GET /v1/profiles lists them")], 2, "t-1"))


def test_every_field_problem_is_reported_at_once(client):
    answer = post(client, "/v1/compile", {
        "domian": "<domain/>", "profiles": "server", "traits": ["ok", 7],
        "params": {"a": 1.5, "": "x"}, "device_nodes": {"0000:3b:00.0": -1},
        "name": False})
    assert_problem(answer, problem(
        422, "invalid-input", "Invalid input", "\n".join([
            "<request>:1:1: error: /domian: unknown field", "hint: did you mean 'domain'?",
            "<request>:1:1: error: /profiles: expected an array, got a string",
            "<request>:1:1: error: /traits/1: expected a string, got a number",
            "<request>:1:1: error: /params/a: expected a string, integer or boolean, "
            "got a number",
            "<request>:1:1: error: /params/: a param name cannot be empty",
            "<request>:1:1: error: /name: expected a string, got a boolean",
            "<request>:1:1: error: /device_nodes/0000:3b:00.0: expected a host NUMA node "
            "(0, 1, ...)"]),
        [request_diagnostic("/domian: unknown field", "did you mean 'domain'?"),
         request_diagnostic("/profiles: expected an array, got a string"),
         request_diagnostic("/traits/1: expected a string, got a number"),
         request_diagnostic("/params/a: expected a string, integer or boolean, got a "
                            "number"),
         request_diagnostic("/params/: a param name cannot be empty"),
         request_diagnostic("/name: expected a string, got a boolean"),
         request_diagnostic("/device_nodes/0000:3b:00.0: expected a host NUMA node "
                            "(0, 1, ...)")], 2, "t-1"))


@pytest.mark.parametrize("body, message", [
    ([], "/: expected a JSON object, got an array"),
    ("x", "/: expected a JSON object, got a string"),
    (None, "/: expected a JSON object, got null"),
])
def test_the_body_must_be_an_object(client, body, message):
    assert_problem(post(client, "/v1/compile", body), problem(
        422, "invalid-input", "Invalid input", f"<request>:1:1: error: {message}",
        [request_diagnostic(message)], 2, "t-1"))


def test_malformed_json_is_400_at_its_line_and_column(client):
    answer = client.post("/v1/compile", content=b'{"traits":\n  ["video qxl",]}',
                         headers={**JSON_BODY, "x-request-id": "t-1"})
    assert_problem(answer, problem(
        400, "malformed-request", "The request body is not valid JSON",
        "<request>:2:16: error: malformed JSON: Expecting value",
        [request_diagnostic("malformed JSON: Expecting value", line=2, col=16)],
        2, "t-1"))


def test_an_empty_body_is_400(client):
    answer = client.post("/v1/compile", content=b"", headers={**JSON_BODY,
                                                                "x-request-id": "t-1"})
    assert_problem(answer, problem(
        400, "malformed-request", "The request body is not valid JSON",
        "<request>:1:1: error: malformed JSON: Expecting value",
        [request_diagnostic("malformed JSON: Expecting value")], 2, "t-1"))


@pytest.mark.parametrize("content_type", [
    None, "text/plain", "application/xml", "application/json; charset=latin-1",
    "multipart/form-data; boundary=x"])
def test_a_body_that_is_not_json_is_415(client, content_type):
    headers = {"x-request-id": "t-1"}
    if content_type:
        headers["content-type"] = content_type
    answer = client.post("/v1/compile", content=b"{}", headers=headers)
    assert_problem(answer, {
        "type": "urn:virtuned:problem:unsupported-media-type",
        "title": "Unsupported media type", "status": 415,
        "detail": "expected Content-Type: application/json (UTF-8), got "
                  f"{content_type or 'none'}",
        "instance": "urn:virtuned:request:t-1", "request_id": "t-1", "diagnostics": [],
        "exit_code": 2})


def test_json_with_a_charset_parameter_is_accepted(client):
    answer = client.post("/v1/compile", content=b"{}",
                         headers={"content-type": "application/json; charset=UTF-8"})
    assert answer.status_code == 200


def test_unknown_path_is_404_problem(client):
    answer = client.get("/v2/compile", headers={"x-request-id": "t-1"})
    assert_problem(answer, {
        "type": "urn:virtuned:problem:not-found", "title": "No such resource",
        "status": 404, "detail": "no resource at /v2/compile; the API is described at "
        "/openapi.json", "instance": "urn:virtuned:request:t-1", "request_id": "t-1",
        "diagnostics": [], "exit_code": 2})


def test_wrong_method_is_405_problem_with_allow(client):
    answer = client.get("/v1/compile", headers={"x-request-id": "t-1"})
    assert answer.headers["allow"] == "POST"
    assert_problem(answer, {
        "type": "urn:virtuned:problem:method-not-allowed", "title": "Method not allowed",
        "status": 405, "detail": "GET is not allowed on /v1/compile",
        "instance": "urn:virtuned:request:t-1", "request_id": "t-1", "diagnostics": [],
        "exit_code": 2})


# ---------------------------------------------------------------- explain, check

def test_explain_answers_what_the_library_answers(client):
    answer = post(client, "/v1/explain", {"domain": WEB_SERVER, "profiles": ["server"]})
    assert answer.status_code == 200
    expected = api.explain(WEB_SERVER, sources=[library_file("server")])
    body = answer.json()
    assert body["xml"] == expected.xml
    assert body["changes"] == explanation_json(expected)["changes"]
    assert body["skipped"] == []
    assert [w["message"] for w in body["warnings"]] == [w.message for w in expected.warnings]
    assert body["changes"][0] == {
        "path": "/domain/devices/disk[1]/target/@bus", "old": None, "new": "virtio",
        "trait": "disk bus virtio", "strength": "prefer",
        "at": {"file": "traits/bundles.vt", "line": 32, "col": 5}, "overridden": False,
        "chain": [{"trait": "headless server",
                   "at": {"file": "traits/server.vt", "line": 3, "col": 1}}]}


def test_check_lists_warnings(client):
    answer = post(client, "/v1/check", {"text": "profile mine 1.0.0\nvideo qxl\nvideo qxl\n"})
    assert answer.status_code == 200
    assert answer.json() == {"warnings": [{
        "severity": "warning",
        "message": "'video qxl' repeats a trait of this profile; it changes nothing",
        "file": "<profile>", "line": 3, "col": 1, "end_line": 3, "end_col": 10,
        "hint": None, "related": [{"message": "first here", "file": "<profile>",
                                   "line": 2, "col": 1}]}]}


def test_check_of_a_broken_profile_is_422(client):
    answer = post(client, "/v1/check", {"text": "profile mine 1.0.0\nvidoe qxl\n"})
    body = answer.json()
    assert answer.status_code == 422
    assert body["exit_code"] == 2
    [diagnostic] = body["diagnostics"]
    assert (diagnostic["file"], diagnostic["line"], diagnostic["col"]) == ("<profile>", 2, 1)
    assert "vidoe" in diagnostic["message"]
    assert body["detail"].startswith(f"<profile>:2:1: error: {diagnostic['message']}\n"
                                     "    vidoe qxl\n    ^")


def test_check_requires_its_text(client):
    assert_problem(post(client, "/v1/check", {}), problem(
        422, "invalid-input", "Invalid input",
        "<request>:1:1: error: /text: this field is required",
        [request_diagnostic("/text: this field is required")], 2, "t-1"))


# ---------------------------------------------------------------- plan, fit, host

HOSTS = ROOT / "examples" / "hosts"
SMT = (HOSTS / "two-node-smt.xml").read_text()  # 2 nodes x 4 cores x 2 threads
TEST_DRIVER = (HOSTS / "test-driver.xml").read_text()  # 2 nodes x 8 CPUs, no 1 GiB pages
NFV_DOMAIN = ("<domain type='kvm'><name>nfv</name><memory unit='GiB'>4</memory>"
              "<vcpu>4</vcpu><os><type arch='x86_64' machine='q35'>hvm</type></os></domain>")
NFV = ["dedicated cpus threads isolate", "emulator threads isolated", "hugepages 1GiB",
       "guest numa nodes 2", "iothreads 1", "realtime"]


def test_plan_answers_what_virtuned_plan_prints(client):
    answer = post(client, "/v1/plan", {"domain": NFV_DOMAIN, "traits": NFV})
    assert answer.status_code == 200
    expected = api.plan(NFV_DOMAIN, traits=NFV)
    assert answer.json() == {**expected.json(), "warnings": []}
    assert answer.json()["requirements"]["cpus"] == {
        "policy": "dedicated", "threads": "isolate", "threads_per_core": None,
        "dedicated": 5, "shared": 0, "realtime": True}
    assert answer.json()["placement"] is None


def test_plan_on_a_host_places_the_guest_there(client):
    answer = post(client, "/v1/plan", {"domain": NFV_DOMAIN, "traits": NFV, "host": SMT,
                                       "reserved_cpus": "0,8"})
    assert answer.status_code == 200
    assert answer.json()["placement"] == {
        "nodes": "0-1", "cpuset": "1-5",
        "cells": [{"cell": 0, "host_node": 0, "vcpus": {"0": "1", "1": "2"}},
                  {"cell": 1, "host_node": 1, "vcpus": {"2": "4", "3": "5"}}],
        "emulator": "3", "iothreads": "3"}
    # A capabilities document's page counts are totals: said at the hugepages trait.
    message = ("'hugepages 1GiB': <host> is a capabilities document: its page counts are "
               "the pools' totals, so they were taken as free (free pages unknown); a host "
               "snapshot ('virtuned host snapshot') or --connect says what is free")
    assert answer.json() == {**api.plan(NFV_DOMAIN, traits=NFV, host=SMT,
                                        reserved_cpus="0,8").json(), "warnings": [{
        "severity": "warning", "message": message, "file": "<trait 4>", "line": 1,
        "col": 1, "end_line": 1, "end_col": 15, "hint": None, "related": []}]}


def test_plan_on_a_host_it_does_not_fit_is_409_with_the_reason(client):
    answer = post(client, "/v1/plan", {
        "domain": NFV_DOMAIN, "traits": ["dedicated cpus", "vcpus 4"], "host": SMT,
        "reserved_cpus": "0-2,8-10,4-6,12-14"})
    message = ("infeasible placement on <host>: host node 0: 2 free CPUs after reserved "
               "0-2,4-6,8-10,12-14, guest cell 0 needs 4; host node 1: 2 free CPUs after "
               "reserved 0-2,4-6,8-10,12-14, guest cell 0 needs 4")
    assert_problem(answer, problem(
        409, "conflict", "Conflicting or infeasible request",
        f"<trait 1>:1:1: error: {message}\n    dedicated cpus\n    ^^^^^^^^^^^^^^",
        [{"severity": "error", "message": message, "file": "<trait 1>", "line": 1,
          "col": 1, "end_line": 1, "end_col": 15, "hint": None, "related": []}], 3, "t-1"))


def test_fit_answers_each_host_in_the_order_given(client):
    answer = post(client, "/v1/fit", {"domain": NFV_DOMAIN, "traits": NFV,
                                      "reserved_cpus": "0-1", "hosts": [TEST_DRIVER, SMT]})
    assert answer.status_code == 200
    assert answer.json() == [
        {"host": "<hosts/0>", "fits": False,
         "reason": "host node 0: 0 free 1GiB hugepages, guest cell 0 needs 2; "
                   "host node 1: 0 free 1GiB hugepages, guest cell 0 needs 2",
         "score": None, "placement": None},
        {"host": "<hosts/1>", "fits": True, "reason": None, "score": 0.3536,
         "placement": {"nodes": "0-1", "cpuset": "2-6",
                       "cells": [{"cell": 0, "host_node": 0, "vcpus": {"0": "2", "1": "3"}},
                                 {"cell": 1, "host_node": 1, "vcpus": {"2": "4", "3": "5"}}],
                       "emulator": "6", "iothreads": "6"}}]
    assert answer.json() == [a.json() for a in api.fit(
        NFV_DOMAIN, traits=NFV, reserved_cpus="0-1", hosts=[TEST_DRIVER, SMT])]


def test_fit_takes_host_snapshots_where_it_takes_capabilities(client):
    """A snapshot (virtuned host snapshot) is a host like a capabilities document:
    the CPUs its other guests hold are kept off and named."""
    busy = (HOSTS / "busy-host.json").read_text()
    answer = post(client, "/v1/fit", {"domain": NFV_DOMAIN, "hosts": [busy, SMT],
                                      "traits": ["dedicated cpus", "place on host node 1"]})
    assert answer.status_code == 200
    assert [(a["fits"], a["reason"]) for a in answer.json()] == [
        (False, "host node 1: 1 free CPUs, CPUs 8-14 held by other guests (db02, web01), "
                "guest cell 0 needs 4"),
        (True, None)]


def _sha256(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()


def test_fit_best_answers_the_best_hosts_best_first(client):
    """Ties go in the order given; a host given by its sha256 once the server has
    it is the same host (scores: tests/test_plan_fit.py)."""
    busy = (HOSTS / "busy-host.json").read_text()
    body = {"domain": NFV_DOMAIN, "traits": ["dedicated cpus"], "best": 2}
    first = post(client, "/v1/fit", {**body, "hosts": [TEST_DRIVER, busy, SMT]})
    again = post(client, "/v1/fit", {**body, "hosts": [
        {"sha256": _sha256(TEST_DRIVER)}, SMT, {"sha256": _sha256(busy)},
        {"sha256": _sha256(SMT)}]})
    one_node = [{"cell": 0, "host_node": 0,
                 "vcpus": {"0": "0", "1": "8", "2": "1", "3": "9"}}]
    smt = {"fits": True, "reason": None, "score": 0.8313,
           "placement": {"nodes": "0", "cpuset": "0-1,8-9", "cells": one_node,
                         "emulator": "0-1,8-9", "iothreads": None}}
    busy_answer = {"fits": True, "reason": None, "score": 0.6429,
                   "placement": {"nodes": "0", "cpuset": "0,3-5",
                                 "cells": [{"cell": 0, "host_node": 0, "vcpus": {
                                     "0": "0", "1": "3", "2": "4", "3": "5"}}],
                                 "emulator": "0,3-5", "iothreads": None}}
    assert (first.status_code, again.status_code) == (200, 200)
    assert first.json() == [{"host": "<hosts/2>", **smt}, {"host": "<hosts/1>", **busy_answer}]
    assert again.json() == [{"host": "<hosts/1>", **smt}, {"host": "<hosts/3>", **smt}]


def test_fit_on_a_sha256_the_server_lacks_is_409_naming_it(client):
    unknown = "0" * 64
    answer = post(client, "/v1/fit", {"traits": ["dedicated cpus"], "hosts": [
        SMT, {"sha256": unknown}, {"sha256": _sha256(SMT)}, {"sha256": "f" * 64}]})
    hint = "send the document itself in its place"
    messages = [f"/hosts/1: no host document with sha256 {unknown} on this server",
                f"/hosts/3: no host document with sha256 {'f' * 64} on this server"]
    assert_problem(answer, problem(
        409, "unknown-host", "Unknown host document",
        "\n".join(f"<request>:1:1: error: {m}\nhint: {hint}" for m in messages),
        [request_diagnostic(m, hint) for m in messages], 2, "t-1"))


def test_fit_refuses_a_host_reference_that_is_no_sha256(client):
    answer = post(client, "/v1/fit", {"traits": ["dedicated cpus"],
                                      "hosts": [{"sha256": "ABC"}]})
    message = '/hosts/0/sha256: "ABC" is not a sha256 (64 lowercase hex digits)'
    assert_problem(answer, problem(422, "invalid-input", "Invalid input",
                                   f"<request>:1:1: error: {message}",
                                   [request_diagnostic(message)], 2, "t-1"))


def test_fit_refuses_a_broken_host_naming_it(client):
    answer = post(client, "/v1/fit", {"traits": ["dedicated cpus"],
                                      "hosts": [SMT, "<capabilities><host>\n"]})
    assert answer.status_code == 422
    [diagnostic] = answer.json()["diagnostics"]
    assert (diagnostic["file"], diagnostic["line"], diagnostic["col"]) == ("<hosts/1>", 2, 1)


def test_compile_on_a_host_pins_inside_the_allocated_cpus(client):
    body = {"domain": NFV_DOMAIN, "traits": ["dedicated cpus"], "host": SMT,
            "allocated_cpus": "5-7,13"}
    answer = post(client, "/v1/compile", body)
    assert answer.status_code == 200
    expected = api.compile(NFV_DOMAIN, traits=["dedicated cpus"], host=SMT,
                           allocated_cpus="5-7,13")
    assert answer.json() == {"xml": expected.xml, "warnings": []}
    # New elements follow the input's quote style (NFV_DOMAIN's is ').
    assert "<vcpupin vcpu='0' cpuset='5'/>" in expected.xml


def test_cpu_lists_need_a_host(client):
    answer = post(client, "/v1/compile", {"traits": ["dedicated cpus"],
                                          "reserved_cpus": "0-1"})
    message, hint = ("/reserved_cpus needs the host it applies to",
                     "give the host's 'virsh capabilities' with /host")
    assert_problem(answer, problem(
        422, "invalid-input", "Invalid input",
        f"<request>:1:1: error: {message}\nhint: {hint}",
        [request_diagnostic(message, hint)], 2, "t-1"))


@pytest.mark.parametrize("fields, message", [
    ({"host": SMT, "allocated_cpus": "4-20"},
     "/allocated_cpus: CPUs 16-20 are not on the host (<host> has CPUs 0-15)"),
    ({"host": SMT, "reserved_cpus": "0-x"},
     "/reserved_cpus: expected a CPU list like 0-3,8,^2, got '0-x'"),
    ({"device_nodes": {"3b:00.0/1": 0}},
     "/device_nodes/3b:00.0~11: expected a PCI address like 0000:3b:00.0, got '3b:00.0/1'"),
])
def test_a_bad_request_value_is_named_by_its_pointer(client, fields, message):
    """The request's fields, not the CLI's options, in what an HTTP client reads."""
    answer = post(client, "/v1/compile", {"traits": ["dedicated cpus"], **fields})
    assert_problem(answer, problem(422, "invalid-input", "Invalid input",
                                   f"<request>:1:1: error: {message}",
                                   [request_diagnostic(message)], 2, "t-1"))


def test_a_name_the_input_contradicts_is_named_by_its_pointer(client):
    answer = post(client, "/v1/compile", {"domain": WEB_SERVER, "name": "web02"})
    message = "'/name' wants the name 'web02', but the input names the domain 'web01'"
    hint = "/name only names a domain whose input has no <name>; drop /name or change the input"
    diagnostic = {"severity": "error", "message": message, "file": "<domain>", "line": 4,
                  "col": 3, "end_line": 4, "end_col": 8, "hint": hint, "related": []}
    assert_problem(answer, problem(
        409, "conflict", "Conflicting or infeasible request",
        f"<domain>:4:3: error: {message}\n      <name>web01</name>\n      ^^^^^\nhint: {hint}",
        [diagnostic], 3, "t-1"))


def test_fit_requires_hosts(client):
    assert_problem(post(client, "/v1/fit", {"traits": ["video qxl"]}), problem(
        422, "invalid-input", "Invalid input",
        "<request>:1:1: error: /hosts: this field is required",
        [request_diagnostic("/hosts: this field is required")], 2, "t-1"))


def test_fit_takes_hosts_not_host(client):
    assert_problem(post(client, "/v1/fit", {"host": SMT, "hosts": [SMT]}), problem(
        422, "invalid-input", "Invalid input",
        "<request>:1:1: error: /host: unknown field\nhint: did you mean 'hosts'?",
        [request_diagnostic("/host: unknown field", hint="did you mean 'hosts'?")], 2,
        "t-1"))


# ---------------------------------------------------------------- observability

def _samples(client) -> dict[str, float]:
    answer = client.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain; version=")
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
            for line in answer.text.splitlines() if line and not line.startswith("#")}


def test_metrics_count_requests_latencies_and_errors(client):
    before = _samples(client)
    for _ in range(3):
        assert post(client, "/v1/compile", {"traits": ["video qxl"]}).status_code == 200
    assert post(client, "/v1/compile", {"traits": ["video qxxl"]}).status_code == 422
    after = _samples(client)

    def grew(name):
        return after[name] - before.get(name, 0.0)

    ok = 'virtuned_http_requests_total{method="POST",route="/v1/compile",status="200"}'
    bad = 'virtuned_http_requests_total{method="POST",route="/v1/compile",status="422"}'
    assert (grew(ok), grew(bad)) == (3, 1)
    assert grew('virtuned_http_request_duration_seconds_count{route="/v1/compile"}') == 4
    assert grew('virtuned_http_request_duration_seconds_bucket{le="+Inf",'
                'route="/v1/compile"}') == 4
    assert grew('virtuned_http_errors_total{route="/v1/compile",type="invalid-input"}') == 1
    assert not any(name.endswith("_created") or "_created{" in name for name in after)


def test_random_paths_do_not_grow_the_metrics(client):
    for n in range(5):
        client.get(f"/probe-{n}")
    names = _samples(client)
    assert not any("probe-" in name for name in names)
    assert names['virtuned_http_requests_total{method="GET",route="other",status="404"}'] >= 5


def test_one_json_access_log_line_per_request(server, client):
    post(client, "/v1/compile", {"traits": ["video qxl"]}, request_id="log-line-1")
    client.get("/healthz")  # the line above is written before this answer is sent
    [line] = [line for line in server.log_lines() if line.get("request_id") == "log-line-1"]
    assert set(line) == {"ts", "level", "logger", "message", "method", "path", "status",
                         "duration_ms", "request_id", "client", "pid"}
    assert (line["level"], line["logger"], line["message"]) == (
        "info", "virtuned.access", "POST /v1/compile 200")
    assert (line["method"], line["path"], line["status"], line["client"]) == (
        "POST", "/v1/compile", 200, "127.0.0.1")
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] > 0
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["ts"])
