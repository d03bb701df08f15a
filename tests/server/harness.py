"""The real server for tests: ``python -m virtuned serve`` on a free loopback port,
spoken to over HTTP; its JSON log lines are kept in a file to read back."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
START_SECONDS = 30


def problem(status, kind, title, detail, diagnostics, exit_code, request_id) -> dict:
    """The problem document the server answers, written out in full."""
    return {"type": f"urn:virtuned:problem:{kind}", "title": title, "status": status,
            "detail": detail, "instance": f"urn:virtuned:request:{request_id}",
            "request_id": request_id, "diagnostics": diagnostics, "exit_code": exit_code}


def request_diagnostic(message, hint=None, line=1, col=1) -> dict:
    """A diagnostic about the request body itself (file "<request>")."""
    return {"severity": "error", "message": message, "file": "<request>", "line": line,
            "col": col, "end_line": None, "end_col": None, "hint": hint, "related": []}


class RunningServer:
    def __init__(self, process: subprocess.Popen, url: str, log: Path, verify=True):
        self.process, self.url, self.log, self.verify = process, url, log, verify

    def client(self, **options) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=60,
                            **{"verify": self.verify, **options})

    def log_lines(self) -> list[dict]:
        return [json.loads(line) for line in self.log.read_text().splitlines() if line]

    def assert_serving(self) -> None:
        """The server is alive and answers, whatever the last request did to it."""
        assert self.process.poll() is None, self.log.read_text()[-3000:]
        answer = httpx.get(f"{self.url}/healthz", timeout=10, verify=self.verify)
        assert answer.status_code == 200
        assert answer.json()["status"] == "ok"


@contextlib.contextmanager
def running_server(*options: str, verify=None, python=("-m", "virtuned")):
    """A server started with ``options`` (``--timeout 0.02``...), stopped afterwards;
    ``verify``: it serves HTTPS, and this verifies its certificate (httpx's);
    ``python``: the interpreter's arguments that run the CLI."""
    with tempfile.TemporaryDirectory(prefix="virtuned-serve-test-") as scratch:
        log = Path(scratch) / "server.log"
        env = {**os.environ, "XDG_CONFIG_HOME": scratch, "PYTHONPATH": str(ROOT)}
        for _ in range(3):  # another process may take the free port before we do
            port = _free_port()
            with open(log, "wb") as sink:
                process = subprocess.Popen(
                    [sys.executable, *python, "serve", "--host", "127.0.0.1",
                     "--port", str(port), *options],
                    cwd=scratch, env=env, stdout=sink, stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL)
            scheme = "http" if verify is None else "https"
            server = RunningServer(process, f"{scheme}://127.0.0.1:{port}", log,
                                   True if verify is None else verify)
            try:
                if _wait_ready(server):
                    yield server
                    return
            finally:
                _stop(process)
        raise RuntimeError(f"the server did not start:\n{log.read_text()[-3000:]}")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_ready(server: RunningServer) -> bool:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            return False
        try:
            if httpx.get(f"{server.url}/healthz", timeout=1,
                         verify=server.verify).status_code == 200:
                return True
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"the server did not answer within {START_SECONDS} s:\n"
                       f"{server.log.read_text()[-3000:]}")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def in_process_server(app):
    """``app`` served by uvicorn in a thread of this process, for tests that patch
    what the server calls; yields its base URL."""
    import uvicorn

    from virtuned.server.http import Protocol

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None,
                                           access_log=False, http=Protocol,
                                           interface="asgi3", proxy_headers=False))
    thread = threading.Thread(target=server.run)
    thread.start()
    try:
        while not server.started:
            assert thread.is_alive(), "the in-process server did not start"
            time.sleep(0.01)
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join()
