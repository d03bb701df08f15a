"""``--connect URI`` and ``virtuned host snapshot`` against real libvirt drivers, with
no daemon: the test driver (``test:///default``: 2 NUMA cells of 8 CPUs and one
running guest, kept per process) and the embedded QEMU driver
(``qemu:///embed?root=DIR``: this machine's own topology; a guest defined there and
set to autostart persists across processes, so one process defines it and
another, virtuned, reads it)."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import jsonschema_rs
import pytest

from tests.cli_run import run
from tests.libvirt import in_ci

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "virtuned/host.schema.json").read_text())
DOMAIN = """<domain type='kvm'>
  <name>guest</name>
  <memory unit='GiB'>1</memory>
  <vcpu>{vcpus}</vcpu>
  <os><type arch='x86_64' machine='q35'>hvm</type></os>
</domain>
"""
NO_DOMCAPS = ("--connect: warning: test:///default: domain capabilities of kvm x86_64 "
              "q35: this function is not supported by the connection driver: "
              "virConnectGetDomainCapabilities; nothing was checked against the "
              "hypervisor's capabilities\n")


def _binding_or_skip() -> None:
    try:
        import libvirt  # noqa: F401
    except ImportError:
        if in_ci():
            pytest.fail("CI is set but libvirt's Python binding is missing "
                        "(pip install 'virtuned[libvirt]', scripts/setup.sh)")
        pytest.skip("libvirt's Python binding is not installed")


@pytest.fixture
def libvirt_binding():
    _binding_or_skip()


def valid(snapshot: dict) -> dict:
    jsonschema_rs.validator_for(SCHEMA).validate(snapshot)
    return snapshot


# ---------------------------------------------------------------- the test driver

def test_a_snapshot_of_the_test_driver(libvirt_binding, tmp_path):
    code, out, err = run(["host", "snapshot", "--connect", "test:///default", "-o",
                          "host.json"], cwd=tmp_path)
    assert (code, out, err) == (0, "", "")
    snapshot = valid(json.loads((tmp_path / "host.json").read_text()))
    assert {key: snapshot[key] for key in ("format", "version", "uri", "guests",
                                           "domcaps")} == {
        "format": "virtuned host snapshot", "version": 1, "uri": "test:///default",
        # the test driver's own guest, running, holding no CPU of its own
        "guests": [{"name": "test", "running": True, "autostart": False, "vcpus": {},
                    "vcpu_cpuset": None, "emulator": None, "iothreads": {},
                    "memory": [{"nodes": None, "kib": 8388608, "page_kib": None}]}],
        "domcaps": []}  # the test driver has none
    first, second = snapshot["nodes"]
    assert {key: first[key] for key in first if key != "cpus"} == {
        "id": 0, "memory_kib": 2097152, "free_memory_kib": None,  # the driver does not say
        "pages": [{"size_kib": 4, "total": 524288, "free": None},
                  {"size_kib": 2048, "total": 0, "free": None},
                  {"size_kib": 1048576, "total": 0, "free": None}],
        "distances": []}
    assert first["cpus"][:2] == [
        {"id": 0, "socket": 0, "die": 0, "core": 0, "siblings": "0"},
        {"id": 1, "socket": 0, "die": 0, "core": 1, "siblings": "1"}]
    assert [cpu["id"] for cpu in second["cpus"]] == list(range(8, 16))


def test_compile_against_the_test_driver_live_and_from_its_snapshot(libvirt_binding,
                                                                    tmp_path):
    (tmp_path / "d.xml").write_text(DOMAIN.format(vcpus=4))
    run(["host", "snapshot", "--connect", "test:///default", "-o", "host.json"],
        cwd=tmp_path)
    traits = ["-t", "dedicated cpus", "-t", "emulator threads shared"]
    live = run(["compile", "d.xml", *traits, "--connect", "test:///default",
                "--reserved-cpus", "0"], cwd=tmp_path)
    offline = run(["compile", "d.xml", *traits, "--host", "host.json",
                   "--reserved-cpus", "0"], cwd=tmp_path)
    assert live == (0, offline[1], NO_DOMCAPS)
    assert offline[2] == ""
    assert ("<vcpupin vcpu='0' cpuset='1'/>" in offline[1],
            "<emulatorpin cpuset='1-4'/>" in offline[1]) == (True, True)


def test_free_pages_the_driver_does_not_tell_are_said(libvirt_binding, tmp_path):
    """The test driver tells no free pages: the pools' totals are taken, less every
    other guest's pages (running ones too: nothing says they are already out of the
    count), and a warning says so."""
    (tmp_path / "d.xml").write_text(DOMAIN.format(vcpus=1))
    run(["host", "snapshot", "--connect", "test:///default", "-o", "host.json"],
        cwd=tmp_path)
    snapshot = json.loads((tmp_path / "host.json").read_text())
    for node, total in zip(snapshot["nodes"], (600, 1024)):  # pools of 2MiB pages
        node["pages"][1]["total"] = total
    snapshot["guests"][0]["memory"] = [{"nodes": "0", "kib": 100 * 2048, "page_kib": 2048}]
    (tmp_path / "host.json").write_text(json.dumps(valid(snapshot)))
    code, out, err = run(["plan", "d.xml", "-t", "hugepages 2MiB", "-t", "dedicated cpus",
                          "--host", "host.json"], cwd=tmp_path)
    assert (code, err) == (0, "<trait 2>:1:1: warning: 'hugepages 2MiB': host.json does "
                              "not say how many pages are free (its driver does not "
                              "tell): the pools' totals less the other guests' pages were "
                              "taken as free\n    hugepages 2MiB\n    ^^^^^^^^^^^^^^\n")
    assert json.loads(out)["placement"]["nodes"] == "1"  # node 0: 600 - 100 < 512


def test_fit_answers_the_live_host_first(libvirt_binding, tmp_path):
    (tmp_path / "d.xml").write_text(DOMAIN.format(vcpus=2))
    code, out, _ = run(["fit", "d.xml", "-t", "dedicated cpus", "--connect",
                        "test:///default", "--hosts",
                        str(ROOT / "examples/hosts/busy-host.json")], cwd=tmp_path)
    assert code == 0
    assert [(a["host"], a["fits"], a["placement"]["cpuset"]) for a in json.loads(out)] == [
        ("test:///default", True, "0-1"),
        (str(ROOT / "examples/hosts/busy-host.json"), True, "0,3")]  # 1-2 are app03's


def test_a_uri_that_fails_is_an_input_error(libvirt_binding, tmp_path):
    code, out, err = run(["plan", "-t", "dedicated cpus", "--connect", "nowhere:///x"],
                         cwd=tmp_path)
    assert (code, out) == (2, "")
    assert err.startswith("--connect: error: nowhere:///x: cannot connect: ")


def test_connect_and_host_are_one_or_the_other(libvirt_binding, tmp_path):
    code, _, err = run(["plan", "-t", "dedicated cpus", "--connect", "test:///default",
                        "--host", str(ROOT / "examples/hosts/test-driver.xml")],
                       cwd=tmp_path)
    assert (code, err) == (2, "--connect test:///default: error: give the host with "
                              "--connect or --host, not both\n")


def test_without_the_binding_the_error_says_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "libvirt", None)  # import libvirt fails
    code, out, err = run(["host", "snapshot", "--connect", "test:///default"],
                         cwd=tmp_path)
    assert (code, out, err) == (
        2, "", "--connect: error: reading a live host needs libvirt's Python binding "
               "(import of libvirt halted; None in sys.modules); install it with: pip "
               "install 'virtuned[libvirt]'\n")


def test_a_call_past_its_deadline_is_an_error(libvirt_binding):
    import threading

    from virtuned.diagnostics import VirtunedError
    from virtuned.facts.live import Live

    live = Live("test:///default", deadline=0.05)
    never = threading.Event()
    with pytest.raises(VirtunedError) as raised:
        live._call(never.wait, what="capabilities")
    never.set()
    assert raised.value.diagnostics[0].message == (
        "test:///default: capabilities: no answer from libvirt within 0.05 seconds")


# ---------------------------------------------------------------- qemu:///embed

DEFINE = """
import sys, threading, libvirt
libvirt.registerErrorHandler(lambda *a: None, None)
libvirt.virEventRegisterDefaultImpl()
threading.Thread(target=lambda: [libvirt.virEventRunDefaultImpl() for _ in iter(int, 1)],
                 daemon=True).start()
