"""virt-install and virtuned complete the same intent; the facts they write, side by side.

Each case is a guest OS (an osinfo-db id) and a variant (default, UEFI, Secure Boot,
TPM, a display). virt-install 4.1 (Debian's ``virtinst``) runs for real in
``--print-xml`` mode through tests/virt_install_runner.py; virtuned compiles the same
intent (``os ID``, ``recommended`` and the variant's trait) onto the same minimal
domain (one disk, one NIC, neither with a bus or model). Both see the same KVM host:
``tests/domcaps/kvm-capabilities.xml`` and the domain capabilities of the machine
each one chooses, with swtpm installed.

    .venv/bin/python -m tests.parity            # the table, as docs/parity.md has it
    .venv/bin/python -m tests.parity --write    # rewrite that part of docs/parity.md
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import attrs
from lxml import etree

ROOT = Path(__file__).resolve().parents[1]
DOMCAPS = ROOT / "tests/domcaps"
CAPABILITIES = DOMCAPS / "kvm-capabilities.xml"
# The domain capabilities of each machine, with the emulated TPM (swtpm) offered.
MACHINE_DOMCAPS = {"q35": DOMCAPS / "kvm-q35-swtpm.xml", "pc": DOMCAPS / "kvm-pc-swtpm.xml"}
RUNNER = ROOT / "tests/virt_install_runner.py"
DOC = ROOT / "docs/parity.md"
DISK = "/var/lib/libvirt/images/t1.qcow2"
INPUT = f"""<domain type="kvm">
  <name>t1</name>
  <devices>
    <disk type="file" device="disk">
      <driver name="qemu" type="qcow2"/>
      <source file="{DISK}"/>
      <target dev="vda"/>
    </disk>
    <interface type="network">
      <source network="default"/>
    </interface>
  </devices>
</domain>
"""
# The same domain for virt-install: a new 8 GiB qcow2 image, the 'default' network.
VIRT_INSTALL_ARGS = ("--name", "t1", "--disk", f"{DISK},size=8,format=qcow2",
                     "--network", "network=default", "--import")


@attrs.frozen
class GuestOs:
    short_id: str                 # osinfo-db's id, as virtuned's 'os ID' takes it
    virt_install_id: str          # what virt-install's --os-variant takes
    machine: str                  # the machine both choose (and whose domcaps they see)
    virtuned_machine: str = ""    # when virtuned chooses another
    memory_mib: int = 0           # stated to both, where osinfo-db knows no memory


def guest(short_id: str, machine: str = "q35", **kwargs) -> GuestOs:
    return GuestOs(short_id, kwargs.pop("virt_install_id", short_id), machine, **kwargs)


OSES = (
    guest("win11"), guest("win10"), guest("win2k22"), guest("winxp", "pc"),
    guest("rhel9.1"), guest("rhel8.7"), guest("centos7.0"), guest("centos-stream9"),
    guest("rocky9"), guest("fedora37"), guest("debian11"), guest("ubuntu22.04"),
    guest("opensuse15.4"), guest("alpinelinux3.17"), guest("archlinux"),
    guest("freebsd13.1", "pc", memory_mib=1024),
    # virt-install's 'generic' is its own placeholder; osinfo-db's is 'unknown'.
    guest("unknown", "pc", virt_install_id="generic", virtuned_machine="q35",
          memory_mib=1024),
)


@attrs.frozen
class Variant:
    name: str
    virt_install: tuple[str, ...]
    traits: tuple[str, ...]


SECURE_BOOT = ("uefi,firmware.feature0.name=secure-boot,firmware.feature0.enabled=yes,"
               "firmware.feature1.name=enrolled-keys,firmware.feature1.enabled=yes")
VARIANTS = (
    Variant("default", (), ()),
    Variant("uefi", ("--boot", "uefi"), ("firmware uefi",)),
    Variant("secure-boot", ("--boot", SECURE_BOOT), ("firmware uefi secure-boot",)),
    Variant("tpm", ("--tpm", "emulator"), ("tpm",)),
    Variant("vnc", ("--graphics", "vnc"), ("graphics vnc",)),
    Variant("spice", ("--graphics", "spice"), ("graphics spice",)),
    Variant("none", ("--graphics", "none"), ("graphics none",)),
)


@attrs.frozen
class Case:
    os: GuestOs
    variant: Variant

    @property
    def name(self) -> str:
        return f"{self.os.short_id}/{self.variant.name}"


CASES = tuple(Case(o, v) for o in OSES for v in VARIANTS)


def virt_install_argv(case: Case) -> list[str]:
    memory = ["--memory", str(case.os.memory_mib)] if case.os.memory_mib else []
    return [*VIRT_INSTALL_ARGS, *memory, "--os-variant", case.os.virt_install_id,
            *case.variant.virt_install]


def virtuned_input(case: Case) -> str:
    if not case.os.memory_mib:
        return INPUT
    return INPUT.replace("<devices>", f'<memory unit="MiB">{case.os.memory_mib}</memory>\n'
                                      "  <devices>", 1)


def run_virt_install(cases=CASES) -> dict[str, str]:
    """What virt-install prints for each case (or its error, as 'error: ...'), in one
    Debian python process: virtinst needs Debian's gi and libvirt modules."""
    request = {"caps": str(CAPABILITIES), "runs": [
        {"name": c.name, "domcaps": str(MACHINE_DOMCAPS[c.os.machine]),
         "argv": virt_install_argv(c)} for c in cases]}
    done = subprocess.run(["/usr/bin/python3", "-I", str(RUNNER)], input=json.dumps(request),
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"virt_install_runner exited {done.returncode}: {done.stderr}")
    answer = json.loads(done.stdout)
    return {**answer["xml"], **{n: f"error: {e}" for n, e in answer["errors"].items()}}


