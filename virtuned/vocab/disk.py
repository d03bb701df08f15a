"""``disk bus BUS``: every disk on one bus, with fitting names and the controllers it
needs; and the model of every SCSI controller, where nothing names one."""

from __future__ import annotations

from virtuned.emit.kit import (Add, ExitCode, Remove, SetAttr, completion, conflict, devices,
                              el, element_span, error,
                              frozen, hypervisor, int_attr, trait)
from virtuned.vocab.guest_os import drives


@frozen
class Bus:
    """How a disk bus names its disks and where libvirt puts them."""

    prefix: str  # target dev prefix: vda, sda, hda
    units_per_controller: int | None  # None: no drive controller (virtio)
    machines: tuple[str, ...] | None = None  # machine families that have it (None: all)


BUSES = {
    "virtio": Bus("vd", None),
    # libvirt maps SATA disk N (from its name) to controller N // 6, unit N % 6.
    "sata": Bus("sd", 6),
    # Units on one virtio-scsi controller; given explicitly, so libvirt's
    # name-derived mapping (7 per controller, then an lsilogic one) never applies.
    "scsi": Bus("sd", 16384),
    # The i440fx PIIX IDE controller: 2 buses x 2 units, and no second controller.
    "ide": Bus("hd", 4, machines=("pc",)),
}


@trait("disk bus {bus:virtio|sata|scsi|ide}", version=1, rank=30,
       example="disk bus virtio")
def disk_bus(ctx, bus):
    """Every disk (not cdroms, floppies or LUNs) on this bus.

    Disks get a target name that fits the bus (vdX, sdX, hdX) and the controllers the
    bus needs are added, reusing existing ones with free slots: a SATA controller has
    6 ports; scsi means one virtio-scsi controller (never libvirt's lsilogic default);
    IDE exists only on the pc machine and has room for 4 devices. A disk whose input
    states another bus is a conflict, and so is an address that does not fit the bus
    (a drive address on virtio, a PCI one on SATA, SCSI or IDE); with --override the
    disk leaves its stated bus with a fitting name and without such an address.
    """
    spec = BUSES[bus]
    platform = ctx.platform
    if spec.machines and platform.family not in spec.machines:
        raise error(ctx.origin.span, f"disk bus {bus}: {platform.describe_machine()} "
                    f"has no {bus.upper()} bus",
                    hint=f"{bus.upper()} needs 'machine " + "' or 'machine ".join(spec.machines)
                    + "'")
    hypervisor.offer(ctx, "devices/disk", "bus", bus, "disk bus")
    edits, renamed = _retarget(ctx, bus, spec)
    if bus == "sata":
        edits += _sata_controllers(ctx, renamed)
    elif bus == "scsi":
        edits += _scsi_controller(ctx, renamed)
    elif bus == "ide":
        edits += _ide_controller(ctx, renamed)
    return edits


def _retarget(ctx, bus, spec):
    """Set the bus on every disk (not cdroms...); rename those whose name does not
    fit it.

    Returns the edits and the disks' new names, in document order.
    """
    edits, names = [], {}
    stated = ctx.once(stated_disks)
    # every name a disk, cdrom... has
    taken = {dev for _, _, target, dev, _ in stated if target is not None}
    for disk, device, target, dev, stated_bus in stated:
        if device != "disk":
            continue
        # A disk the trait moves (a stated bus is otherwise the conflict to report)
        moved = stated_bus is None or (ctx.override and stated_bus != bus)
        if moved:
            edits += _address_edits(ctx, disk, bus)
        if target is None:
            dev = _free_name(spec.prefix, taken)
            taken.add(dev)
            edits.append(Add(disk, el("target", dev=dev, bus=bus), ctx.origin))
            names[disk] = dev
            continue
        edits.append(SetAttr(target, "bus", bus, ctx.origin))
        if moved and not (dev or "").startswith(spec.prefix):
            taken.discard(dev)
            new = _free_name(spec.prefix, taken)
            taken.add(new)
            # The name is only libvirt's hint for the guest; with no bus stated it
            # also implies one, which the trait now states explicitly. A stated bus
            # replaced (--override) takes its name along, listed as replaced too.
            edits.append(SetAttr(target, "dev", new, ctx.origin,
                                 replaces=dev if stated_bus is None else None))
            dev = new
        names[disk] = dev
    return edits, names


def _address_edits(ctx, disk, bus: str) -> list:
    """A disk's stated address must fit its new bus: a SATA, SCSI or IDE disk sits on
    a drive controller (``<address type='drive'>``), a virtio disk never does
    (libvirt refuses either mix). An address that does not fit is the input's
    statement of another bus: a conflict, or with --override removed (and listed)."""
    address = ctx.find_in(disk, "address")
    kind = address.get("type") if address is not None else None
    if kind is None or (kind == "drive") == (bus != "virtio"):
        return []
    if ctx.override and not ctx.origin.soft:
        return [Remove(address, ctx.origin)]
    fits = "a drive address" if bus != "virtio" else "no drive address"
    named = bus if bus == "virtio" else bus.upper()
    raise conflict(ctx.origin, f"the disk on the {named} bus, which takes {fits}",
                   element_span(address, ctx.filename),
                   f"the input gives it <address type='{kind}'>",
                   hint="remove the disk's <address> (libvirt assigns one), or drop "
                        "the trait")


