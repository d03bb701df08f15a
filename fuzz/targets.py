"""The fuzz targets: each takes the bytes a fuzzer made and feeds them to one reader
of untrusted input. A target returns when virtuned answered as it documents: an
output, or a VirtunedError (exit 2 or 3; for the HTTP request model, its Problem, a
4xx). Any other exception escapes, and the fuzzer reports it as a crash.

    python -m fuzz.run TARGET [SECONDS]    # coverage-guided, with atheris
    scripts/fuzz.sh [SECONDS]              # every target, SECONDS each
"""

from __future__ import annotations

from pathlib import Path

from virtuned import api, values
from virtuned.diagnostics import HTTP_OPTIONS, VirtunedError

ROOT = Path(__file__).resolve().parent.parent
HOST = (ROOT / "examples/hosts/two-node-smt.xml").read_bytes()
# Traits that make each reader's facts matter: placement reads the host, the
# hypervisor traits read the domain capabilities.
PLACING = ("dedicated cpus threads isolate\nemulator threads isolated\nhugepages 2MiB",
           "guest numa nodes 2\nshared cpus", "place on host node 1\niothreads 2")
DEVICES = ("tpm\nvideo virtio\ndisk bus scsi", "firmware efi secure boot",
           "memory encryption sev", "watchdog\nrng\nconsole serial", "")


def _text(data: bytes) -> str:
    """Bytes as the CLI would see them in argv: UTF-8, undecodable bytes kept as
    surrogates (os.fsdecode)."""
    return data.decode("utf-8", "surrogateescape")


def _pick(data: bytes, choices: tuple):
    """A choice made from the input's length, which every mutation may change (its
    bytes are left whole: a seed document stays a document), and the input."""
    return choices[len(data) % len(choices)], data


def _answered(call, *args, **kwargs) -> None:
    try:
        call(*args, **kwargs)
    except VirtunedError:
        pass


def dsl(data: bytes) -> None:
    """Trait text: the parser, the resolver, the planner and every emitter; what
    explain says of it, as text and JSON."""
    _answered(api.compile, traits=(_text(data),))
    _answered(_explained, _text(data))


def _explained(text: str) -> None:
    result = api.explain(traits=(text,))
    api.explanation_text(result)
    api.explanation_json(result)


def domain(data: bytes) -> None:
    """Domain XML, compiled as it is and with traits that edit it."""
    traits, data = _pick(data, ("",) + DEVICES + PLACING)
    _answered(api.compile, data, traits=(traits,) if traits else ())
    _answered(api.plan, data, traits=(traits,) if traits else ())


def host(data: bytes) -> None:
    """Host capabilities, with placing traits and reserved CPUs."""
    traits, data = _pick(data, PLACING)
    reserved, data = _pick(data[:-1], (None, "0", "0-1,^1", "0-3"))
    _answered(api.compile, traits=(traits,), host=data, reserved_cpus=reserved)
    _answered(api.fit, traits=(traits,), hosts=(data, HOST))


def domcaps(data: bytes) -> None:
    """Domain capabilities, with the traits that ask them."""
    traits, data = _pick(data, DEVICES + ("vcpus 300", "cpu mode host-model"))
    _answered(api.compile, traits=(traits,) if traits else (), domcaps=data)


def cpulist(data: bytes) -> None:
    """CPU lists: the parser itself, then as --reserved-cpus on a host."""
    text = _text(data)
    try:
        cpus = values.parse_cpulist(text)
        assert values.parse_cpulist(values.format_cpulist(cpus)) == cpus if cpus else True
    except ValueError:
        pass
    _answered(api.compile, traits=("dedicated cpus",), host=HOST, reserved_cpus=text)


def http(data: bytes) -> None:
    """An HTTP request body: the contract's decoding, then the compile it asks for."""
    from virtuned.server import contract
    from virtuned.server.validation import Problem, decode

    try:
        body = decode(data, contract.CompileRequest)
    except Problem:
        return
    _answered(api.compile, body.domain, traits=tuple(body.traits or ()),
              settings=tuple((name, str(value)) for name, value in
                             (body.params or {}).items()),
              name=body.name, domcaps=body.domcaps, host=body.host,
              device_nodes=tuple((body.device_nodes or {}).items()),
              reserved_cpus=body.reserved_cpus if body.host else None,
              allocated_cpus=body.allocated_cpus if body.host else None,
              option_names=HTTP_OPTIONS)


TARGETS = {"dsl": dsl, "domain": domain, "host": host, "domcaps": domcaps,
           "cpulist": cpulist, "http": http}

# Where each target's seeds come from (globs under the repository).
SEEDS = {
    "dsl": ("traits/*.vt", "tests/golden/*/*/traits.vt", "examples/profiles/*.vt"),
    "domain": ("examples/domains/*.xml", "tests/golden/*/*/input.xml"),
    "host": ("examples/hosts/*.xml",),
    "domcaps": ("tests/domcaps/*.xml",),
    "cpulist": (),
    "http": (),
}
# Seeds written here, for targets whose inputs have no file of their own.
INLINE_SEEDS = {
    "cpulist": (b"0-3,8,^2", b"0", b"0-15,^3-4", b"1-1,2-2"),
    "http": (b'{"traits": ["video qxl"], "name": "web"}',
             b'{"domain": "<domain type=\\"kvm\\"><name>a</name></domain>", '
             b'"traits": ["dedicated cpus"], "host": null, "params": {"q": 4}}',
             b'{"traits": ["vcpus 4\\nnetwork queues auto"], "reserved_cpus": "0-1"}'),
}
