"""``serial console``: a text console on the first serial port."""

from __future__ import annotations


from virtuned.emit.kit import devices, el, trait


@trait("serial console", version=1, rank=130, example="serial console")
def serial_console(ctx):
    """A pty serial port 0 and a console on it (``virsh console`` works).

    Adds what the input lacks: the serial port, the console, or both.
    """
    edits = []
    if not ctx.devices_of("serial"):
        edits.append(devices.add_device(
            el("serial", el("target", port="0"), type_="pty"), ctx.origin))
    if not ctx.devices_of("console"):
        edits.append(devices.add_device(
            el("console", el("target", type_="serial", port="0"), type_="pty"), ctx.origin))
    return edits