conn = libvirt.open(sys.argv[1])
for name, cpu in (("web01", sys.argv[2]),):
    dom = conn.defineXML(f'''<domain type='qemu'><name>{name}</name>
      <memory unit='MiB'>64</memory><vcpu>1</vcpu>
      <cputune><vcpupin vcpu='0' cpuset='{cpu}'/><emulatorpin cpuset='{cpu}'/></cputune>
      <numatune><memory mode='strict' nodeset='0'/></numatune>
      <os><type arch='x86_64' machine='q35'>hvm</type></os></domain>''')
    dom.setAutostart(1)
"""


# The distributions virtuned imports to read a live host (pyproject.toml).
RUNTIME = ("attrs", "lark", "lxml", "libvirt-python")


def _importable_copy(folder: Path) -> str:
    """virtuned (with its grammar and shipped profiles) and the distributions it
    imports, copied into ``folder``: a PYTHONPATH any user can read."""
    from importlib.metadata import distribution

    ignore = shutil.ignore_patterns("__pycache__")
    for part in ("virtuned", "grammar", "traits"):
        shutil.copytree(ROOT / part, folder / part, ignore=ignore)
    for name in RUNTIME:
        found = distribution(name)
        for file in found.files or ():
            source = Path(found.locate_file(file))
            if source.is_file() and "__pycache__" not in file.parts:
                (folder / file).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, folder / file)
    for path in folder.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return str(folder)


class Embedded:
    """A qemu:///embed root and the user that runs the driver on it: ``nobody`` when
    root (the embedded driver run as root wants the libvirt-qemu account), else the
    current user; with the python that user can run virtuned with."""

    def __init__(self, work: Path):
        self.work, self.uri = work, f"qemu:///embed?root={work / 'root'}"
        self.as_root = os.geteuid() == 0
        home = work / "home"
        home.mkdir()
        self.env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8",
                    "HOME": str(home), "XDG_CACHE_HOME": str(home / ".cache"),
                    "XDG_CONFIG_HOME": str(home / ".config"),
                    "XDG_RUNTIME_DIR": str(home / "run")}
        self.python = [sys.executable]
        if self.as_root:
            for path in (work, home):
                os.chown(path, pwd.getpwnam("nobody").pw_uid, -1)
            if self._run([sys.executable, "-c", "import virtuned, libvirt"]).returncode:
                # The venv's python, or the checkout, is out of nobody's reach (under
                # /root, or a directory only root may enter): Debian's python of the
                # same version, with a copy of virtuned and what it imports.
                self.env["PYTHONPATH"] = _importable_copy(work / "python")
                self.python = ["/usr/bin/python3"]

    def _run(self, argv: list[str]) -> subprocess.CompletedProcess:
        env = {**self.env, "PYTHONPATH": self.env.get("PYTHONPATH", str(ROOT))}
        if self.as_root:
            argv = ["runuser", "-u", "nobody", "--", "/usr/bin/env", "-i",
                    *(f"{k}={v}" for k, v in sorted(env.items())), *argv]
            env = None
        return subprocess.run(argv, cwd=self.work, env=env, capture_output=True,
                              text=True, stdin=subprocess.DEVNULL, timeout=600)

    def python_run(self, *argv: str) -> subprocess.CompletedProcess:
        return self._run([*self.python, *argv])

    def virtuned(self, *argv: str) -> subprocess.CompletedProcess:
        return self.python_run("-m", "virtuned", *argv)


@pytest.fixture(scope="module")
def embedded():
    """An embedded QEMU driver with web01 defined and set to autostart, not running,
    pinned to the last CPU of host node 0."""
    _binding_or_skip()
    for tool in ("qemu-system-x86_64", "runuser") if os.geteuid() == 0 else \
            ("qemu-system-x86_64",):
        if shutil.which(tool) is None:
            if in_ci():
                pytest.fail(f"CI is set but {tool} is missing (scripts/setup.sh)")
            pytest.skip(f"{tool} is missing")
    work = Path(tempfile.mkdtemp(prefix="virtuned-embed-", dir="/tmp"))
    os.chmod(work, 0o755)
    try:
        box = Embedded(work)
        first = box.virtuned("host", "snapshot", "--connect", box.uri)
        assert first.returncode == 0, first.stderr
        box.before = json.loads(first.stdout)
        node = box.before["nodes"][0]
        box.node_cpus = [cpu["id"] for cpu in node["cpus"]]
        if len(box.node_cpus) < 2:
            pytest.skip("host node 0 has one CPU: a guest pinned there leaves none")
        box.pinned = box.node_cpus[-1]
        (work / "define.py").write_text(DEFINE)
        defined = box.python_run("define.py", box.uri, str(box.pinned))
        assert defined.returncode == 0, defined.stderr
        yield box
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_an_embedded_snapshot_holds_the_autostart_guest(embedded):
    """Defined in one process, read in another: the guest starts with the host, so
    its pinned CPU is held and its memory counted on its node."""
    taken = embedded.virtuned("host", "snapshot", "--connect", embedded.uri)
    assert (taken.returncode, taken.stderr) == (0, "")
    snapshot = valid(json.loads(taken.stdout))
    assert embedded.before["guests"] == []
    cpu = str(embedded.pinned)
    assert snapshot["guests"] == [{
        "name": "web01", "running": False, "autostart": True, "vcpus": {"0": cpu},
        "vcpu_cpuset": None, "emulator": cpu, "iothreads": {},
        "memory": [{"nodes": "0", "kib": 65536, "page_kib": None}]}]
    node = snapshot["nodes"][0]
    assert node["free_memory_kib"] > 0  # this machine's: told by the driver
    assert all(pool["free"] is not None for pool in node["pages"])
    # the embedded QEMU driver has domain capabilities for its guests
    assert {(d["arch"], d["virt_type"]) for d in snapshot["domcaps"]} >= {("x86_64", "qemu")}


def test_the_placement_keeps_off_the_autostart_guests_cpu(embedded):
    (embedded.work / "d.xml").write_text(DOMAIN.format(vcpus=1).replace("'kvm'", "'qemu'"))
    taken = embedded.virtuned("plan", "d.xml", "-t", "dedicated cpus", "-t",
                              "place on host node 0", "--connect", embedded.uri)
    assert (taken.returncode, taken.stderr) == (0, "")
    placement = json.loads(taken.stdout)["placement"]
    assert placement["cpuset"] == str(embedded.node_cpus[0])  # web01 has the last


def test_a_guest_that_needs_the_held_cpu_is_refused_naming_its_holder(embedded):
    count = len(embedded.node_cpus)
    (embedded.work / "d.xml").write_text(
        DOMAIN.format(vcpus=count).replace("'kvm'", "'qemu'"))
    taken = embedded.virtuned("plan", "d.xml", "-t", "dedicated cpus", "-t",
                              "place on host node 0", "--connect", embedded.uri)
    assert (taken.returncode, taken.stdout) == (3, "")
    assert taken.stderr.splitlines()[0] == (
        f"<trait 1>:1:1: error: infeasible placement on {embedded.uri}: host node 0: "
        f"{count - 1} free CPUs, CPU {embedded.pinned} held by other guests (web01), "
        f"guest cell 0 needs {count}")


def test_the_domain_capabilities_come_with_the_host(embedded):
    """No --domcaps: the live host's (and its snapshot's) of the guest's platform
    bound the vCPUs of a q35 machine."""
    import re

    taken = embedded.virtuned("host", "snapshot", "--connect", embedded.uri)
    snapshot = json.loads(taken.stdout)
    q35 = next(d for d in snapshot["domcaps"]
               if (d["virt_type"], d["machine"].startswith("pc-q35")) == ("qemu", True))
    limit = int(re.search(r"<vcpu max='([0-9]+)'/>", q35["xml"]).group(1))
    (embedded.work / "host.json").write_text(taken.stdout)
    (embedded.work / "d.xml").write_text(DOMAIN.format(vcpus=1).replace("'kvm'", "'qemu'"))
    for host, shown in ((["--connect", embedded.uri], f"{embedded.uri} domcapabilities"),
                        (["--host", "host.json"],
                         f"host.json domcaps qemu x86_64 {q35['machine']}")):
        refused = embedded.virtuned("compile", "d.xml", "-t", f"vcpus {limit + 1}", *host)
        assert (refused.returncode, refused.stderr.splitlines()[0]) == (2, (
            f"<trait 1>:1:1: error: 'vcpus {limit + 1}': {limit + 1} vCPUs, but vCPUs must "
            f"be 1..{limit} on machine q35 ({shown}: <vcpu max='{limit}'>)"))


def test_what_a_definition_holds():
    """Pins as written; each guest cell's memory with the nodes its <memnode> (else
    <numatune><memory>) binds it to, and the page size its <page nodeset> gives."""
    from virtuned.facts.live import holdings

    assert holdings("""<domain type='kvm'><name>x</name><memory unit='GiB'>4</memory>
      <vcpu cpuset='0-3'>4</vcpu>
      <cputune><vcpupin vcpu='0' cpuset='2'/><iothreadpin iothread='1' cpuset='3'/></cputune>
      <numatune><memory mode='strict' nodeset='0-1'/>
        <memnode cellid='1' mode='strict' nodeset='1'/></numatune>
      <memoryBacking><hugepages><page size='1' unit='G' nodeset='1'/>
        <page size='2048' unit='KiB'/></hugepages></memoryBacking>
      <cpu><numa><cell id='0' cpus='0-1' memory='1' unit='GiB'/>
        <cell id='1' cpus='2-3' memory='3' unit='GiB'/></numa></cpu>
    </domain>""", "x") == {
        "vcpus": {"0": "2"}, "vcpu_cpuset": "0-3", "emulator": None, "iothreads": {"1": "3"},
        "memory": [{"nodes": "0-1", "kib": 1048576, "page_kib": 2048},
                   {"nodes": "1", "kib": 3145728, "page_kib": 1048576}]}
