"""Hostile input gets a 4xx problem, never a 500 or a leak, and the server keeps
serving: /healthz is checked after every attack."""

from __future__ import annotations

import json
import socket

import pytest

from tests.server.harness import problem, request_diagnostic

JSON_BODY = {"content-type": "application/json", "x-request-id": "h-1"}
PASSWD_LINE = "root:x:0:0"


@pytest.fixture(autouse=True)
def still_serving(server):
    yield
    server.assert_serving()


def post(client, body: bytes, **headers):
    return client.post("/v1/compile", content=body, headers={**JSON_BODY, **headers})


def post_json(client, value):
    return post(client, json.dumps(value).encode())


def only_diagnostic(answer, status: int):
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    body = answer.json()
    [diagnostic] = body["diagnostics"]
    return body, diagnostic


XXE = ('<?xml version="1.0"?>\n<!DOCTYPE domain [<!ENTITY xxe SYSTEM '
       '"file:///etc/passwd">]>\n<domain><name>&xxe;</name></domain>')
BILLION_LAUGHS = ('<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol">'
                  + "".join(f'<!ENTITY lol{n} "{f"&lol{n - 1};" * 10 if n > 1 else "&lol;" * 10}">'
                            for n in range(1, 10))
                  + ']>\n<domain><name>&lol9;</name></domain>')
EXTERNAL_DTD = '<!DOCTYPE domain SYSTEM "http://127.0.0.1:9/evil.dtd">\n<domain/>'
PARAMETER_ENTITY = ('<!DOCTYPE domain [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]>'
                    '\n<domain/>')


@pytest.mark.parametrize("xml, line", [(XXE, 2), (BILLION_LAUGHS, 2), (EXTERNAL_DTD, 1),
                                       (PARAMETER_ENTITY, 1)])
@pytest.mark.parametrize("field, name, kind", [
    ("domain", "<domain>", "domain XML"),
    ("domcaps", "<domcaps>", "domain capabilities XML")])
def test_dtds_and_entities_are_refused(client, xml, line, field, name, kind):
    if field == "domcaps":
        xml = xml.replace("<domain>", "<domainCapabilities>").replace(
            "</domain>", "</domainCapabilities>").replace("<domain/>", "<domainCapabilities/>")
    body, diagnostic = only_diagnostic(post_json(client, {field: xml}), 422)
    assert diagnostic == {
        "severity": "error",
        "message": f"DTDs and entity declarations are not allowed in {kind}",
        "file": name, "line": line, "col": 1, "end_line": None, "end_col": None,
        "hint": f"libvirt {kind} never needs a DOCTYPE; remove it", "related": []}
    assert body["exit_code"] == 2
    assert PASSWD_LINE not in json.dumps(body)


def test_xinclude_is_kept_as_data_never_followed(client):
    domain = ('<domain xmlns:xi="http://www.w3.org/2001/XInclude">'
              '<xi:include href="/etc/passwd" parse="text"/></domain>')
    answer = post_json(client, {"domain": domain})
    assert answer.status_code == 200
    assert '<xi:include href="/etc/passwd" parse="text"/>' in answer.json()["xml"]
    assert PASSWD_LINE not in answer.text


def test_a_50_mb_body_is_refused_by_its_length(client):
    answer = post(client, b'{"traits": ["' + b"a" * (50 * 1024 * 1024) + b'"]}')
    assert answer.status_code == 413
    assert answer.json() == problem(413, "too-large", "Request body too large",
                                    "the body is 52428816 bytes; the limit is 1048576",
                                    [], 2, "h-1")


def test_a_50_mb_chunked_body_is_refused_as_it_arrives(client):
    def chunks():
        for _ in range(50):
            yield b"[" * (1024 * 1024)

    answer = client.post("/v1/compile", content=chunks(), headers=JSON_BODY)
    assert answer.request.headers["transfer-encoding"] == "chunked"
    assert answer.status_code == 413
    assert answer.json()["detail"] == ("the body is more than 1048576 bytes; the limit is "
                                       "1048576")


def test_10000_deep_json_is_400(client):
    answer = post(client, b"[" * 10_000 + b"]" * 10_000)
    assert answer.status_code == 400
    assert answer.json() == problem(400, "malformed-request",
                                    "The request body is not valid JSON",
                                    "the JSON nests too deeply", [], 2, "h-1")


def test_10000_deep_json_inside_a_field_is_422(client):
    answer = post(client, b'{"params": {"a": ' + b"[" * 900 + b"]" * 900 + b"}}")
    body, diagnostic = only_diagnostic(answer, 422)
    assert diagnostic["message"] == ("/params/a: expected a string, integer or boolean, "
                                     "got an array")


def test_10000_deep_xml_is_422(client):
    deep = "<a>" * 10_000 + "</a>" * 10_000
    body, diagnostic = only_diagnostic(post_json(client, {"domain": f"<domain>{deep}</domain>"}),
                                       422)
    assert (diagnostic["message"], diagnostic["file"], diagnostic["line"]) == (
        "domain XML nests deeper than 64 levels", "<domain>", 1)


@pytest.mark.parametrize("body, line, col, byte, offset", [
    (b'{"traits": ["caf\xc3"]}', 1, 17, 0xc3, 16),
    (b'{"traits":\n ["\xff\xfe"]}', 2, 4, 0xff, 14),
    (b"\xff\xfe{\x00}\x00", 1, 1, 0xff, 0),  # UTF-16 with a byte-order mark
])
def test_invalid_utf8_is_400_at_the_byte(client, body, line, col, byte, offset):
    answer = post(client, body)
    message = f"the body is not UTF-8: byte 0x{byte:02x} at offset {offset}"
    assert answer.status_code == 400
    assert answer.json() == problem(
        400, "malformed-request", "The request body is not valid JSON",
        f"<request>:{line}:{col}: error: {message}",
        [request_diagnostic(message, line=line, col=col)], 2, "h-1")


