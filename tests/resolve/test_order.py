"""Order independence: any permutation of the profiles gives the same bytes, or the
same error (DESIGN.md principle 3)."""

from __future__ import annotations

import itertools
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.cli_run import run, write

LINES = ["machine q35", "machine pc", "video qxl", "video virtio", "video vga",
         "video cirrus", "disk bus sata", "disk bus virtio", "disk bus scsi", "disk bus ide",
         "guest agent", "prefer video qxl", "prefer disk bus sata", "prefer machine pc",
         "prefer disk bus ide", "when machine q35 {\n    video bochs\n}",
         "when machine pc {\n    disk bus ide\n}"]
DOMAIN = """<domain type="kvm">
  <name>d</name>
  <memory unit="MiB">256</memory>
  <devices>
    <disk type="file" device="disk">
      <source file="/a.img"/>
      <target dev="vda"/>
    </disk>
    <disk type="file" device="cdrom">
      <target dev="sda" bus="sata"/>
    </disk>
  </devices>
</domain>
"""
profile_bodies = st.lists(st.lists(st.sampled_from(LINES), min_size=1, max_size=4),
                          min_size=2, max_size=3)


@settings(max_examples=60, deadline=None)
@given(profile_bodies, st.booleans())
def test_every_permutation_gives_the_same_result(bodies, with_input):
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        files = {f"p{i}.vt": "\n".join(lines) + "\n" for i, lines in enumerate(bodies)}
        write(folder, {**files, "d.xml": DOMAIN})
        domain = ["d.xml"] if with_input else []
        results = set()
        for order in itertools.permutations(sorted(files)):
            argv = ["compile", *domain]
            for name in order:
                argv += ["-p", name]
            results.add(run(argv, cwd=folder))
        assert len(results) == 1, results