def compile_virtuned(case: Case) -> str:
    """virtuned's domain for the case, or its error as 'error: ...' (first line)."""
    import virtuned
    from virtuned.diagnostics import VirtunedError

    machine = case.os.virtuned_machine or case.os.machine
    domcaps = MACHINE_DOMCAPS[machine]
    try:
        result = virtuned.compile(
            virtuned_input(case), traits=[f"os {case.os.short_id}", "recommended",
                                          *case.variant.traits],
            domcaps=domcaps.read_text(), domcaps_name=domcaps.name)
    except VirtunedError as exc:
        return f"error: {exc.diagnostics[0].message}"
    return result.xml


# --- the facts compared ------------------------------------------------------------

FACTS = ("machine", "firmware", "features", "hyperv", "cpu", "clock", "pm", "memory",
         "vcpus", "disk", "nic", "graphics", "video", "sound", "input", "usb", "tpm",
         "rng", "balloon", "channels", "console", "redirdev", "root ports")
NONE = "–"


def facts(xml: str) -> dict[str, str]:
    """The facts of a domain that the guest OS and the variant decide, as short text
    (an error stands in every fact)."""
    if xml.startswith("error: "):
        return dict.fromkeys(FACTS, xml)
    root = etree.fromstring(xml.encode())
    devices = root.find("devices")
    found = {}
    for name, read in _READERS.items():
        found[name] = read(root, devices) or NONE
    return found


def _join(values) -> str:
    return " ".join(v for v in values if v)


def _machine(root, devices) -> str:
    machine = root.find("os/type").get("machine", "")
    return "q35" if "q35" in machine else "pc" if machine.startswith("pc") else machine


def _firmware(root, devices) -> str:
    os_ = root.find("os")
    enabled = [f.get("name") for f in os_.iterfind("firmware/feature")
               if f.get("enabled") == "yes"]
    loader = os_.find("loader")
    loader = f"loader {loader.text}" if loader is not None else ""
    return _join([os_.get("firmware", "bios"), *sorted(enabled), loader])


def _features(root, devices) -> str:
    def one(f):
        state = f.get("state")
        return f.tag if state in (None, "on") else f"{f.tag}={state}"
    return _join(one(f) for f in root.iterfind("features/*") if f.tag != "hyperv")


def _hyperv(root, devices) -> str:
    return _join(e.tag for e in root.iterfind("features/hyperv/*")
                 if e.get("state") == "on")


def _cpu(root, devices) -> str:
    cpu = root.find("cpu")
    return "" if cpu is None else cpu.get("mode", "custom")


