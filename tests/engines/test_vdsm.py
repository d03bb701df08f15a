"""The oVirt/VDSM before_vm_start hook, contrib/vdsm/50_virtuned, run as VDSM runs
it (lib/vdsm/common/hooks.py, _runHooksDir): the executable itself, its environment
VDSM's own plus the VM's custom properties, vmId and ``_hook_domxml``, the name of a
``mkstemp`` file holding the domain XML, read back when the hook is done.

data/vdsm-domain.xml is a domain as ovirt-engine sends it for a start, after VDSM's
test data (tests/virt/data/domain_disk_file.xml) without what only a running domain
has (ids, aliases, live ports and labels), on a q35 machine.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.engines.libvirt_verdicts import assert_hook_adds_nothing_libvirt_refuses

DATA = Path(__file__).with_name("data")
HOOK = Path(__file__).parents[2] / "contrib" / "vdsm" / "50_virtuned"
SITE = '''profile site 1.0.0 "A site's tuning for its oVirt guests"
param queues: int = 1

network queues $queues
pvpanic
'''


@pytest.fixture
def vdsm(tmp_path):
    """Runs the hook as VDSM does, with the given ``virtuned`` custom property (None:
    the VM has none); returns (exit code, stderr, the file's bytes after, the file)."""
    hooks = tmp_path / "hooks" / "before_vm_start"
    hooks.mkdir(parents=True)
    # The hook as installed, its first line naming the python virtuned is installed
    # for (here the test's own).
    script = hooks / "50_virtuned"
    text = HOOK.read_text()
    assert text.startswith("#!/usr/bin/python3\n")
    script.write_text(f"#!{sys.executable}\n" + text.split("\n", 1)[1])
    script.chmod(0o755)
    profiles = tmp_path / "virtuned" / "profiles"
    profiles.mkdir(parents=True)
    (profiles / "site.vt").write_text(SITE)

    def run(prop: str | None, domain: bytes | None = None, *, domxml: bool = True):
        handle, name = tempfile.mkstemp(dir=tmp_path)  # as VDSM writes the domain
        os.write(handle, (DATA / "vdsm-domain.xml").read_bytes() if domain is None
                 else domain)
        os.close(handle)
        environment = {"PATH": os.environ["PATH"], "HOME": str(tmp_path),
                       "XDG_CONFIG_HOME": str(tmp_path), "VIRTUNED_CACHE_DIR": "",
                       "vmId": "69b6b942-b5bf-4740-bb95-6752ffbd3bcf",
                       "PYTHONPATH": "/usr/lib/python3/dist-packages/vdsm/hook"}
        if prop is not None:
            environment["virtuned"] = prop
        if domxml:
            environment["_hook_domxml"] = name
        done = subprocess.run([str(script)], stdin=subprocess.DEVNULL, capture_output=True,
                              env=environment, timeout=120)
        return done.returncode, done.stderr.decode(), Path(name).read_bytes(), Path(name)

    return run


def domain() -> bytes:
    return (DATA / "vdsm-domain.xml").read_bytes()


def test_a_vm_without_the_property_is_left_alone(vdsm):
    for prop in (None, "", "  "):
        assert vdsm(prop)[:3] == (0, "", domain())


def test_the_property_rewrites_the_file_in_one_step(vdsm):
    code, stderr, after, path = vdsm(
        'profiles=site | params={"queues": 4} | traits=vmcoreinfo')
    assert (code, stderr) == (0, "")
    assert after.decode() == (DATA / "vdsm-domain.site.xml").read_text().replace(
        "@PROFILES@", str(path.parent / "virtuned" / "profiles"))
    # Replaced whole, with the mode VDSM gave it; nothing else left beside it.
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in path.parent.iterdir() if p.name.startswith(".")) == []


def without_engine_quirks(text: str) -> str:
    """Without what ovirt-engine writes that libvirt's schema refuses: a type on a
    disk source's <seclabel>, an empty cdrom's file=''."""
    return text.replace(' type="none" relabel="no"', ' relabel="no"').replace(
        '<source file="" startupPolicy="optional">', '<source startupPolicy="optional">')


def test_libvirt_accepts_the_rewritten_domain(vdsm):
    _, _, after, _ = vdsm('profiles=site|params={"queues": 4}|traits=vmcoreinfo')
    # The test host's QEMU is Debian's: it has no RHEL machine types.
    def here(text: bytes) -> str:
        return text.decode().replace('machine="pc-q35-rhel8.6.0"', 'machine="q35"')

    assert_hook_adds_nothing_libvirt_refuses(
        here(domain()), here(after), without_engine_quirks,
        "Relax-NG validity error : Extra element devices in interleave\n"
        "element devices: Relax-NG validity error : Element domain failed to validate "
        "content")


