"""The README's first examples run as written, from the repository's root, on a
machine without libvirtd (its live host is libvirt's built-in test:///default):
every command exits 0."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path


ROOT = Path(__file__).resolve().parent.parent


def commands() -> list[str]:
    """Each command line of the README's 'Use' examples (its first two sh blocks
    after the set-up one), continuation lines joined, comments dropped."""
    blocks = re.findall(r"```sh\n(.*?)```", (ROOT / "README.md").read_text(), re.S)[1:3]
    text = "\n".join(blocks).replace("\\\n", " ")
    lines = [line.split("  #")[0].strip() for line in text.splitlines()]
    return [line for line in lines if line and line != "python -m virtuned ..."]


def test_the_readme_has_its_examples():
    assert len(commands()) > 15


def test_every_readme_example_runs_as_written(tmp_path):
    for name in ("examples", "traits", "tests"):
        (tmp_path / name).symlink_to(ROOT / name)
    script = "set -e\n" + "\n".join(
        f"echo '$ {line}' >&2\n{line} > /dev/null" for line in commands())
    environment = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
                   "NO_COLOR": "1"}
    done = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=environment,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