def _clock(root, devices) -> str:
    clock = root.find("clock")
    if clock is None:
        return ""

    def timer(t):
        setting = t.get("tickpolicy") or ("no" if t.get("present") == "no" else "yes")
        return f"{t.get('name')}={setting}"
    return _join([clock.get("offset"), *(timer(t) for t in clock.iterfind("timer"))])


def _pm(root, devices) -> str:
    return _join(f"{e.tag.removeprefix('suspend-to-')}={e.get('enabled')}"
                 for e in root.iterfind("pm/*"))


UNITS = {"KiB": 1, "K": 1, "MiB": 1024, "M": 1024, "GiB": 1024 ** 2, "G": 1024 ** 2}


def _memory(root, devices) -> str:
    memory = root.find("memory")
    if memory is None:
        return ""
    return _size(int(memory.text) * UNITS[memory.get("unit", "KiB")] * 1024)


def _vcpus(root, devices) -> str:
    vcpu = root.find("vcpu")
    return "" if vcpu is None else vcpu.text


def _models(tag: str, attribute: str = "type", path: str | None = "model"):
    """A reader of the model of every device ``tag``: ``attribute`` of its child
    ``path`` (or of the device itself); '?' where it states none."""
    def model(device) -> str:
        holder = device.find(path) if path else device
        return "?" if holder is None else holder.get(attribute, "?")

    def read(root, devices):
        return _join(model(d) for d in devices.iterfind(tag))
    return read


def _disk(root, devices) -> str:
    return _join(d.find("target").get("bus", "?") for d in devices.iterfind("disk"))


def _input(root, devices) -> str:
    return _join(f"{i.get('type')}/{i.get('bus')}" for i in devices.iterfind("input"))


def _usb(root, devices) -> str:
    return _join(c.get("model", "?") for c in devices.iterfind("controller[@type='usb']"))


def _tpm(root, devices) -> str:
    return _join(f"{t.get('model', '?')}/{t.find('backend').get('type')}"
                 for t in devices.iterfind("tpm"))


def _channels(root, devices) -> str:
    return _join(c.find("target").get("name") for c in devices.iterfind("channel"))


def _redirdev(root, devices) -> str:
    count = len(devices.findall("redirdev"))
    return f"{count} usb" if count else ""


def _root_ports(root, devices) -> str:
    count = len(devices.findall("controller[@model='pcie-root-port']"))
    return str(count) if count else ""


_READERS = {
    "machine": _machine, "firmware": _firmware, "features": _features, "hyperv": _hyperv,
    "cpu": _cpu, "clock": _clock, "pm": _pm, "memory": _memory, "vcpus": _vcpus,
    "disk": _disk, "nic": _models("interface"), "graphics": _models("graphics", path=None),
    "video": _models("video"), "sound": _models("sound", "model", None),
    "input": _input, "usb": _usb, "tpm": _tpm, "rng": _models("rng", "model", None),
    "balloon": _models("memballoon", "model", None), "channels": _channels,
    "console": _models("console", path=None), "redirdev": _redirdev,
    "root ports": _root_ports,
}
assert tuple(_READERS) == FACTS


# --- where virtuned differs, and why ---------------------------------------------------


@attrs.frozen
class Difference:
    """A rule that turns virt-install's facts of a case into virtuned's."""
    key: str
    kind: str        # "deliberate" (virtuned's choice is better) or "open" (to fix)
    title: str
    reason: str
    applies: object  # Case -> bool
    change: object   # (Case, facts) -> facts


DIFFERENCES: list[Difference] = []


def difference(key: str, kind: str, title: str, applies):
    def register(change):
        DIFFERENCES.append(Difference(key, kind, title, _doc(change), applies, change))
        return change
    return register


def _doc(function) -> str:
    import inspect
    return inspect.cleandoc(function.__doc__)


def _unexpected(key: str, fact: str, wrote: str, expected: str) -> str:
    """What a rule gives when virt-install did not write what the rule expects of it:
    a value virtuned never writes, so the comparison fails and says why."""
    return f"<{key}: virt-install wrote {fact} {wrote!r}, the rule expects {expected!r}>"


