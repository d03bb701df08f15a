"""Who may call: HTTPS, mutual TLS and bearer tokens, with certificates made by the
openssl command at test time. A refused client gets 401 or 403 problem+json, the
same whatever it asked for, and the server logs it; /healthz stays open."""

from __future__ import annotations

import signal
import socket
import ssl
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.server.harness import ROOT, problem, running_server
from tests.server.test_limits import wait_for

TOKEN = "t0k3n-for-the-test-suite-0001"
NEW_TOKEN = "t0k3n-for-the-test-suite-0002"


def openssl(*arguments, cwd) -> None:
    subprocess.run(["openssl", *arguments], cwd=cwd, check=True, capture_output=True)


def signed(directory, name: str, ca: str, extension: str | None = None) -> None:
    """NAME.key and NAME.pem, a P-256 key and its certificate signed by CA."""
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}",
            cwd=directory)
    more = []
    if extension:
        (directory / f"{name}.ext").write_text(extension + "\n")
        more = ["-extfile", f"{name}.ext"]
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
            "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", *more, cwd=directory)


def authority(directory, name: str) -> None:
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "2",
            "-subj", f"/CN={name}", cwd=directory)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A CA, the server's certificate (for 127.0.0.1), a client's, and a client's of
    another CA."""
    directory = tmp_path_factory.mktemp("pki")
    authority(directory, "ca")
    authority(directory, "other-ca")
    signed(directory, "server", "ca", "subjectAltName=IP:127.0.0.1")
    signed(directory, "client", "ca")
    signed(directory, "stranger", "other-ca")
    return directory


def context(pki, client: str | None = None) -> ssl.SSLContext:
    """What a client verifies the server with, and presents itself (``client``)."""
    made = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    if client:
        made.load_cert_chain(str(pki / f"{client}.pem"), str(pki / f"{client}.key"))
    return made


@pytest.fixture(scope="module")
def tokens_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("tokens") / "tokens"
    path.write_text(f"# the test suite's\n\n{TOKEN}\n")
    return path


@pytest.fixture(scope="module")
def with_tokens(pki, tokens_file):
    with running_server("--tls-cert", str(pki / "server.pem"), "--tls-key",
                        str(pki / "server.key"), "--tokens", str(tokens_file),
                        verify=context(pki)) as server:
        yield server


def bearer(token: str) -> dict:
    return {"authorization": f"Bearer {token}"}


def refused(answer, status: int, kind: str, title: str, detail: str, request_id: str):
    assert answer.status_code == status
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json() == problem(status, kind, title, detail, [], 2, request_id)


def test_healthz_and_metrics_stay_open(with_tokens):
    with with_tokens.client() as client:
        assert client.get("/healthz").status_code == 200
        assert client.get("/metrics").status_code == 200


@pytest.mark.parametrize("method, path", [
    ("POST", "/v1/compile"), ("GET", "/v1/profiles"), ("GET", "/openapi.json"),
    ("GET", "/no/such/path"), ("DELETE", "/v1/compile")])
def test_without_a_token_anything_is_401_and_says_nothing_of_what_exists(
        with_tokens, method, path):
    with with_tokens.client() as client:
        answer = client.request(method, path, json={}, headers={"x-request-id": "a-1"})
    refused(answer, 401, "unauthorized", "Unauthorized", "this server requires a bearer "
            "token: Authorization: Bearer TOKEN", "a-1")
    assert answer.headers["www-authenticate"] == 'Bearer realm="virtuned"'


def test_a_token_the_server_does_not_know_is_401(with_tokens):
    with with_tokens.client() as client:
        answer = client.post("/v1/compile", json={}, headers={
            **bearer(TOKEN[:-1] + "9"), "x-request-id": "a-2"})
    refused(answer, 401, "unauthorized", "Unauthorized",
            "the bearer token is not one this server accepts", "a-2")
    assert answer.headers["www-authenticate"] == ('Bearer realm="virtuned", '
                                                  'error="invalid_token"')
    [line] = [line for line in with_tokens.log_lines() if line.get("request_id") == "a-2"
              and line["message"] == "refused"]
    assert line["reason"] == "unknown bearer token" and line["path"] == "/v1/compile"
    assert TOKEN[:-1] not in with_tokens.log.read_text()


def test_a_known_token_is_served(with_tokens):
    with with_tokens.client() as client:
        answer = client.post("/v1/compile", json={"traits": ["video qxl"]},
                             headers=bearer(TOKEN))
    assert answer.status_code == 200
    assert "<model type=\"qxl\"" in answer.json()["xml"]


def test_sighup_reads_the_tokens_again(with_tokens, tokens_file):
    tokens_file.write_text(f"{NEW_TOKEN}\n")
    with_tokens.process.send_signal(signal.SIGHUP)
    with with_tokens.client() as client:
        assert wait_for(lambda: client.get("/v1/traits", headers=bearer(NEW_TOKEN))
                        .status_code == 200)
        assert client.get("/v1/traits", headers=bearer(TOKEN)).status_code == 401
        tokens_file.write_text("")  # unusable: the tokens stay as they were
        with_tokens.process.send_signal(signal.SIGHUP)
        assert wait_for(lambda: any("tokens not reloaded" in line["message"]
                                    for line in with_tokens.log_lines()))
        assert client.get("/v1/traits", headers=bearer(NEW_TOKEN)).status_code == 200
    tokens_file.write_text(f"{TOKEN}\n")
    with_tokens.process.send_signal(signal.SIGHUP)
    with with_tokens.client() as client:
        assert wait_for(lambda: client.get("/v1/traits", headers=bearer(TOKEN))
                        .status_code == 200)


def workers_of(supervisor: int) -> set[int]:
    """uvicorn's worker processes under ``supervisor`` (multiprocessing's spawned
    children, not its resource tracker), from /proc."""
    found = set()
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes()
        except OSError:  # not a process, or gone meanwhile
            continue
        if int(stat.rpartition(")")[2].split()[1]) == supervisor and b"spawn_main" in command:
            found.add(int(entry.name))
    return found


def messages(server, text: str) -> int:
    return sum(line["message"] == text for line in server.log_lines())


def test_sighup_with_several_workers_reads_the_tokens_in_each_and_restarts_none(tmp_path):
    tokens = tmp_path / "tokens"
    tokens.write_text(f"{TOKEN}\n")
    with running_server("--workers", "2", "--tokens", str(tokens)) as server:
        workers = workers_of(server.process.pid)
        assert len(workers) == 2
        tokens.write_text(f"{NEW_TOKEN}\n")
        server.process.send_signal(signal.SIGHUP)
        assert wait_for(lambda: messages(server, "tokens reloaded") == 2)
        tokens.write_text("")  # unusable: each worker keeps the tokens it has
        server.process.send_signal(signal.SIGHUP)
        assert wait_for(lambda: messages(server, "tokens not reloaded: "
                                         f"{tokens}: no token in it") == 2)
        # a new connection each time, until both workers have answered
        answered, sent = set(), 0
        while answered != workers:
            assert sent < 1000 and answered <= workers
            request_id = f"hup-{sent}"
            assert httpx.get(f"{server.url}/v1/traits", timeout=60, headers={
                **bearer(NEW_TOKEN), "x-request-id": request_id}).status_code == 200
            assert httpx.get(f"{server.url}/v1/traits", timeout=60,
                             headers=bearer(TOKEN)).status_code == 401
            sent += 1
            answered |= {line["pid"] for line in server.log_lines()
                         if line.get("request_id") == request_id}
        assert workers_of(server.process.pid) == workers
        assert messages(server, "Received SIGHUP, restarting processes.") == 0


def test_sighup_without_tokens_leaves_the_server_as_it_was():
    with running_server() as server:  # one worker: the server's own process
        server.process.send_signal(signal.SIGHUP)
        assert wait_for(lambda: messages(server, "SIGHUP: no --tokens file to read "
                                                 "again") == 1)
        server.assert_serving()


# The CLI, sending itself a SIGHUP as `serve` imports the web stack: one that arrives
# while the server starts, at a moment the test decides rather than a race.
HANGUP_WHILE_STARTING = """
import os, signal, sys

