"""Guest CPUs and the host CPUs they run on: dedicated or shared host CPUs, the
emulator and I/O threads, real-time scheduling, the guest CPU's topology and mode.

Each trait says what it needs of the planner (``needs``); the placement on the host
(``--host``) is decided once for all of them (virtuned/plan/placement.py) and written by
virtuned/emit/pinning.py. Without ``--host`` only what holds on every host is written.
"""

from __future__ import annotations

from virtuned.emit.kit import (Add, CpuPolicy, EmulatorPolicy, Ensure, IoThreads,
                              Realtime, SetAttr, SetText, Topology, VcpuCount, completion,
                              conflict, devices, el, element_span, format_cpulist,
                              pinning, trait)
from virtuned.vocab.disk import disk_bus, stated_disks

_CPUS_KEY = {"key": lambda args: ("host cpus",)}


@trait("dedicated cpus [threads {threads:prefer|isolate|require}]", version=1, rank=310,
       example="dedicated cpus threads isolate",
       needs=lambda args: CpuPolicy(True, args.get("threads") or "prefer"), **_CPUS_KEY)
def dedicated_cpus(ctx, threads=None):
    """One host CPU of its own for each vCPU, never shared with another vCPU.

    With --host, each vCPU is pinned (<cputune><vcpupin>) to a host CPU that is not
    reserved (--reserved-cpus) and inside --allocated-cpus, all on one host node
    unless the guest has NUMA cells ('guest numa nodes N'), and the guest's memory
    is bound to that node (<numatune>). threads prefer (the default): sibling
    threads are used side by side; isolate: each vCPU has a whole core, its sibling
    threads stay unused; require: vCPUs in pairs (or the host's threads per core) on
    sibling threads, with a guest CPU topology that says so. Without --host nothing
    host-specific is written ('virtuned plan' reports what a host must offer).
    """
    return pinning.edits(ctx) + _require_topology(ctx, threads)