def _replace(facts: dict, key: str, fact: str, theirs: str, ours: str) -> dict:
    if facts[fact] != theirs:
        return {**facts, fact: _unexpected(key, fact, facts[fact], theirs)}
    return {**facts, fact: ours}


def _drop_word(facts: dict, key: str, fact: str, word: str) -> dict:
    words = facts[fact].split()
    if word not in words:
        return {**facts, fact: _unexpected(key, fact, facts[fact], f"... {word} ...")}
    return {**facts, fact: " ".join(w for w in words if w != word) or NONE}


def _osinfo(case: Case):
    from virtuned.facts import osinfo
    return osinfo.lookup(case.os.short_id)


def _machine_of(case: Case) -> str:
    return case.os.virtuned_machine or case.os.machine


def _without_display(case: Case) -> bool:
    return case.variant.name in ("default", "uefi", "secure-boot", "tpm")


def _secure_boot_on_pc(case: Case) -> bool:
    return case.variant.name == "secure-boot" and _machine_of(case) == "pc"


@difference("secure-boot-pc", "deliberate", "Secure Boot on a pc machine is refused",
            _secure_boot_on_pc)
def _secure_boot_pc(case, facts):
    """virt-install writes `<os firmware='efi'>` with the secure-boot feature on an
    i440fx (pc) guest, a domain that cannot start: every Secure Boot firmware
    descriptor that Debian's ovmf installs
    (`/usr/share/qemu/firmware/40-edk2-x86_64-secure-enrolled.json`,
    `50-edk2-x86_64-secure.json`) lists `"machines": ["pc-q35-*"]` and
    `requires-smm`, so libvirt finds no firmware for it at start (libvirt 9.0's
    `virsh domxml-to-native` on virt-install's freebsd13.1 domain: "Unable to find
    any firmware to satisfy 'efi'"; the q35 ones pass). virtuned refuses
    at compile time, naming the trait and hinting `machine q35` (exit code 2)."""
    return dict.fromkeys(facts, compile_virtuned(case))


@difference("display", "deliberate", "No display unless one is asked for",
            lambda case: _without_display(case) and not _secure_boot_on_pc(case))
def _display(case, facts):
    """virt-install gives every guest a SPICE display, and with it a sound card, a USB
    tablet, two USB redirection channels, the spicevmc channel and `<vmport
    state='off'/>`. virtuned's `os ID` + `recommended` decide only what the guest
    OS needs; whether there is a display at all is the management app's choice
    (`graphics spice|vnc|none`, or the `desktop` profile, which brings all of
    those). Servers, NFV guests and Kubernetes VMs run headless, and a display
    nobody asked for is an open port (SPICE listens on the host)."""
    sound = "ich9" if case.os.machine == "q35" else "ich6"  # on virt-install's machine
    facts = _replace(facts, "display", "graphics", "spice", NONE)
    facts = _replace(facts, "display", "sound", sound, NONE)
    facts = _replace(facts, "display", "redirdev", "2 usb", NONE)
    facts = _drop_word(facts, "display", "input", "tablet/usb")
    facts = _drop_word(facts, "display", "channels", "com.redhat.spice.0")
    return _drop_word(facts, "display", "features", "vmport=off")


@difference("console", "deliberate", "The serial console is a trait",
            lambda case: not _secure_boot_on_pc(case))
def _console(case, facts):
    """virt-install adds `<console type='pty'/>` to every guest. In virtuned that is
    `serial console` (in the `base` profile), which writes the serial port and
    the console together, so `virsh console` reaches the guest's ttyS0 whatever
    libvirt's defaults for a bare console are."""
    return _replace(facts, "console", "console", "pty", NONE)


@difference("root-ports", "deliberate", "PCIe hotplug headroom is a trait",
            lambda case: _machine_of(case) == "q35" and not _secure_boot_on_pc(case))
def _root_ports(case, facts):
    """virt-install adds 14 `pcie-root-port` controllers to every q35 guest. In
    virtuned that is `pcie root ports 14`, in the `base` profile: the count is
    the management app's (KubeVirt plans its own, Nova uses
    `[libvirt]num_pcie_ports`), and a guest that never hotplugs does not need
    14 empty PCIe slots in its firmware's bus scan."""
    if case.os.virtuned_machine:  # virt-install chose pc: no root ports there
        return facts
    return _replace(facts, "root-ports", "root ports", "14", NONE)


