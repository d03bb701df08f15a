"""A live host, read through libvirt (``--connect URI``): the host snapshot
(facts/snapshot.py) of what is there now, and the domain capabilities of a guest's
platform.

What is read, each with its libvirt call:
- the host's NUMA nodes, CPUs and hugepage pools: virConnectGetCapabilities;
- free memory and free pages per node: virNodeGetCellsFreeMemory,
  virNodeGetFreePages (the test driver tells neither; the snapshot says so);
- the other guests that run now or start with the host (virConnectListAllDomains,
  virDomainGetAutostart): their definitions (virDomainGetXMLDesc, the live one of a
  running guest), whose <cputune> pins, <vcpu cpuset>, <numatune> and
  <memoryBacking> say what they hold;
- the hypervisor's capabilities for the guest's arch, machine and domain type
  (virConnectGetDomainCapabilities), so --domcaps is not needed.

Nothing is changed through the connection. It is opened read-write when the user
may (libvirt refuses domain capabilities to read-only connections), else read-only
(then the domain capabilities are not checked, and a warning says so).
Every call has a deadline (``DEADLINE`` seconds): a call that does not answer by then
is an error (exit 2), and the process does not wait for it. Remote URIs
(``qemu+ssh://``) are kept alive by libvirt's keepalive on top (a probe every 5
seconds, the connection dropped after 3 unanswered), which runs on the event loop
started here; ssh must not prompt (keys or an agent). libvirt's Python binding is an
optional extra: ``pip install 'virtuned[libvirt]'``.
"""

from __future__ import annotations

import threading

from virtuned import domain
from virtuned.diagnostics import Diagnostic, Span, VirtunedError, error
from virtuned.facts import domcaps, snapshot
from virtuned.facts import host as hosts
from virtuned.values import format_cpulist, kib, parse_cpulist

DEADLINE = 30.0  # seconds, for each libvirt call
KEEPALIVE = (5, 3)  # seconds between probes, unanswered probes before giving up
OPTION = "--connect"

_started = threading.Lock()
_loop: list = []  # the event loop thread, once started


def _binding():
    """libvirt's Python binding, or an input error saying how to install it."""
    try:
        import libvirt
    except ImportError as exc:
        raise _error(f"reading a live host needs libvirt's Python binding ({exc}); "
                     "install it with: pip install 'virtuned[libvirt]'") from None
    with _started:
        if not _loop:
            # libvirt's own messages go to stderr unless a handler takes them: ours
            # says what failed, once.
            libvirt.registerErrorHandler(lambda _context, _error: None, None)
            # An event loop: the embedded QEMU driver needs one, and keepalive runs on it.
            libvirt.virEventRegisterDefaultImpl()
            thread = threading.Thread(target=_run_events, args=(libvirt,), daemon=True,
                                      name="libvirt events")
            thread.start()
            _loop.append(thread)
    return libvirt


def _run_events(libvirt) -> None:
    while True:
        libvirt.virEventRunDefaultImpl()


def _error(message: str, hint: str | None = None) -> VirtunedError:
    return error(Span(OPTION, 1, 1), message, hint=hint)


