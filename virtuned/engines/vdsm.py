"""oVirt's VDSM: a ``before_vm_start`` hook (contrib/vdsm/50_virtuned).

VDSM (lib/vdsm/common/hooks.py) runs the executables of
``/usr/libexec/vdsm/hooks/before_vm_start/`` in name order, with the domain XML in the
file named by ``$_hook_domxml`` and each custom property of the VM as an environment
variable; it defines what the file holds when they are done. A hook that exits 2
failed and stops the hooks after it; VDSM then refuses to start the VM, with what
the hook wrote on stderr.

The VM's ``virtuned`` custom property says what to compile, in fields separated by
``|`` (oVirt keeps a VM's custom properties as ``name=value;name=value``, so a value
never holds a ``;``)::

    profiles=site-nfv,server|params={"queues": 2}|traits=pvpanic|traits=vmcoreinfo

``profiles=`` names profiles (comma-separated), ``params=`` is a JSON object of param
values (as ``--set`` gives them), and each ``traits=`` is a trait statement; each field
at most once but ``traits=``. Diagnostics name the property and the column in it:
``virtuned:1:32: error: ...``.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile

from virtuned import engines
from virtuned.diagnostics import (CLI_OPTIONS, Sources, Span, VirtunedError, error,
                                  render)

PROPERTY = "virtuned"  # the custom property, and how diagnostics name it
DOMAIN = "<domain>"
FIELDS = ("profiles", "params", "traits")
# VDSM's return codes (lib/vdsm/hook/hooking.py): 2 is a failure that stops the
# hooks after this one, and the VM does not start.
FAILED = 2


def before_vm_start(environment=os.environ) -> int:
    """Rewrite ``$_hook_domxml`` as the ``virtuned`` property asks; the exit code."""
    sources = Sources()
    value = environment.get(PROPERTY, "")
    try:
        request = hook_request(value)
        if request is None:
            return 0  # nothing asked: the file is left as it is
        path = environment.get("_hook_domxml")
        if not path:
            print("_hook_domxml: error: not set: VDSM names the domain XML file in it; "
                  "is this running as a before_vm_start hook?", file=sys.stderr)
            return FAILED
        with open(path, "rb") as file:
            domain = file.read()
        result = engines.compile_request(domain, request, domain_name=DOMAIN,
                                         sources=sources)
        _write_atomically(path, result.xml.encode("utf-8"))
    except VirtunedError as exc:
        _report(exc.diagnostics, sources, value)
        return FAILED
    except OSError as exc:
        print(f"{exc.filename or '_hook_domxml'}: error: {exc.strerror or exc}",
              file=sys.stderr)
        return FAILED
    _report(result.warnings, sources, value)
    return 0


def _report(diagnostics, sources: Sources, value: str) -> None:
    # The property itself for the context lines: the compile saw its traits alone.
    sources.add(PROPERTY, value)
    for diagnostic in diagnostics:
        print(render(diagnostic, sources), file=sys.stderr)


def hook_request(value: str):
    """The request of a ``virtuned`` property value (None when blank)."""
    if not value.strip():
        return None
    found: dict[str, engines.Text] = {}
    statements = []
    for key, start, end in _fields(value):
        text = engines.Text(PROPERTY, value[start:end], col=start + 1)
        if key == "traits":
            statements.append((start, end))
        elif key in found:
            raise error(Span(PROPERTY, 1, start - len(key)), f"'{key}=' is given twice")
        found[key] = text
    settings, option_names = (), CLI_OPTIONS
    if "params" in found:
        settings, option_names = engines.params(found["params"])
    profiles = engines.profile_names(found["profiles"]) if "profiles" in found else ()
    traits = engines.Text(PROPERTY, _trait_text(value, statements)) if statements else None
    return engines.HookRequest(profiles, traits, settings, option_names)


def _fields(value: str):
    """(key, start, end) of each field: the value of ``key=`` is value[start:end]."""
    at = 0
    while True:
        while at < len(value) and value[at] == " ":
            at += 1
        key, equals, _ = value[at:].partition("=")
        if not equals or key.strip() not in FIELDS:
            raise error(Span(PROPERTY, 1, at + 1), "expected 'profiles=', 'params=' or "
                        "'traits=' here",
                        hint='fields are separated by "|": profiles=site-nfv|'
                             'params={"queues": 2}|traits=pvpanic')
        key = key.strip()
        start = at + len(value[at:].partition("=")[0]) + 1
        end = _field_end(value, start, key)
        yield key, start, end
        if end == len(value):
            return
        at = end + 1


def _field_end(value: str, start: int, key: str) -> int:
    """Where a field's value ends: at the next ``|`` (after a JSON object, for
    params, whose strings may hold one), or at the end."""
    if key == "params":
        try:
            _, start = json.JSONDecoder().raw_decode(value, _skip_blanks(value, start))
        except ValueError:
            pass  # engines.params says what is wrong, and where
    bar = value.find("|", start)
    return len(value) if bar < 0 else bar


def _skip_blanks(value: str, at: int) -> int:
    while at < len(value) and value[at] == " ":
        at += 1
    return at


def _trait_text(value: str, statements) -> str:
    """The trait statements as one line of trait text, each at its column in the
    property (the rest blanked, a ';' ending each), so diagnostics point into it."""
    line = [" "] * len(value)
    for start, end in statements:
        line[start:end] = value[start:end]
        if end < len(value):
            line[end] = ";"
    return "".join(line)


def _write_atomically(path: str, data: bytes) -> None:
    """Replace the file in one step, keeping its mode: VDSM reads it whole or the
    old one, never half of the new."""
    directory = os.path.dirname(os.path.abspath(path))
    mode = os.stat(path).st_mode & 0o7777
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=".virtuned-")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