class Hangup:
    def find_spec(self, name, path=None, target=None):
        if name == "uvicorn":
            sys.meta_path.remove(self)
            os.kill(os.getpid(), signal.SIGHUP)
        return None

sys.meta_path.insert(0, Hangup())
from virtuned.cli import console
raise SystemExit(console())
"""


@pytest.mark.parametrize("workers", [1, 2])
def test_a_sighup_while_the_server_starts_waits_for_its_handler(workers):
    with running_server("--workers", str(workers),
                        python=("-c", HANGUP_WHILE_STARTING)) as server:
        assert wait_for(lambda: messages(server, "SIGHUP: no --tokens file to read "
                                                 "again") == workers)
        server.assert_serving()
        if workers > 1:  # the supervisor passed it on, and restarted no worker
            assert messages(server, "SIGHUP: the workers read the tokens file again") == 1
            assert len(workers_of(server.process.pid)) == workers


@pytest.fixture(scope="module")
def mutual(pki):
    with running_server("--tls-cert", str(pki / "server.pem"), "--tls-key",
                        str(pki / "server.key"), "--client-ca", str(pki / "ca.pem"),
                        "--protect-metrics", verify=context(pki)) as server:
        yield server


def test_mutual_tls_without_a_client_certificate_is_403(mutual, pki):
    with mutual.client() as client:
        assert client.get("/healthz").status_code == 200  # probes need no certificate
        for path in ("/v1/traits", "/metrics", "/nothing-here"):
            refused(client.get(path, headers={"x-request-id": "a-3"}), 403, "forbidden",
                    "Forbidden", "this server requires a client certificate (mutual TLS)",
                    "a-3")


def test_mutual_tls_with_a_client_certificate_is_served(mutual, pki):
    with mutual.client(verify=context(pki, "client")) as client:
        assert client.get("/v1/traits").status_code == 200
        assert client.get("/metrics").status_code == 200


def test_a_certificate_of_another_ca_fails_the_handshake(mutual, pki):
    with mutual.client(verify=context(pki, "stranger")) as client:
        with pytest.raises(httpx.TransportError):
            client.get("/v1/traits")
    mutual.assert_serving()


@pytest.mark.parametrize("options, message", [
    (["--client-ca", "ca.pem"], "--client-ca: error: needs --tls-cert"),
    (["--protect-metrics"], "--protect-metrics: error: needs --tokens or --client-ca"),
    (["--tokens", "empty"], "empty: error: no token in it (--tokens)"),
    (["--tokens", "short"], "short:1: error: a token is 16 or more of A-Z a-z 0-9 - . _ ~ "
                            "+ / (then = padding), nothing else on its line (--tokens)"),
    (["--tls-cert", "missing.pem"], "missing.pem: error: no such file (--tls-cert)"),
])
def test_serve_refuses_what_it_cannot_use(pki, options, message):
    (pki / "empty").write_text("# nothing yet\n")
    (pki / "short").write_text("abc\n")
    run = subprocess.run([sys.executable, "-m", "virtuned", "serve", *options], cwd=pki,
                         capture_output=True, text=True, timeout=60,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert (run.returncode, run.stderr) == (2, message + "\n")


def test_a_tls_handshake_that_never_comes_is_closed_at_the_header_time_limit(pki):
    """Not after asyncio's 60 s: the socket's 30 s read would run out first."""
    with running_server("--tls-cert", str(pki / "server.pem"), "--tls-key",
                        str(pki / "server.key"), "--header-timeout", "0.5",
                        verify=context(pki)) as server:
        port = int(server.url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            sock.sendall(b"\x16\x03\x01")  # the first bytes of a ClientHello, no more
            assert sock.recv(1024) == b""  # closed by the server
        with server.client() as client:  # and it serves the next client
            assert client.get("/healthz").status_code == 200
