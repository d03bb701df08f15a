"""libvirt's verdict on what an engine hook returns. An engine's own XML may hold what
libvirt's schema refuses but its define (which the engines call without validation)
takes: Go's empty <bios></bios> in KubeVirt's sysinfo, ovirt-engine's
<seclabel type='none'> in a disk source. The hook must add nothing libvirt refuses,
and with those quirks taken out libvirt must accept input and output alike."""

from __future__ import annotations

import re

from tests.libvirt import check_with_libvirt


def assert_hook_adds_nothing_libvirt_refuses(before: str, after: str, without_quirks,
                                             refused: str) -> None:
    """``refused``: libvirt's schema error on the input, line numbers taken out (the
    output's lines may have moved); ``without_quirks``: the text with them taken out."""
    verdicts = check_with_libvirt({"input": before, "output": after,
                                   "input, no quirks": without_quirks(before),
                                   "output, no quirks": without_quirks(after)})
    assert (_unnumbered(verdicts["input"].rng_error, "input"),
            _unnumbered(verdicts["output"].rng_error, "output")) == (refused, refused)
    assert (verdicts["input, no quirks"].problems(),
            verdicts["output, no quirks"].problems()) == ([], [])


def _unnumbered(error: str | None, name: str) -> str | None:
    return None if error is None else re.sub(rf"^{re.escape(name)}:\d+: ", "", error,
                                             flags=re.M)
