"""Writing output (virtuned/outputs.py, the CLI's -o and stdout): a regular file is
replaced in one step and keeps its mode and owner; a link is followed; a device or a
FIFO is written in place, never replaced; a write error is exit 2 naming where, and
leaves nothing half-written."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading

import pytest

from tests.bounded import ROOT
from tests.cli_run import run
from virtuned import outputs

COMPILE = ["compile", "-t", "video qxl"]


def compiled() -> str:
    code, out, err = run(COMPILE)
    assert (code, err) == (0, "")
    return out


def test_a_regular_file_is_replaced_and_keeps_its_mode(tmp_path):
    out = tmp_path / "out.xml"
    out.write_text("old\n")
    out.chmod(0o640)
    before = out.stat()
    assert run([*COMPILE, "-o", str(out)]) == (0, "", "")
    after = out.stat()
    assert out.read_text() == compiled()
    assert stat.S_IMODE(after.st_mode) == 0o640
    assert (after.st_uid, after.st_gid) == (before.st_uid, before.st_gid)
    assert after.st_ino != before.st_ino  # a new file renamed over it: one step
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.xml"]


def test_a_new_file_has_the_mode_the_umask_gives(tmp_path):
    mask = os.umask(0o027)
    try:
        outputs.write(str(tmp_path / "new.xml"), "x")
    finally:
        os.umask(mask)
    assert stat.S_IMODE((tmp_path / "new.xml").stat().st_mode) == 0o640


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give a file to another owner")
def test_the_owner_is_kept_when_root_replaces_a_file(tmp_path):
    out = tmp_path / "out.xml"
    out.write_text("old\n")
    os.chown(out, 65534, 65534)
    outputs.write(str(out), "new\n")
    assert (out.stat().st_uid, out.stat().st_gid, out.read_text()) == (65534, 65534, "new\n")


def test_a_link_is_followed_and_stays_a_link(tmp_path):
    (tmp_path / "target.xml").write_text("old\n")
    (tmp_path / "link.xml").symlink_to("target.xml")
    assert run([*COMPILE, "-o", str(tmp_path / "link.xml")]) == (0, "", "")
    assert os.readlink(tmp_path / "link.xml") == "target.xml"
    assert (tmp_path / "target.xml").read_text() == compiled()


def test_a_fifo_is_written_in_place(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_text()))
    reader.start()
    assert run([*COMPILE, "-o", str(fifo)]) == (0, "", "")
    reader.join()
    assert got == [compiled()]
    assert stat.S_ISFIFO(fifo.stat().st_mode)


def test_a_full_device_is_exit_2_and_stays_a_device():
    assert run([*COMPILE, "-o", "/dev/full"]) == (
        2, "", "/dev/full: error: No space left on device\n")
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)


def test_a_failed_replace_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    out = tmp_path / "out.xml"
    out.write_text("old\n")

    def full(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full)
    assert run([*COMPILE, "-o", str(out)]) == (
        2, "", f"{out}: error: No space left on device\n")
    assert [p.name for p in tmp_path.iterdir()] == ["out.xml"]
    assert out.read_text() == "old\n"


def test_a_directory_is_not_an_output(tmp_path):
    assert run([*COMPILE, "-o", str(tmp_path)]) == (2, "", f"{tmp_path}: error: Is a "
                                                           "directory\n")


def run_to(stdout) -> tuple[int, str]:
    done = subprocess.run([sys.executable, "-m", "virtuned", *COMPILE], stdout=stdout,
                          stderr=subprocess.PIPE, cwd=ROOT)
    return done.returncode, done.stderr.decode()


def test_stdout_on_a_full_disk_is_exit_2():
    with open("/dev/full", "wb") as full:
        assert run_to(full) == (2, "<stdout>: error: No space left on device\n")


def test_stdout_to_a_reader_that_has_gone_is_exit_2():
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        assert run_to(write_end) == (2, "<stdout>: error: Broken pipe\n")
    finally:
        os.close(write_end)