class Live:
    """An open read-only connection to ``uri``; ``with`` closes it."""

    def __init__(self, uri: str, deadline: float = DEADLINE):
        self.uri, self.deadline = uri, deadline
        self.libvirt = _binding()
        try:  # domain capabilities are refused to read-only connections
            self.conn = self._call(self.libvirt.open, uri, what="cannot connect")
        except VirtunedError as refused:
            if "no answer from libvirt" in refused.diagnostics[0].message:
                raise
            try:  # what an unprivileged user may still read (qemu:///system)
                self.conn = self._call(self.libvirt.openReadOnly, uri, what="read-only")
            except VirtunedError:
                raise refused from None
        try:
            self.conn.setKeepAlive(*KEEPALIVE)
        except self.libvirt.libvirtError:
            pass  # local drivers have no keepalive, and need none

    def __enter__(self) -> Live:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        try:
            self._call(self.conn.close, what="close")
        except VirtunedError:
            pass  # nothing more is asked of it

    def _call(self, function, *args, what: str):
        """``function(*args)`` within the deadline; libvirt's errors and a missed
        deadline are input errors naming the URI. Each call runs on a daemon thread
        of its own: one that misses its deadline is left behind, and keeps neither
        the caller nor the end of the process waiting."""
        outcome: list = []

        def call() -> None:
            try:
                outcome.append((True, function(*args)))
            except BaseException as exc:  # noqa: BLE001  (handed to the caller)
                outcome.append((False, exc))

        thread = threading.Thread(target=call, daemon=True, name=f"libvirt {what}")
        thread.start()
        thread.join(self.deadline)
        if not outcome:
            raise _error(f"{self.uri}: {what}: no answer from libvirt within "
                         f"{self.deadline:g} seconds")
        ok, value = outcome[0]
        if ok:
            return value
        if isinstance(value, self.libvirt.libvirtError):
            raise _error(f"{self.uri}: {what}: {_message(value)}") from None
        raise value

    def _optional(self, function, *args, what: str):
        """A call some drivers do not implement: None when it fails."""
        try:
            return self._call(function, *args, what=what)
        except VirtunedError as exc:
            if "no answer from libvirt" in exc.diagnostics[0].message:
                raise
            return None

    # ------------------------------------------------------------ the snapshot

    def capabilities(self) -> str:
        return self._call(self.conn.getCapabilities, what="capabilities")

    def snapshot(self) -> dict:
        """The host snapshot document (facts/snapshot.py, virtuned/host.schema.json)."""
        caps_xml = self.capabilities()
        self.driver = self._optional(self.conn.getType, what="driver")
        host = hosts.parse(caps_xml, f"{self.uri} capabilities")
        nodes = [self._node(cell) for cell in host.cells]
        return {
            "format": snapshot.FORMAT,
            "version": snapshot.VERSION,
            "uri": self._optional(self.conn.getURI, what="uri") or self.uri,
            "hostname": self._optional(self.conn.getHostname, what="hostname"),
            "nodes": nodes,
            "guests": self._guests(),
            "domcaps": self._all_domcaps(caps_xml),
        }

    def _node(self, cell) -> dict:
        # libvirt 9's test driver answers its cells' totals in KiB where the API
        # says bytes: what is free there is not known.
        memory = None if self.driver == "TEST" else self._optional(
            self.conn.getCellsFreeMemory, cell.id, 1, what="free memory")
        sizes = [size for size, _ in cell.pages]
        free = self._optional(self.conn.getFreePages, sizes, cell.id, 1, what="free pages")
        free = (free or {}).get(cell.id, {})
        return {
            "id": cell.id,
            "memory_kib": cell.memory_kib,
            "free_memory_kib": memory[0] // 1024 if memory else None,
            "pages": [{"size_kib": size, "total": total, "free": free.get(size)}
                      for size, total in cell.pages],
            "distances": [{"node": node, "value": value} for node, value in cell.distances],
            "cpus": [{"id": cpu.id, "socket": cpu.socket, "die": cpu.die, "core": cpu.core,
                      "siblings": format_cpulist(cpu.siblings)} for cpu in cell.cpus],
        }

    def _guests(self) -> list[dict]:
        """The guests that run now, or start with the host: what they hold."""
        domains = self._call(self.conn.listAllDomains, 0, what="list guests")
        guests = []
        for dom in domains:
            running = bool(self._optional(dom.isActive, what="guest state"))
            if not running and not self._optional(dom.autostart, what="autostart"):
                continue
            name = self._call(dom.name, what="guest name")
            xml = self._optional(dom.XMLDesc, 0, what=f"guest {name}")
            if xml is None:  # one undefined meanwhile holds nothing
                continue
            try:
                held = holdings(xml, name)
            except (ValueError, TypeError, AttributeError) as exc:
                raise _error(f"{self.uri}: guest {name}: its definition cannot be read "
                             f"({exc})") from None
            guests.append({"name": name, "running": running,
                           "autostart": not running or
                           bool(self._optional(dom.autostart, what="autostart")), **held})
        return sorted(guests, key=lambda guest: guest["name"])

    # ------------------------------------------------------------ domcaps

    def domcaps_xml(self, arch: str, machine: str | None, virt_type: str) -> str:
        return self._call(self.conn.getDomainCapabilities, None, arch, machine,
                          virt_type, 0, what=f"domain capabilities of {virt_type} "
                          f"{arch} {machine or ''}".rstrip())

    def _all_domcaps(self, caps_xml: str) -> list[dict]:
        """The domain capabilities of the host's own arch: of each domain type it
        offers, for q35 and pc on x86 (each family's newest machine), else the
        default machine; none where the driver has none."""
        from lxml import etree

        root = etree.fromstring(caps_xml.encode(), etree.XMLParser(
            resolve_entities=False, no_network=True))
        arch = root.findtext("host/cpu/arch")
        types = sorted({d.get("type") for guest in root.iterfind("guest")
                        for a in guest.iterfind("arch") if a.get("name") == arch
                        for d in a.iterfind("domain")} - {None})
        machines = ["q35", "pc"] if arch in ("x86_64", "i686") else [None]
        entries = []
        for virt_type in types:
            for machine in machines:
                try:
                    xml = self.domcaps_xml(arch, machine, virt_type)
                except VirtunedError as exc:
                    if "no answer from libvirt" in exc.diagnostics[0].message:
                        raise
                    continue
                stated = etree.fromstring(xml.encode(), etree.XMLParser(
                    resolve_entities=False, no_network=True)).findtext("machine")
                entries.append({"arch": arch, "virt_type": virt_type,
                                "machine": stated or machine, "xml": xml})
        return entries

    def domcaps_for(self, platform):
        """(DomainCaps of the guest's platform, None), or (None, a warning) when the
        host has none for it (a kvm guest on a host without KVM)."""
        name = f"{self.uri} domcapabilities"
        try:
            xml = self.domcaps_xml(platform.arch, platform.machine, platform.domain_type)
        except VirtunedError as exc:
            if "no answer from libvirt" in exc.diagnostics[0].message:
                raise
            return None, Diagnostic("warning", f"{exc.diagnostics[0].message}; nothing "
                                    "was checked against the hypervisor's capabilities",
                                    Span(OPTION, 1, 1))
        return domcaps.parse(xml, name), None