def _require_topology(ctx, threads) -> list:
    """threads require: the guest sees its vCPU pairs as sibling threads (unless
    'cpu topology' says how, which the planner made agree)."""
    if threads != "require" or ctx.plan.asker(Topology) is not None:
        return []
    wanted = ctx.plan.requirements
    per_core = wanted.threads_per_core
    # A socket per guest cell when the cells are equal; else one socket (a socket
    # split over two cells is what QEMU warns about).
    equal = len({len(cell.vcpus) for cell in wanted.cells}) == 1
    sockets = len(wanted.cells) if equal else 1
    return _topology(ctx, sockets, wanted.vcpus // (sockets * per_core), per_core)


@trait("shared cpus", version=1, rank=320, example="shared cpus",
       needs=lambda args: CpuPolicy(False), **_CPUS_KEY)
def shared_cpus(ctx):
    """vCPUs float over the host CPUs the guest may use, shared with other guests.

    With --host: the host's CPUs that are not reserved (--reserved-cpus) and inside
    --allocated-cpus, of the node or nodes the guest is placed on ('place on host
    node N', 'guest numa nodes N'), or of the whole host when none is asked for
    (<vcpu cpuset>, <cputune>).
    """
    return pinning.edits(ctx)


@trait("emulator threads {policy:isolated|shared}", version=1, rank=330,
       example="emulator threads isolated",
       needs=lambda args: EmulatorPolicy(args["policy"]))
def emulator_threads(ctx, policy):
    """Where QEMU's own threads run: on a host CPU of their own, or the vCPUs'.

    isolated: one more host CPU of their own (a whole core under 'threads
    isolate'); shared: the vCPUs' host CPUs. Written as <cputune><emulatorpin>
    when --host is given.
    """
    return pinning.edits(ctx)


@trait("iothreads {count:int 1..256}", version=1, rank=340, example="iothreads 2",
       needs=lambda args: IoThreads(args["count"]))
def iothreads(ctx, count):
    """I/O threads for disks (<iothreads>), pinned with the emulator when placed.

    1 to 256: a virtio disk runs on one I/O thread, and more threads than any
    guest has disks only add host threads and pinning.

    With --host they run on the emulator's host CPUs (<cputune><iothreadpin>): its
    isolated CPU under 'emulator threads isolated', else the vCPUs' CPUs.
    """
    return pinning.placed(ctx, "", el("iothreads", text=str(count))) + pinning.edits(ctx)


@trait("realtime", version=1, rank=350, example="dedicated cpus\nrealtime",
       needs=lambda args: Realtime())
def realtime(ctx):
    """Real-time scheduling (SCHED_FIFO) of the dedicated vCPUs.

    <cputune><vcpusched scheduler='fifo' priority='1'> for every vCPU; needs
    'dedicated cpus' (a real-time vCPU must not share its host CPU). Pair it with
    'locked memory' so the guest's memory is never swapped.
    """
    vcpus = format_cpulist(range(ctx.plan.requirements.vcpus))
    return pinning.placed_all(ctx, "cputune", "vcpusched", [el(
        "vcpusched", vcpus=vcpus, scheduler="fifo", priority="1")], "vcpus")


@trait("cpu topology sockets {sockets:int 1..4096} cores {cores:int 1..4096} "
       "threads {threads:int 1..4096}", version=1, rank=360,
       example="cpu topology sockets 1 cores 2 threads 1",
       needs=lambda args: Topology(args["sockets"], args["cores"], args["threads"]))
def cpu_topology(ctx, sockets, cores, threads):
    """The guest CPU topology (<cpu><topology>); its product is the vCPU count.

    A domain without <vcpu> gets sockets × cores × threads vCPUs; one whose <vcpu>
    differs is a conflict. The product is held to the machine's vCPU limit ('vcpus').
    """
    vcpus = ctx.plan.requirements.vcpus
    if sockets * cores * threads != vcpus:
        element = ctx.find("vcpu")
        raise conflict(ctx.origin, f"{sockets * cores * threads} vCPUs",
                       element_span(element, ctx.filename) if element is not None else None,
                       f"the guest has {vcpus}", hint="make <vcpu> the product of "
                       "sockets, cores and threads")
    return _topology(ctx, sockets, cores, threads)


def _topology(ctx, sockets: int, cores: int, threads: int) -> list:
    return pinning.placed(ctx, "cpu", el("topology", sockets=str(sockets), dies="1",
                                         cores=str(cores), threads=str(threads)))


@trait("cpu mode {mode:host-passthrough|host-model|maximum}", version=1, rank=370,
       example="cpu mode host-passthrough")
def cpu_mode(ctx, mode):
    """The guest CPU model (<cpu mode>): the host's own, the closest named, or all.

    host-passthrough: the host's own CPU (fastest, no migration to other CPUs);
    host-model: the closest named model with the host's features; maximum: all
    that QEMU can offer.
    """
    return _cpu_attribute(ctx, "mode", mode)


def _cpu_attribute(ctx, name: str, value: str) -> list:
    cpu = ctx.find("cpu")
    if cpu is None:
        return [Ensure("cpu", name, value, ctx.origin)]
    return [SetAttr(cpu, name, value, ctx.origin)]


# QEMU's Nehalem is x86-64-v2 (SSE4.2, SSSE3, POPCNT, CMPXCHG16B), which RHEL 9 needs;
# it is a named model, so a TCG guest's CPU is the same whichever QEMU runs it.
TCG_MODEL = "Nehalem"


@completion("the guest CPU model", rank=20)
def guest_cpu_model(ctx):
    """A CPU a modern guest boots on, where neither the input nor 'cpu mode' names one.

    KVM: the host's own CPU (``<cpu mode='host-passthrough' check='none'
    migratable='on'>``, as virt-install chooses; 'cpu mode host-model' is the choice
    for fleets that migrate). TCG (``type='qemu'``): QEMU's Nehalem, an x86-64-v2
    model, where QEMU's own default (qemu64) lacks SSE4.2 and RHEL 9 does not boot.
    """
    cpu = ctx.find("cpu")
    stated = cpu is not None and (cpu.get("mode") or ctx.find_in(cpu, "model") is not None)
    if stated or ctx.of(cpu_mode) or not ctx.platform.x86:
        return []
    if ctx.platform.domain_type == "kvm":
        wanted = {"mode": "host-passthrough", "check": "none", "migratable": "on"}
    elif ctx.platform.domain_type == "qemu":
        wanted = {"mode": "custom", "match": "exact", "check": "none"}
    else:
        return []
    edits = [SetAttr(cpu, name, value, ctx.origin) if cpu is not None
             else Ensure("cpu", name, value, ctx.origin) for name, value in wanted.items()]
    if wanted["mode"] == "custom":
        edits.append(Add("cpu", el("model", text=TCG_MODEL, fallback="forbid"), ctx.origin,
                         identity=("model",)))
    return edits


@trait("vcpus {count:int 1..4096}", version=1, rank=380, example="vcpus 2",
       needs=lambda args: VcpuCount(args["count"]))
def vcpus(ctx, count):
    """The number of vCPUs (<vcpu>); an input that states another is a conflict.

    1 to 4096 (QEMU's most, pc-q35-9.0), and no more than the machine takes: 255 on
    pc, 288 on pc-q35-7.2 and older, 1024 on pc-q35-8.x, or --domcaps' <vcpu max>.
    """
    element = ctx.find("vcpu")
    if element is not None and (element.text or "").strip() != str(count):
        # --override: what the input pins of vCPUs it loses goes ('realtime' says
        # how its vCPUs are scheduled itself)
        return [SetText(element, str(count), ctx.origin)] + pinning.beyond(
            ctx, count, schedulers=not ctx.of(realtime))
    return []


@completion("the dedicated-CPU hint", rank=80, only_with=dedicated_cpus)
def dedicated_cpu_hint(ctx):
    """Under KVM, a guest with dedicated CPUs is told so (``<features><kvm>
    <hint-dedicated state='on'/>``, as Nova and KubeVirt do): its kernel then spins
    instead of halting and skips paravirtual spinlocks, which only cost on a CPU
    nothing else runs on. An input that states the hint keeps its own."""
    if ctx.platform.domain_type != "kvm":
        return []
    hint = el("hint-dedicated", state="on")
    kvm = ctx.find("features/kvm")
    if kvm is None:
        return [Add("features", el("kvm", hint), ctx.origin, identity=("kvm",))]
    if ctx.find_in(kvm, "hint-dedicated") is None:
        return [Add(kvm, hint, ctx.origin, identity=("hint-dedicated",))]
    return []


@completion("the disks' I/O threads", rank=90, only_with=iothreads)
def disk_iothreads(ctx):
    """With 'iothreads N', every virtio disk runs on one of them, spread evenly in
    disk order (KubeVirt's choice): I/O threads no disk uses do nothing. A disk whose
    driver names its I/O thread keeps it."""
    threads = ctx.of(iothreads)[0].kwargs["count"]
    moved = any(t.kwargs["bus"] == "virtio" for t in ctx.of(disk_bus))
    virtio = [disk for disk, device, _, dev, bus in ctx.once(stated_disks)
              if device == "disk" and (moved or _on_virtio(dev, bus))]
    return [edit for index, disk in enumerate(virtio)
            for edit in devices.driver_edits(ctx, disk,
                                             {"iothread": str(index % threads + 1)},
                                             name="qemu")
            if (driver := ctx.find_in(disk, "driver")) is None
            or driver.get("iothread") is None]


def _on_virtio(dev: str | None, bus: str | None) -> bool:
    """Whether a disk's target puts it on the virtio bus: it says so, or it names no
    bus and a vdX name."""
    return bus == "virtio" or (bus is None and (dev or "").startswith("vd"))


@completion("real-time memory and PMU", rank=100, only_with=realtime)
def realtime_tuning(ctx):
    """A real-time guest's memory is not merged with other guests' (KSM would stall
    it: ``<memoryBacking><nosharepages/>``) and it has no virtual PMU (``<features>
    <pmu state='off'/>``, whose exits add latency), as KubeVirt's real-time VMs.
    What the input states of either stays."""
    edits = []
    if ctx.find("features/pmu") is None:
        edits.append(Add("features", el("pmu", state="off"), ctx.origin, identity=("pmu",)))
    if ctx.find("memoryBacking/nosharepages") is None:
        edits.append(Add("memoryBacking", el("nosharepages"), ctx.origin,
                         identity=("nosharepages",)))
    return edits
