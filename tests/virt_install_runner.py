#!/usr/bin/python3
"""Run ``virt-install --print-xml`` for many command lines in one process.

Usage: /usr/bin/python3 -I tests/virt_install_runner.py < REQUEST.json

Run it with Debian's /usr/bin/python3: virtinst (package ``virtinst``, installed
under /usr/share/virt-manager) needs the ``gi`` and ``libvirt`` modules of
Debian's python. The request on stdin is

    {"caps": CAPS.xml, "runs": [{"name": N, "domcaps": DOMCAPS.xml, "argv": [...]}]}

and the answer on stdout is ``{"xml": {N: TEXT}, "errors": {N: TEXT}}``; the exit
code is 0 whenever the answer was written (a run virt-install refuses is in
"errors", with its own message).

No daemon and no KVM: every run connects to virtinst's own test hook (the "magic
URI" of virtinst/uri.py that virt-manager's test suite uses), where libvirt's
test driver pretends to be ``qemu:///system`` with the captured ``virsh
capabilities`` and ``virsh domcapabilities`` given, and ``predictable`` fixes the
UUID and the MAC addresses. A process pays once for importing virtinst and
loading libosinfo (about 0.6 s); each run then costs about 50 ms, against about
0.5 s for a ``virt-install`` process of its own.
"""

import contextlib
import io
import json
import logging
import os
import sys
import tempfile

sys.path.insert(0, "/usr/share/virt-manager")

from virtinst import cli, virtinstall  # noqa: E402  (after the path above)
from virtinst.logger import log  # noqa: E402

_setup_logging = cli.setupLogging


def setup_logging_without_file(*args, **kwargs) -> None:
    """virt-install's logging, but warnings and errors only, and no debug log file:
    each run would append about 50 KB to ~/.cache/virt-manager/virt-install.log (the
    file is still opened, in main's temporary cache directory, and gets one line)."""
    _setup_logging(*args, **kwargs)
    for handler in [h for h in log.handlers if isinstance(h, logging.FileHandler)]:
        log.removeHandler(handler)
        handler.close()
    log.setLevel(logging.WARNING)


cli.setupLogging = setup_logging_without_file


def magic_uri(caps: str, domcaps: str) -> str:
    return ("__virtinst_test__test:///default,fakeuri=qemu:///system,"
            f"caps={caps},domcaps={domcaps},predictable")


def print_xml(conn, uri: str, argv: list) -> str:
    """What ``virt-install --connect URI --print-xml ARGV`` prints; RuntimeError with
    virt-install's message when it refuses (it exits)."""
    sys.argv = ["virt-install", "--connect", uri, "--print-xml", *argv]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            virtinstall.main(conn=conn)
        except SystemExit:
            raise RuntimeError(err.getvalue().strip() or out.getvalue().strip()) from None
    return out.getvalue()


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="virt-install-cache-") as cache:
        os.environ["XDG_CACHE_HOME"] = cache  # nothing of a run outlives it
        answer = run_all(json.load(sys.stdin))
    json.dump(answer, sys.stdout)
    return 0


def run_all(request: dict) -> dict:
    """Every run of the request, one connection per domain capabilities file."""
    connections = {}
    answer = {"xml": {}, "errors": {}}
    for run in request["runs"]:
        uri = magic_uri(request["caps"], run["domcaps"])
        if uri not in connections:
            connections[uri] = cli.getConnection(uri)
        try:
            answer["xml"][run["name"]] = print_xml(connections[uri], uri, run["argv"])
        except RuntimeError as exc:
            answer["errors"][run["name"]] = str(exc)
    return answer


if __name__ == "__main__":
    sys.exit(main())