def _message(exc) -> str:
    """libvirt's message without its own prefixes."""
    return (exc.get_error_message() or str(exc)).strip()


def holdings(xml: str, name: str) -> dict:
    """What a guest's definition holds: its pins (vCPUs, emulator, I/O threads, the
    <vcpu cpuset> of vCPUs without a pin) and the memory of each of its cells with
    the host nodes it is bound to and its page size (None: not hugepages)."""
    root = domain.parse(xml, f"<guest {name}>").getroot()
    tune = root.find("cputune")
    vcpus = {pin.get("vcpu"): pin.get("cpuset") for pin in
             (tune.iterfind("vcpupin") if tune is not None else ())}
    iothreads = {pin.get("iothread"): pin.get("cpuset") for pin in
                 (tune.iterfind("iothreadpin") if tune is not None else ())}
    emulator = tune.find("emulatorpin") if tune is not None else None
    vcpu = root.find("vcpu")
    numatune = root.find("numatune")
    bound = numatune.find("memory") if numatune is not None else None
    memnodes = {m.get("cellid"): m.get("nodeset") for m in
                (numatune.iterfind("memnode") if numatune is not None else ())}
    backing = root.find("memoryBacking/hugepages")
    pages = [(page.get("nodeset"), kib(page.get("size"), page.get("unit") or "KiB"))
             for page in (backing.iterfind("page") if backing is not None else ())]

    def page_of(cell: str | None) -> int | None:
        if backing is None:
            return None
        for nodeset, size in pages:
            if nodeset is None or (cell is not None and int(cell) in parse_cpulist(nodeset)):
                return size
        return 2048  # libvirt's default: the host's default hugepage size (x86: 2MiB)

    cells = root.findall("cpu/numa/cell")
    if cells:
        parts = [(c.get("id"), kib(c.get("memory"), c.get("unit") or "KiB")) for c in cells]
    else:
        memory = root.find("memory")
        parts = [(None, kib(memory.text.strip(), memory.get("unit") or "KiB"))] \
            if memory is not None and memory.text else []
    nodeset = bound.get("nodeset") if bound is not None else None
    return {
        "vcpus": {key: value for key, value in sorted(vcpus.items(), key=_number)
                  if key is not None and value},
        "vcpu_cpuset": vcpu.get("cpuset") if vcpu is not None else None,
        "emulator": emulator.get("cpuset") if emulator is not None else None,
        "iothreads": {key: value for key, value in sorted(iothreads.items(), key=_number)
                      if key is not None and value},
        "memory": [{"nodes": memnodes.get(cell, nodeset), "kib": size,
                    "page_kib": page_of(cell)} for cell, size in parts],
    }


def _number(item) -> int:
    key = item[0] or ""
    return int(key) if key.isdigit() else -1