@difference("unknown-os", "deliberate", "An OS osinfo-db does not name is a modern one",
            lambda case: case.os.short_id == "unknown")
def _unknown_os(case, facts):
    """For an OS it does not know (`generic`) virt-install picks the first machine
    of the host's capabilities (`pc-i440fx-7.2`), IDE disks and an e1000 NIC: a
    2003 PC. virtuned's `unknown` (osinfo-db's own id for no particular OS) gets
    q35, SATA and e1000e, which every x86 OS of the last 15 years drives; KubeVirt
    gives every x86 guest q35, and Nova does where the operator sets
    `[libvirt]hw_machine_type = x86_64=q35` (its built-in default is still pc:
    `nova/virt/libvirt/utils.py` `get_default_machine_type`). An old OS is named
    with its id, and then gets what osinfo-db says it drives (winxp: pc, IDE,
    e1000)."""
    facts = _replace(facts, "unknown-os", "machine", "pc", "q35")
    facts = _replace(facts, "unknown-os", "disk", "ide", "sata")
    return _replace(facts, "unknown-os", "nic", "e1000", "e1000e")


def _resources_not_recommended(case: Case) -> bool:
    wanted = _osinfo(case).resources_for("x86_64")
    return not _secure_boot_on_pc(case) and not (wanted.recommended_cpus
                                                 and wanted.recommended_ram)


@difference("resources", "deliberate", "osinfo-db's numbers, not twice its minimum",
            _resources_not_recommended)
