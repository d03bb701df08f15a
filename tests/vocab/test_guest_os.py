"""``os ID`` and ``recommended``: osinfo-db read as XML, inheritance as libosinfo has
it, and recommendations that behave as preferences. (The CLI cases with Debian's
osinfo-db are golden cases under tests/golden/os/.)"""

from __future__ import annotations

import json

import pytest

from tests.cli_run import run, write
from virtuned.facts import osinfo


def test_real_oses():
    win11 = osinfo.lookup("win11")
    assert (win11.id, win11.name, win11.family, win11.requires_uefi()) == (
        "http://microsoft.com/win/11", "Microsoft Windows 11", "windows", True)
    # win11 derives from win10, 8.1, 8, 7...: devices come down the chain.
    assert [kind for kind in osinfo.DEVICES if win11.supports(kind)] == [
        "qemu-xhci", "q35", "e1000e", "e1000"]
    fedora = osinfo.lookup("fedora37")
    assert (fedora.family, fedora.requires_uefi()) == ("linux", False)
    assert [kind for kind in osinfo.DEVICES if not fedora.supports(kind)] == [
        "e1000", "rtl8139"]
    # ubuntu 22.04 marks virtio-gpu unsupported; linux2022 derives from it and
    # marks it supported again: the nearest statement wins.
    assert (osinfo.lookup("ubuntu22.04").supports("virtio-gpu"),
            osinfo.lookup("linux2022").supports("virtio-gpu")) == (False, True)
    assert osinfo.by_id("http://microsoft.com/win/10").short_id == "win10"
    assert osinfo.by_id("http://example.com/nothing") is None


def test_unknown_os_suggests_close_ids():
    with pytest.raises(osinfo.UnknownOs) as caught:
        osinfo.lookup("fedora99")
    assert str(caught.value).startswith("unknown OS 'fedora99' in osinfo-db (did you mean")


def _os_file(uri, short_id, *, family="linux", parents=(), devices=(), firmware=()):
    parts = [f'<os id="{uri}">', f"<short-id>{short_id}</short-id>",
             f"<name>{short_id}</name>", f"<family>{family}</family>"]
    parts += [f'<derives-from id="{parent}"/>' for parent in parents]
    parts += [f'<firmware arch="x86_64" type="{kind}" supported="{supported}"/>'
              for kind, supported in firmware]
    parts.append("<devices>" + "".join(f'<device id="{d}" supported="{s}"/>'
                                       for d, s in devices) + "</devices>")
    return "<libosinfo version='0.0.1'>" + "".join(parts) + "</os></libosinfo>"


def test_inheritance_nearest_statement_wins(tmp_path, monkeypatch):
    net, blk = osinfo.DEVICES["virtio-net"][0], osinfo.DEVICES["virtio-block"][0]
    write(tmp_path, {
        "os/example.org/a.xml": _os_file("http://example.org/a", "a", devices=[
            (net, "true"), (blk, "true")], firmware=[("bios", "true")]),
        "os/example.org/b.xml": _os_file("http://example.org/b", "b", family="freebsd",
                                         parents=["http://example.org/a"],
                                         devices=[(blk, "false")],
                                         firmware=[("efi", "true"), ("bios", "false")]),
        "os/example.org/c.xml": _os_file("http://example.org/c", "c",
                                         parents=["http://example.org/b"],
                                         devices=[(blk, "true")]),
    })
    monkeypatch.setenv("OSINFO_SYSTEM_DIR", str(tmp_path))
    b, c = osinfo.lookup("b"), osinfo.lookup("c")
    assert (b.family, b.supports("virtio-net"), b.supports("virtio-block"),
            b.requires_uefi()) == ("bsd", True, False, True)
    assert (c.supports("virtio-block"), c.requires_uefi()) == (True, True)


def test_without_osinfo_db_the_os_trait_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("OSINFO_SYSTEM_DIR", str(tmp_path / "none"))
    assert run(["compile", "-t", "os win11"]) == (2, "", f"""\
<trait 1>:1:4: error: os: id: no osinfo database at {tmp_path}/none/os (Debian: apt-get \
install osinfo-db)
    os win11
       ^^^^^
hint: usage: os ID
""")


def test_recommended_inside_a_when_block_and_as_a_preference(tmp_path):
    write(tmp_path, {"p.vt": "os win10\nwhen os family windows {\n    prefer recommended\n}\n"})
    code, out, err = run(["compile", "-p", "p.vt"], cwd=tmp_path)
    assert (code, err) == (0, "")
    assert '<clock offset="localtime">' in out and '<model type="qxl"/>' in out


def test_recommendations_in_explain_and_in_a_lock(tmp_path):
    argv = ["compile", "-t", "os fedora37", "-t", "recommended", "-t", "rng virtio"]
    code, out, _ = run(argv + ["--write-lock", "l.json"], cwd=tmp_path)
    lock = json.loads((tmp_path / "l.json").read_text())
    labels = [(t["label"], t["strength"]) for t in lock["traits"]]
    # rng is named by the request, so its recommendation is not added beside it.
    assert labels == [
        ("video virtio (recommended for fedora37: it has a virtio-gpu driver)", "prefer"),
        ("disk bus virtio (recommended for fedora37: it has a virtio-block driver)",
         "prefer"),
        ("guest agent (recommended for fedora37: it has a virtio-serial driver)", "prefer"),
        ("clock utc (recommended for fedora37: its clock keeps UTC)", "prefer"),
        ("memory balloon on (recommended for fedora37: it has a virtio-balloon driver)",
         "prefer"),
        ("rng virtio", "require"),
        ("usb controller qemu-xhci (recommended for fedora37: it has a qemu-xhci driver)",
         "prefer"),
        ("network model virtio (recommended for fedora37: it has a virtio-net driver)",
         "prefer"),
        ("os fedora37", "require"), ("recommended", "require"),
        ("memory 2GiB (recommended for fedora37: osinfo-db's recommended memory)",
         "prefer")]
    replayed = run(["compile", "--lock", "l.json", "-t", "os fedora37", "-t", "recommended",
                    "-t", "rng virtio"], cwd=tmp_path)
    assert replayed == (code, out, "")
    explained = run(["explain", "-t", "os fedora37", "-t", "recommended"], cwd=tmp_path)[1]
    assert ("    <- prefer 'video virtio (recommended for fedora37: it has a virtio-gpu "
            "driver)' at <trait 2>:1:1\n") in explained


def test_traits_lists_os_and_recommended():
    code, out, _ = run(["traits"])
    lines = [line.split("  v1  ")[1] for line in out.splitlines()
             if line.startswith(("os ID ", "recommended "))]
    assert lines == [
        "The guest operating system, by its osinfo-db short id (win11, fedora37, rhel9.0).",
        "What the guest OS ('os ID') recommends, from osinfo-db, as preferences."]
