"""KubeVirt's hook sidecar: ``onDefineDomain``.

KubeVirt's ``sidecar-shim`` (cmd/sidecars/sidecar_shim.go) looks up an executable
named ``onDefineDomain`` in ``$PATH`` and runs it as::

    onDefineDomain --vmi <VMI as JSON> --domain <domain XML>

(the VMI as Go's ``json.Marshal`` writes it, the domain as virt-launcher's converter
made it); what the executable prints on stdout is the domain virt-launcher defines.
A non-zero exit fails the VM's start; the shim logs what it wrote on stderr, line by
line, in the sidecar container's log.

This hook reads three annotations of the VMI (``spec.template.metadata.annotations``
of a VM): ``virtuned.io/profiles`` (comma-separated profile names),
``virtuned.io/traits`` (trait text) and ``virtuned.io/params`` (a JSON object of
param values, as ``--set`` gives them). A VMI with none of them gets its domain
back byte for byte. KubeVirt's own choices are input, and input wins: its vCPU
pinning (from the pod's cpuset), hugepages and devices are never changed; a trait
that wants otherwise is a conflict and the VM does not start.
"""

from __future__ import annotations

import json
import os
import sys

from virtuned import engines
from virtuned.diagnostics import CLI_OPTIONS, Span, error, render

PROFILES = "virtuned.io/profiles"
TRAITS = "virtuned.io/traits"
PARAMS = "virtuned.io/params"
ANNOTATIONS = (PROFILES, TRAITS, PARAMS)
VMI = "--vmi"  # how diagnostics name the VMI: the shim's option that gives it
DOMAIN = "<domain>"  # ... and the domain XML, whose lines notes point into


def arguments(command) -> None:
    """``virtuned kubevirt on-define-domain --vmi JSON --domain XML``."""
    hooks = command.add_subparsers(dest="hook", required=True, metavar="HOOK")
    hook = hooks.add_parser("on-define-domain",
                            help="the onDefineDomain hook: the domain for a VMI, on stdout")
    hook.add_argument("--vmi", required=True, metavar="JSON",
                      help="the VirtualMachineInstance, as JSON")
    hook.add_argument("--domain", required=True, metavar="XML",
                      help="the domain XML virt-launcher made for it")
    hook.add_argument("--profile-path", action="append", default=[], metavar="DIR",
                      help="another profile directory, searched before the others")


def run(args, sources) -> int:
    # The exact bytes the shim passed (argv is decoded with surrogateescape).
    domain = os.fsencode(args.domain)
    result = on_define_domain(args.vmi, domain, profile_path=tuple(args.profile_path),
                              sources=sources)
    if result is None:
        sys.stdout.buffer.write(domain)
        return 0
    for warning in result.warnings:
        print(render(warning, sources), file=sys.stderr)
    sys.stdout.buffer.write(result.xml.encode("utf-8"))
    return 0


def on_define_domain(vmi_json: str, domain_xml: bytes, *, profile_path=(), sources=None):
    """The compile the VMI's annotations ask for (a ``CompileResult``), or None when
    they ask for nothing."""
    request = hook_request(annotations(vmi_json), sources)
    if request is None:
        return None
    return engines.compile_request(domain_xml, request, domain_name=DOMAIN,
                                   profile_path=profile_path, sources=sources)


def annotations(vmi_json: str) -> dict[str, str]:
    """The VMI's ``metadata.annotations`` (Kubernetes: strings by strings)."""
    try:
        vmi = json.loads(vmi_json)
    except ValueError as exc:
        raise error(Span(VMI, 1, 1), f"not JSON: {exc}") from None
    metadata = vmi.get("metadata") if isinstance(vmi, dict) else None
    if not isinstance(metadata, dict):
        raise error(Span(VMI, 1, 1), "not a VirtualMachineInstance (no 'metadata' object)")
    found = metadata.get("annotations") or {}
    if not isinstance(found, dict):
        raise error(Span(VMI, 1, 1), "'metadata.annotations' is not an object")
    return {name: value for name, value in found.items()
            if name in ANNOTATIONS and isinstance(value, str) and value.strip()}


def hook_request(found: dict[str, str], sources=None):
    """The request the annotations make (None: they make none; a blank one is none)."""
    if not found:
        return None
    texts = {name: engines.Text(name, value) for name, value in found.items()}
    if sources is not None:
        for text in texts.values():
            sources.add(text.name, text.text)
    settings, option_names = (), CLI_OPTIONS
    if PARAMS in texts:
        settings, option_names = engines.params(texts[PARAMS])
    profiles = engines.profile_names(texts[PROFILES]) if PROFILES in texts else ()
    return engines.HookRequest(profiles, texts.get(TRAITS), settings, option_names)

