"""``guest agent``: the QEMU guest agent channel."""

from __future__ import annotations


from virtuned.emit.kit import devices, el, trait


AGENT_CHANNEL = "org.qemu.guest_agent.0"
_AGENT = el("channel", el("source", mode="bind"),
            el("target", type_="virtio", name=AGENT_CHANNEL), type_="unix")


@trait("guest agent", version=1, rank=40, example="guest agent")
def guest_agent(ctx):
    """The qemu-guest-agent channel (virtio-serial), and its virtio-serial controller.

    An input that already has the agent channel keeps it as it is; a virtio-serial
    controller already present is reused.
    """
    edits = []
    if not devices.find(ctx, "channel", name=AGENT_CHANNEL):
        edits.append(devices.add_device(_AGENT, ctx.origin))
    if not devices.controller_indexes(ctx, "virtio-serial"):
        edits.append(devices.controller("virtio-serial", 0, ctx.origin))
    return edits