def _resources(case, facts):
    """Where osinfo-db lists a minimum but no recommendation, virt-install takes
    twice the minimum (`virtinst/osdict.py` `_get_recommended_key`, logged as an
    approximation): 2 vCPUs for most OSes here, 8 GiB and 4 vCPUs for Windows 11.
    virtuned takes the number osinfo-db states, the minimum (one vCPU where it
    states none), so the guest is what its vendor requires and no more; the
    management app sizes it above that (a flavor, an instance type), and
    virtuned warns when the input states less than the minimum."""
    wanted = _osinfo(case).resources_for("x86_64")
    if wanted.minimum_ram and not wanted.recommended_ram and not case.os.memory_mib:
        facts = _replace(facts, "resources", "memory", _size(2 * wanted.minimum_ram),
                         _size(wanted.minimum_ram))
    if facts["vcpus"] == "1":  # osinfo-db lists no vCPUs for the OS at all
        return facts
    return {**facts, "vcpus": str(int(facts["vcpus"]) // 2)}


def _size(size_bytes: int) -> str:
    kib = size_bytes // 1024
    return f"{kib // 1024 ** 2} GiB" if kib % 1024 ** 2 == 0 else f"{kib // 1024} MiB"


WINDOWS_HYPERV = ("relaxed vapic spinlocks vpindex runtime synic stimer reset frequencies "
                  "tlbflush ipi")


@difference("hyperv", "deliberate", "All the Hyper-V enlightenments Windows uses",
            lambda case: _osinfo(case).family == "windows" and not _secure_boot_on_pc(case))
def _hyperv(case, facts):
    """virt-install 4.1 gives Windows relaxed, vapic and spinlocks. virtuned adds
    vpindex, runtime, synic, stimer, reset, frequencies, tlbflush and ipi: Nova
    writes the same set but stimer (`nova/virt/libvirt/driver.py`
    `_set_features`), and virt-manager's own master branch now writes all of them
    but reset (its `tests/data/cli/compare/virt-install-win11.xml`). stimer keeps
    an idle Windows guest from burning host CPU on timer interrupts; tlbflush and
    ipi turn a TLB shootdown or an IPI into one hypercall instead of an exit per
    target vCPU. KubeVirt writes what the VMI states
    (`pkg/virt-launcher/virtwrap/converter/compute/hypervisor_features.go`).
    """
    return _replace(facts, "hyperv", "hyperv", "relaxed vapic spinlocks", WINDOWS_HYPERV)


@difference("uefi-tpm", "deliberate", "A TPM where the OS needs one or it is asked for",
            lambda case: (case.variant.name in ("uefi", "secure-boot")
                          and not _osinfo(case).requires_uefi("x86_64")
                          and not _secure_boot_on_pc(case)))
def _uefi_tpm(case, facts):
    """virt-install 4.1 adds an emulated TPM to every UEFI guest when swtpm is
    installed. virtuned adds one with `tpm` (and the `secure` and `windows`
    profiles), or where the OS boots only with UEFI and requires a TPM (win11):
    a TPM is state of its own (swtpm keeps it in a directory per guest that
    migration, backup and cloning must carry), so it is added when it is used."""
    return _replace(facts, "uefi-tpm", "tpm", "tpm-crb/emulator", NONE)


@difference("tpm-pc", "deliberate", "tpm-tis on a pc machine",
            lambda case: (_machine_of(case) == "pc" and not _secure_boot_on_pc(case)
                          and case.variant.name in ("tpm", "uefi")
                          and not (case.variant.name == "uefi"
                                   and not _osinfo(case).requires_uefi("x86_64"))))
def _tpm_pc(case, facts):
    """virt-install writes tpm-crb whatever the machine. virtuned writes tpm-crb on
    q35 and tpm-tis on pc: TIS is the interface of the i440fx era (and libvirt's
    own default model on x86), which the older OSes still installed on a pc
    machine have drivers for; CRB is a TPM 2.0-only interface."""
    return _replace(facts, "tpm-pc", "tpm", "tpm-crb/emulator", "tpm-tis/emulator")


@difference("secure-boot-smm", "deliberate", "SMM is stated with Secure Boot",
            lambda case: case.variant.name == "secure-boot" and not _secure_boot_on_pc(case))
def _secure_boot_smm(case, facts):
    """Secure Boot needs SMM, or the guest OS can write the UEFI variables it is
    meant to be protected from. virt-install leaves `<smm>` to libvirt's firmware
    auto-selection at start (which turns it on for a firmware descriptor with
    `requires-smm`); virtuned writes `<smm state='on'/>` in the domain, so the
    definition says what the guest gets and a host whose firmware descriptors
    differ cannot silently drop it."""
    words = facts["features"].split()
    return {**facts, "features": " ".join([*words, "smm"])}


@difference("video-vnc", "deliberate", "One video model per OS, whatever the display",
            lambda case: case.variant.name == "vnc")
def _video_vnc(case, facts):
    """With VNC virt-install gives an OS without virtio-gpu drivers `vga` (`bochs`
    under UEFI), and with SPICE `qxl`. virtuned gives such an OS `qxl` with any
    display (QXL is VGA-compatible and works under VNC, with 2D acceleration the
    guest has drivers for): switching the display between VNC and SPICE does not
    change the guest's hardware, so Windows does not find a new display adapter
    and lose its resolution."""
    if facts["video"] in ("vga", "bochs"):
        return {**facts, "video": "qxl"}
    return facts


@difference("display-extras", "deliberate", "SPICE brings no sound card or USB redirection",
            lambda case: case.variant.name == "spice")
def _display_extras(case, facts):
    """With SPICE, virt-install also adds a sound card and two USB redirection
    channels. virtuned's display brings what every display needs, as virt-install
    does (a USB tablet, so the guest's cursor follows the client's, and with SPICE
    `<vmport state='off'/>`: the VMware backdoor port is attack surface and a second
    absolute pointer that fights SPICE's agent), but sound and USB redirection stay
    opt-in (`sound MODEL`, the `desktop` profile): USB redirection lets a client's
    devices into the guest, and a server console needs neither."""
    sound = "ich9" if case.os.machine == "q35" else "ich6"
    facts = _replace(facts, "display-extras", "sound", sound, NONE)
    return _replace(facts, "display-extras", "redirdev", "2 usb", NONE)


def expected(case: Case, theirs: dict) -> tuple[dict, dict]:
    """What virtuned should write for the case, from virt-install's facts and the
    differences above; and for each fact, the keys of the differences that changed it."""
    facts, why = dict(theirs), {f: [] for f in FACTS}
    for rule in DIFFERENCES:
        if not rule.applies(case):
            continue
        changed = rule.change(case, facts)
        for fact in FACTS:
            if changed[fact] != facts[fact]:
                why[fact].append(rule.key)
        facts = changed
    return facts, why


def normalized(facts: dict) -> dict:
    """libvirt's defaults written out: no <vcpu> is one vCPU."""
    return {**facts, "vcpus": "1"} if facts["vcpus"] == NONE else facts


def compare_all() -> dict[str, tuple[dict, dict]]:
    """case name → (virt-install's facts, virtuned's facts), for every case."""
    theirs = run_virt_install()
    return {c.name: (normalized(facts(theirs[c.name])), normalized(facts(compile_virtuned(c))))
            for c in CASES}


# --- docs/parity.md ----------------------------------------------------------------

BEGIN = "<!-- generated: parity (python -m tests.parity --write); do not edit -->\n"
END = "<!-- end generated: parity -->\n"


def markdown(compared: dict[str, tuple[dict, dict]]) -> str:
    """The generated part of docs/parity.md: the differences, then per guest OS a
    table of facts × variants. A cell is the value both write, or virt-install's →
    virtuned's with the differences that explain it."""
    counts = {rule.key: 0 for rule in DIFFERENCES}
    tables = []
    for guest_os in OSES:
        tables += _os_table(guest_os, compared, counts)
    return "".join([*_differences_list(counts), *tables])


def _differences_list(counts: dict[str, int]) -> list[str]:
    lines = ["| difference | kind | cases | what |\n", "|---|---|---|---|\n"]
    lines += [f"| [{r.key}](#{r.key}) | {r.kind} | {counts[r.key]} | {r.title} |\n"
              for r in DIFFERENCES]
    lines.append("\n")
    for rule in DIFFERENCES:
        lines += [f"<a id=\"{rule.key}\"></a>\n", f"#### {rule.key}: {rule.title} "
                  f"({rule.kind})\n\n", rule.reason.replace("\n", " ") + "\n\n"]
    return lines


def _os_table(guest_os: GuestOs, compared, counts: dict[str, int]) -> list[str]:
    cases = [Case(guest_os, v) for v in VARIANTS]
    named = (f" (virt-install: `--os-variant {guest_os.virt_install_id}`)"
             if guest_os.virt_install_id != guest_os.short_id else "")
    rows = {fact: [] for fact in FACTS}
    for case in cases:
        theirs, ours = compared[case.name]
        _, why = expected(case, theirs)
        for key in {k for keys in why.values() for k in keys}:
            counts[key] += 1
        for fact in FACTS:
            rows[fact].append(_cell(theirs[fact], ours[fact], why[fact]))
    lines = [f"### {guest_os.short_id}{named}\n\n",
             "| fact | " + " | ".join(v.name for v in VARIANTS) + " |\n",
             "|---" * (len(VARIANTS) + 1) + "|\n"]
    lines += [f"| {fact} | " + " | ".join(cells) + " |\n" for fact, cells in rows.items()]
    return [*lines, "\n"]


def _cell(theirs: str, ours: str, keys: list[str]) -> str:
    if theirs == ours:
        return _shown(theirs)
    links = ", ".join(f"[{k}](#{k})" for k in keys) or "**unexplained**"
    return f"{_shown(theirs)} → {_change(theirs, ours)} ({links})"


def _change(theirs: str, ours: str) -> str:
    """virtuned's value, as the words it adds (+) or drops (−) where that is all."""
    before, after = theirs.split(), ours.split()
    if NONE not in (theirs, ours) and set(before) < set(after):
        return "+" + " ".join(w for w in after if w not in before)
    if NONE not in (theirs, ours) and set(after) < set(before):
        return "−" + " ".join(w for w in before if w not in after)
    return _shown(ours)


def _shown(value: str) -> str:
    return "refused" if value.startswith("error: ") else value.replace("|", "\\|")


def replace_generated(text: str, part: str) -> str:
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    if not rest or END not in rest:
        raise ValueError(f"{DOC}: the markers of the generated part are missing")
    return head + BEGIN + part + END + tail


def main(argv: list[str]) -> int:
    part = markdown(compare_all())
    if argv == ["--write"]:
        DOC.write_text(replace_generated(DOC.read_text(), part))
    elif not argv:
        sys.stdout.write(part)
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
