"""The facts ``when`` conditions test, and the tests themselves."""

from __future__ import annotations

from typing import TYPE_CHECKING

from virtuned import values
from virtuned.diagnostics import Span, did_you_mean, error
from virtuned.facts.platform import Stated, machine_family, os_facts, platform_of
from virtuned.syntax import ast

if TYPE_CHECKING:  # a name for annotations; the module loads only with a host
    from virtuned.facts.host import HostSummary

FACTS = ("machine", "arch", "type", "os", "host")


def condition_facts(stated: Stated, decided, host: HostSummary | None = None,
                    preferred=None) -> dict:
    """What ``when`` blocks may test: the platform, the guest OS, the host (when
    given), plus any other decided facts; and, for traits that expand, the memory
    and vCPUs the input states."""
    platform = platform_of(stated, decided, preferred)
    return {**decided, **os_facts(stated, decided), "machine": platform.machine,
            "arch": platform.arch, "type": platform.domain_type, "host": host,
            "input memory_kib": stated.memory_kib, "input vcpus": stated.vcpus}


def fact_equals(facts, fact: str, words: list[str], test: ast.FactTest) -> bool:
    if len(words) != 1:
        raise error(test.span, f"'{fact}' takes one value, as in 'when {fact} "
                    f"{_EXAMPLES[fact]}'")
    wanted = words[0]
    _check_fact_value(fact, wanted, test.items[-1].span)
    actual = facts.get(fact)
    if actual is None:
        return False
    if fact == "machine":
        return wanted == actual or wanted == machine_family(actual)
    return wanted == actual


def host_fact(host, words: list[str], test: ast.FactTest) -> bool:
    """``host`` (a host is given), ``host smt``, ``host numa`` (more than one node),
    ``host nodes N``, ``host hugepages SIZE`` (a pool of that size with free pages):
    all false when no host is given (``plan``'s phase one)."""
    test_name, arguments = (words[0], words[1:]) if words else ("", [])
    takes = {"": 0, "smt": 0, "numa": 0, "nodes": 1, "hugepages": 1}
    if test_name not in takes or len(arguments) != takes[test_name]:
        raise error(test.span, f"unknown host fact 'host {' '.join(words)}'",
                    hint="host facts: 'host', 'host smt', 'host numa', 'host nodes N', "
                         "'host hugepages SIZE'")
    try:
        argument = (values.parse_int(arguments[0]) if test_name == "nodes" else
                    values.parse_size(arguments[0]).kib if arguments else None)
    except ValueError as exc:
        raise error(test.items[-1].span, str(exc)) from None
    if host is None:
        return False
    return {"": True, "smt": host.smt, "numa": host.nodes > 1,
            "nodes": host.nodes == argument,
            "hugepages": argument in host.page_pools}[test_name]


_EXAMPLES = {"machine": "q35", "arch": "x86_64", "type": "kvm", "os": "win11",
             "os family": "windows"}
_KNOWN_VALUES = {
    "arch": ("x86_64", "i686", "aarch64", "armv7l", "ppc64", "ppc64le", "s390x",
             "riscv64", "loongarch64"),
    "type": ("kvm", "qemu", "xen", "lxc", "hvf", "bhyve", "vmware", "hyperv", "vz",
             "openvz", "test"),
    "os family": ("linux", "windows", "bsd", "solaris", "darwin", "other"),
}


def _check_fact_value(fact: str, value: str, span: Span) -> None:
    """A value that no domain can have makes a condition that can never hold."""
    if fact == "machine":
        if value in ("q35", "pc") or value.startswith(("pc-", "q35-")):
            return
        known: tuple[str, ...] = ("q35", "pc")
    else:
        known = _KNOWN_VALUES.get(fact, ())
        if not known or value in known:
            return
    raise error(span, f"'{fact} {value}' can never hold",
                hint=did_you_mean(value, known) or f"known values: {', '.join(known)}")
