"""``serial console``: a text console on the first serial port."""

from __future__ import annotations


from virtuned.emit.kit import devices, el, trait


@trait("serial console", version=1, rank=130, example="serial console")
def serial_console(ctx):
    """A pty serial port 0 and a console on it (``virsh console`` works).

    Adds what the input lacks: the serial port, the console, or both.
    """
    edits = []
    if devices.find(ctx.devices, "serial", port="0") == [] and \
            (ctx.devices is None or ctx.devices.find("serial") is None):
        edits.append(devices.add_device(
            el("serial", el("target", port="0"), type_="pty"), ctx.origin))
    if ctx.devices is None or ctx.devices.find("console") is None:
        edits.append(devices.add_device(
            el("console", el("target", type_="serial", port="0"), type_="pty"), ctx.origin))
    return edits
