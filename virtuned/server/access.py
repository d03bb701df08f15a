"""Who may call the service: bearer tokens from a file, and client certificates.

``virtuned serve --tokens FILE`` requires ``Authorization: Bearer TOKEN`` with one of
the tokens of FILE (one a line; blank lines and ``#`` comments ignored), read again
on SIGHUP; ``--client-ca FILE`` (with ``--tls-cert``) requires a client certificate
signed by one of FILE's CAs. ``/healthz`` stays open for probes, and ``/metrics``
unless ``--protect-metrics``. A refused request is answered 401 (no token, or one
the server does not accept) or 403 (no client certificate), the same for every path,
so a refused client learns nothing of what exists; each refusal is a log line.

Tokens are kept as their SHA-256 digests and compared with ``hmac.compare_digest``
against every one, so the time an answer takes says nothing of how much of a token
was right.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re

import attrs

from virtuned.server.validation import Problem

LOG = logging.getLogger("virtuned.server")
TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")  # RFC 6750's b64token
SHORTEST_TOKEN = 16  # characters; anything shorter is guessable


@attrs.frozen
class Access:
    """Who may call, as ``virtuned serve`` was told; by default, anyone."""

    tokens: str | None = None  # the file of bearer tokens
    client_certificates: bool = False  # a client certificate is required (mutual TLS)
    protect_metrics: bool = False  # /metrics needs the same as the API

    def guarded(self) -> bool:
        return self.tokens is not None or self.client_certificates


class TokenFileError(Exception):
    """A tokens file that cannot be used: unreadable, empty, or a bad line
    (``where``: the file, or file:line)."""

    def __init__(self, where: str, reason: str):
        super().__init__(f"{where}: {reason}")
        self.where, self.reason = where, reason


def read_tokens(path: str) -> frozenset[bytes]:
    """The SHA-256 digests of the tokens of the file ``path``."""
    try:
        with open(path, encoding="utf-8") as file:
            lines = file.read(1 << 20).splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise TokenFileError(path, f"cannot be read: {exc}") from None
    digests = set()
    for number, line in enumerate(lines, 1):
        token = line.strip()
        if not token or token.startswith("#"):
            continue
        if not TOKEN.fullmatch(token) or len(token) < SHORTEST_TOKEN:
            raise TokenFileError(
                f"{path}:{number}", f"a token is {SHORTEST_TOKEN} or more of A-Z a-z "
                f"0-9 - . _ ~ + / (then = padding), nothing else on its line")
        digests.add(_digest(token.encode("ascii")))
    if not digests:
        raise TokenFileError(path, "no token in it")
    return frozenset(digests)


def _digest(token: bytes) -> bytes:
    return hashlib.sha256(token).digest()


class Guard:
    """Decides, for the head of each request, whether it may go on."""

    def __init__(self, access: Access):
        self.access = access
        self.open_paths = frozenset({"/healthz"} if access.protect_metrics else
                                    {"/healthz", "/metrics"})
        self.tokens = read_tokens(access.tokens) if access.tokens else frozenset()

    def reload(self) -> None:
        """Read the tokens file again (SIGHUP); a file that cannot be used leaves
        the tokens as they were, and says so in the log."""
        if not self.access.tokens:
            return
        try:
            self.tokens = read_tokens(self.access.tokens)
        except TokenFileError as exc:
            LOG.error("tokens not reloaded: %s", exc)
            return
        LOG.info("tokens reloaded", extra={"fields": {"tokens": len(self.tokens)}})

    def refusal(self, path: str, authorization: bytes | None,
                certificate: bool) -> Problem | None:
        """The Problem to answer a request for ``path`` with, or None to go on.
        ``certificate``: the connection has a verified client certificate."""
        if path in self.open_paths:
            return None
        if self.access.client_certificates and not certificate:
            return _refused("forbidden", "no client certificate",
                            "this server requires a client certificate (mutual TLS)")
        if not self.tokens:
            return None
        scheme, _, token = (authorization or b"").strip().partition(b" ")
        if scheme.lower() != b"bearer" or not token.strip():
            return _refused("unauthorized", "no bearer token",
                            "this server requires a bearer token: Authorization: Bearer "
                            "TOKEN", 'Bearer realm="virtuned"')
        given, known = _digest(token.strip()), False
        for digest in self.tokens:  # every one: no early end to time
            known |= hmac.compare_digest(given, digest)
        if known:
            return None
        return _refused("unauthorized", "unknown bearer token",
                        "the bearer token is not one this server accepts",
                        'Bearer realm="virtuned", error="invalid_token"')


def _refused(kind: str, reason: str, message: str, challenge: str | None = None) -> Problem:
    problem = Problem(kind, message,
                      headers={"WWW-Authenticate": challenge} if challenge else None)
    problem.reason = reason  # for the log line; never sent
    return problem


def log_refusal(problem: Problem, request) -> None:
    LOG.warning("refused", extra={"fields": {
        "reason": problem.reason, "request_id": request.request_id,
        "client": request.client, "method": request.method, "path": request.path}})