def stated_disks(ctx) -> tuple:
    """Every disk of the input (cdroms, floppies and LUNs too) as the disk traits and
    completions read it, read once per compile (``ctx.once(stated_disks)``): (disk,
    its device kind, its <target>, the target's dev and bus), in document order."""
    found = []
    for disk in ctx.devices_of("disk"):
        target = ctx.find_in(disk, "target")
        dev, bus = (None, None) if target is None else (target.get("dev"), target.get("bus"))
        found.append((disk, disk.get("device", "disk"), target, dev, bus))
    return tuple(found)


def _free_name(prefix: str, taken: set) -> str:
    index = 0
    while (name := devices.disk_name(prefix, index)) in taken:
        index += 1
    return name


def _sata_controllers(ctx, names):
    """One SATA controller for every 6 ports in use, following libvirt's mapping."""
    needed = set()
    for disk, _, _, dev, bus in ctx.once(stated_disks):
        if disk in names or bus == "sata":
            needed.add(_controller_of(disk, names.get(disk) or dev, 6, ctx.filename))
    existing = devices.controller_indexes(ctx, "sata")
    return [devices.controller("sata", index, ctx.origin)
            for index in sorted(needed - set(existing) - {None})]


def _controller_of(disk, dev, units, filename):
    address = disk.find("address[@type='drive']")
    if address is not None:
        return int_attr(address, "controller", 0, filename)
    index = devices.disk_index(dev or "")
    return None if index is None else index // units


def _scsi_controller(ctx, names):
    """Put the converted disks on one virtio-scsi controller, addressed explicitly."""
    controllers = devices.controller_indexes(ctx, "scsi")
    edits = []
    chosen = next((i for i, c in sorted(controllers.items())
                   if c.get("model") == "virtio-scsi"), None)
    if chosen is None:
        unset = next((i for i, c in sorted(controllers.items()) if c.get("model") is None),
                     None)
        if unset is not None:
            chosen = unset
            edits.append(SetAttr(controllers[unset], "model", "virtio-scsi", ctx.origin))
        else:
            chosen = next(i for i in range(len(controllers) + 1) if i not in controllers)
            edits.append(devices.controller("scsi", chosen, ctx.origin,
                                            model="virtio-scsi"))
    used = _scsi_units_in_use(ctx, chosen, names)
    unit = 0
    for disk in names:
        if ctx.find_in(disk, "address") is not None:
            continue
        while unit in used:
            unit += 1
        used.add(unit)
        edits.append(Add(disk, el("address", type_="drive", controller=str(chosen),
                                  bus="0", target="0", unit=str(unit)), ctx.origin))
    return edits


def _scsi_units_in_use(ctx, controller, names) -> set[int]:
    """Units on ``controller`` already taken: by SCSI devices the trait does not move,
    and by moved disks that keep the drive address the input gives them."""
    used = set()
    for disk, _, _, dev, bus in ctx.once(stated_disks):
        address = disk.find("address[@type='drive']")
        moved = disk in names
        if not moved and bus != "scsi":
            continue
        if moved and address is None:
            continue  # gets its unit from _scsi_controller
        if address is not None:
            if int_attr(address, "controller", 0, ctx.filename) == controller:
                used.add(int_attr(address, "unit", 0, ctx.filename))
            continue
        index = devices.disk_index(dev or "")
        if index is not None and index // 7 == controller:  # libvirt's default mapping
            used.add(index % 7)
    return used


def _ide_controller(ctx, names):
    on_ide = [disk for disk, _, _, _, bus in ctx.once(stated_disks) if disk in names or bus == "ide"]
    if len(on_ide) > BUSES["ide"].units_per_controller:
        raise error(ctx.origin.span,
                    f"disk bus ide: {len(on_ide)} devices need the IDE bus, but "
                    f"{ctx.platform.describe_machine()} has one IDE controller with 4 units",
                    exit_code=ExitCode.CONFLICT,
                    hint="use 'disk bus sata' or 'disk bus virtio' for more disks")
    if devices.controller_indexes(ctx, "ide"):
        return []
    return [devices.controller("ide", 0, ctx.origin)]


@completion("the SCSI controller model", rank=70)
def scsi_controller_model(ctx):
    """An explicit SCSI controller model wherever a device is on the SCSI bus (its
    target says so, or its sdX name, as libvirt reads a name with no bus) and no
    trait adds the controller: virtio-scsi when the guest OS drives it (or no OS is
    named), else lsilogic, chosen rather than defaulted. A SCSI controller of the
    input without a model gets it too; cdroms and LUNs count."""
    moved = bool(ctx.of(disk_bus))  # its disks leave the SCSI bus or get their own
    on_scsi = [disk for disk, device, _, dev, bus in ctx.once(stated_disks)
               if not (moved and device == "disk") and _on_scsi(dev, bus)]
    controllers = devices.controller_indexes(ctx, "scsi")
    unset = [c for c in controllers.values() if c.get("model") is None]
    if not unset and (controllers or not on_scsi):  # the model is chosen only if needed
        return []
    model = "virtio-scsi" if drives(ctx, "virtio-scsi") else "lsilogic"
    edits = [SetAttr(c, "model", model, ctx.origin) for c in unset]
    if on_scsi and not controllers:
        edits.append(devices.controller("scsi", 0, ctx.origin, model=model))
    return edits


def _on_scsi(dev: str | None, bus: str | None) -> bool:
    """Whether a disk's target puts it on the SCSI bus: it says so, or it names no
    bus and an sdX name, which libvirt reads as SCSI."""
    return bus == "scsi" or (bus is None and (dev or "").startswith("sd"))