def test_invalid_utf8_inside_the_domain_xml_cannot_reach_it(client):
    # JSON strings are Unicode: the nearest a client gets is a lone surrogate.
    body, diagnostic = only_diagnostic(post(client, b'{"domain": "<domain>\\udcff</domain>"}'),
                                       422)
    assert diagnostic["message"] == ("/domain: has a lone surrogate \\udcff, which is not a "
                                     "character")


@pytest.mark.parametrize("field, value", [
    ("traits", ["\\ud800"]), ("profiles", ["\\udfff"]), ("name", "x\\ud83d"),
    ("params", {"\\ud800": "x"})])
def test_lone_surrogates_are_422(client, field, value):
    raw = json.dumps({field: value}).replace("\\\\", "\\").encode()
    answer = post(client, raw)
    assert answer.status_code == 422
    assert "lone surrogate" in answer.json()["diagnostics"][0]["message"]


def test_a_number_of_100000_digits_is_400(client):
    answer = post(client, b'{"params": {"a": ' + b"1" * 100_000 + b"}}")
    assert answer.status_code == 400
    assert answer.json()["detail"] == "malformed JSON: a number has more than 4300 digits"


@pytest.mark.parametrize("field, text, message", [
    ("traits", "video\x00qxl", "control character \\x00 (U+0000) in trait text is not "
                              "allowed"),
    ("domain", "<domain>\x00</domain>",
     "malformed XML: Invalid character: Char 0x0 out of allowed range\n"),
    ("name", "a\x00b", "/name: the name 'a\\x00b': control character \\x00 (U+0000) "
                      "is not allowed"),
    ("params", "a\x01b", "/params/x: the value 'a\\x01b': control character \\x01 "
                        "(U+0001) is not allowed"),
])
def test_control_characters_are_422(client, field, text, message):
    value = {"traits": [text], "params": {"x": text}}.get(field, text)
    body, diagnostic = only_diagnostic(post_json(client, {field: value}), 422)
    assert diagnostic["message"] == message


@pytest.mark.parametrize("hosts, message", [
    ([[None, None]], "/hosts/0: expected a string or object, got an array"),
    ([3], "/hosts/0: expected a string or object, got a number"),
    ([{"sha256": 5}], "/hosts/0/sha256: expected a string, got a number"),
])
def test_a_fit_host_of_the_wrong_kind_is_422(client, hosts, message):
    """A host is its document or {"sha256"}: anything else is named (it was a 500)."""
    answer = client.post("/v1/fit", json={"hosts": hosts}, headers=JSON_BODY)
    body, diagnostic = only_diagnostic(answer, 422)
    assert diagnostic["message"] == message


def test_too_many_entries_and_too_long_texts_are_422(client):
    answer = post_json(client, {"traits": ["video qxl"] * 65, "profiles": ["base"] * 65,
                                "params": {f"p{n}": n for n in range(65)}})
    assert answer.status_code == 422
    assert [d["message"] for d in answer.json()["diagnostics"]] == [
        "/profiles: has 65 entries; the limit is 64",
        "/traits: has 65 entries; the limit is 64",
        "/params: has 65 entries; the limit is 64"]
    answer = post_json(client, {"traits": ["#" + "x" * 70_000]})
    assert [d["message"] for d in answer.json()["diagnostics"]] == [
        "/traits/0: is 70001 characters; the limit is 65536"]


@pytest.mark.parametrize("name", ["../../../../etc/passwd", "/etc/passwd", "..",
                                  "server/../../x", "%2e%2e%2fetc", "~root"])
def test_path_traversal_through_profiles_is_refused(client, name):
    body, diagnostic = only_diagnostic(post_json(client, {"profiles": [name]}), 422)
    assert diagnostic["message"] == f"/profiles/0: {json.dumps(name)} is not a profile name"
    assert PASSWD_LINE not in json.dumps(body)


def test_include_of_a_path_in_inline_traits_is_a_syntax_error(client):
    answer = post_json(client, {"traits": ["include ../../etc/passwd"]})
    assert answer.status_code == 422
    assert PASSWD_LINE not in answer.text


def test_a_50_mb_header_does_not_take_the_server_down(server):
    port = int(server.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        try:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " +
                         b"a" * (50 * 1024 * 1024) + b"\r\n\r\n")
            sock.recv(100)
        except OSError:
            pass  # the server may close the connection on it: that is a refusal too


@pytest.mark.parametrize("raw", [
    b"GARBAGE \x00\xff\r\n\r\n",
    # Content-Length and chunked at once: a request-smuggling attempt.
    b"POST /v1/compile HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
])
def test_broken_http_is_400(server, raw):
    port = int(server.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(raw)
        assert sock.recv(100).startswith(b"HTTP/1.1 400 Bad Request\r\n")


def test_many_requests_at_once_are_all_answered(server):
    import concurrent.futures

    import httpx

    def one(n):
        return httpx.post(f"{server.url}/v1/compile", json={"traits": ["video qxl"]},
                          timeout=60).status_code

    with concurrent.futures.ThreadPoolExecutor(32) as pool:
        statuses = list(pool.map(one, range(200)))
    assert statuses == [200] * 200