REFUSALS = [
    ("traits=pvpanic|traits=hugepages 3x", (
        "virtuned:1:33: error: hugepages: size: unknown unit 'x' in '3x'; use one of KB, "
        "k, K, KiB, MB, M, MiB, GB, G, GiB, TB, T, TiB\n"
        "    traits=pvpanic|traits=hugepages 3x\n"
        "                                    ^^\n"
        "hint: usage: hugepages SIZE\n")),
    ("traits=memory balloon off|traits=memory balloon on", (
        "virtuned:1:34: error: 'memory balloon on' conflicts with 'memory balloon off'\n"
        "    traits=memory balloon off|traits=memory balloon on\n"
        "                                     ^^^^^^^^^^^^^^^^^\n"
        "virtuned:1:8: note: the other one is here\n"
        "    traits=memory balloon off|traits=memory balloon on\n"
        "           ^^^^^^^^^^^^^^^^^^\n"
        "hint: keep one of the two, or make the weaker one a 'prefer'\n")),
    ("profiles=site|traits=video vga", (
        "virtuned:1:22: error: video vga: libvirt allows vga only as the primary video, "
        "and the input's primary video is qxl\n"
        "    profiles=site|traits=video vga\n"
        "                         ^^^^^^^^^\n"
        "hint: use qxl or virtio as a second video, or change the input's\n")),
    ('profiles=site|params={"queues": "four"}', (
        "virtuned:1:33: error: param 'queues' (int): expected a whole number, got 'four'\n"
        '    profiles=site|params={"queues": "four"}\n'
        "                                    ^\n")),
    ("profiles=stie", (
        "virtuned:1:10: error: no profile 'stie' on the search path\n"
        "    profiles=stie\n"
        "             ^\n"
        "hint: did you mean 'site'?\n")),
    ("profile=site", (
        "virtuned:1:1: error: expected 'profiles=', 'params=' or 'traits=' here\n"
        "    profile=site\n"
        "    ^\n"
        'hint: fields are separated by "|": profiles=site-nfv|params={"queues": 2}|'
        "traits=pvpanic\n")),
    ("profiles=site|profiles=server", (
        "virtuned:1:15: error: 'profiles=' is given twice\n"
        "    profiles=site|profiles=server\n"
        "                  ^\n")),
]


@pytest.mark.parametrize("prop, stderr", REFUSALS)
def test_a_mistake_or_a_conflict_fails_the_start_and_leaves_the_file(vdsm, prop, stderr):
    # 2: "the hook failed, no further hooks should be processed"; VDSM then refuses
    # to start the VM with what the hook wrote on stderr.
    assert vdsm(prop)[:3] == (2, stderr, domain())


def test_without_the_domain_file_the_hook_fails(vdsm):
    code, stderr, _, _ = vdsm("traits=pvpanic", domxml=False)
    assert (code, stderr) == (2, "_hook_domxml: error: not set: VDSM names the domain "
                                 "XML file in it; is this running as a before_vm_start "
                                 "hook?\n")


def test_a_domain_that_is_not_xml_fails_the_start(vdsm):
    code, stderr, after, _ = vdsm("traits=pvpanic", b"<domain type='kvm'>")
    assert (code, after) == (2, b"<domain type='kvm'>")
    assert stderr.startswith("<domain>:1:")


def test_a_python_without_virtuned_fails_the_start(tmp_path):
    # The hook as shipped, run by a python that cannot import virtuned.
    python = "/usr/bin/python3"
    if not os.path.exists(python):
        pytest.skip(f"no {python}")
    if subprocess.run([python, "-c", "import virtuned"], cwd=tmp_path,
                      capture_output=True).returncode == 0:
        pytest.skip(f"{python} can import virtuned")
    domxml = tmp_path / "domain.xml"
    domxml.write_bytes(domain())
    done = subprocess.run([python, str(HOOK)], capture_output=True, cwd=tmp_path,
                          env={"PATH": os.environ["PATH"], "virtuned": "traits=pvpanic",
                               "_hook_domxml": str(domxml)})
    assert (done.returncode, done.stderr.decode(), domxml.read_bytes()) == (
        2, f"50_virtuned: virtuned cannot be imported by {python}: No module named "
           "'virtuned'\n", domain())
