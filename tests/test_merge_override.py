"""--override over every trait of the registry (virtuned/merge.py, emit/pinning.py):
an input that states another value than a trait asks is a conflict (exit 3) without
--override; with it the trait's value replaces the input's and each replaced value
is a warning. Every trait is here: with a value an input states otherwise, or
named with the reason it has none."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli_run import run

ROOT = Path(__file__).resolve().parents[1]
HOST = str(ROOT / "examples/hosts/test-driver.xml")

# A domain as `virsh dumpxml` writes one: every value stated, in libvirt's quotes.
DOMAIN = """<domain type='kvm'>
  <name>dumped</name>
  <uuid>4dea22b3-1d52-d8f3-2516-782e98ab3fa0</uuid>
  <memory unit='KiB'>1048576</memory>
  <currentMemory unit='KiB'>1048576</currentMemory>
  {top}<vcpu placement='static'{vcpu}>2</vcpu>
  {tune}<os>
    <type arch='x86_64' machine='{machine}'>hvm</type>
  </os>
  <features>
    <acpi/>
    <apic/>{features}
  </features>
  {cpu}<clock offset='utc'/>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>{devices}
  </devices>
</domain>
"""
MACHINES = {"q35": "pc-q35-7.2", "pc": "pc-i440fx-7.2"}


def domain(machine: str, **parts: str) -> str:
    parts = {"top": "", "vcpu": "", "tune": "", "features": "", "cpu": "", "devices": "",
             **parts}
    return DOMAIN.format(machine=MACHINES[machine], **parts)


def disk(driver: str = "", bus: str = "virtio") -> str:
    return (f"\n    <disk type='file' device='disk'>{driver}<source file='/var/lib/libvirt/"
            f"images/dumped.img'/><target dev='vda' bus='{bus}'/></disk>")


def nic(driver: str) -> str:
    return (f"\n    <interface type='network'><mac address='52:54:00:6b:3c:58'/><source "
            f"network='default'/><model type='virtio'/>{driver}</interface>")


PINNED = {"vcpu": " cpuset='12-13'", "tune": (
    "<cputune>\n    <vcpupin vcpu='0' cpuset='12'/>\n    <vcpupin vcpu='1' cpuset='13'/>\n"
    "    <emulatorpin cpuset='12-13'/>\n  </cputune>\n  <numatune>\n"
    "    <memory mode='strict' nodeset='1'/>\n  </numatune>\n  ")}
PIN_MOVES = ["/domain/vcpu/@cpuset was '12-13', now '0-1'",
             "/domain/cputune/vcpupin[1]/@cpuset was '12', now '0'",
             "/domain/cputune/vcpupin[2]/@cpuset was '13', now '1'",
             "/domain/cputune/emulatorpin/@cpuset was '12-13', now '0-1'",
             "/domain/numatune/memory/@nodeset was '1', now '0'"]

CELLS = ("<cpu mode='host-passthrough'>\n    <numa>\n      <cell id='0' cpus='0-1' "
         "memory='1048576' unit='KiB'/>\n    </numa>\n  </cpu>\n  ")


# phrase → (trait text, parts of the input, more arguments, what --override replaces:
# each warning's text after "overrides the input: ")
CASES = {
    "machine {type:q35|pc}": (
        {"q35": "machine pc", "pc": "machine q35"}, {}, [],
        {"q35": ["/domain/os/type/@machine was 'pc-q35-7.2', now 'pc'"],
         "pc": ["/domain/os/type/@machine was 'pc-i440fx-7.2', now 'q35'"]}),
    "disk bus {bus:virtio|sata|scsi|ide}": (
        "disk bus virtio", {"devices": disk(bus="sata")}, [],
        ["/domain/devices/disk[1]/target/@bus was 'sata', now 'virtio'"]),
    "graphics {type:spice|vnc|none}": (
        "graphics none", {"devices": (
            "\n    <channel type='spicevmc'><target type='virtio' name='com.redhat.spice.0'/>"
            "</channel>\n    <graphics type='spice' autoport='yes'/>")}, [],
        ["/domain/devices/channel[1] was <channel type=\"spicevmc\"><target type=\"virtio\" "
         "name=\"com.redhat.spice.0\"/></channel>, now removed",
         "/domain/devices/graphics[1] was <graphics type=\"spice\" autoport=\"yes\"/>, "
         "now removed"]),
    "memory encryption": (  # SEV needs q35: on pc, 'machine q35' replaces the machine
        {"q35": "memory encryption", "pc": "machine q35\nmemory encryption"},
        {"top": "<launchSecurity type='s390-pv'/>\n  "}, [],
        {"q35": ["/domain/launchSecurity was <launchSecurity type=\"s390-pv\"/>, "
                 "now removed"],
         "pc": ["/domain/os/type/@machine was 'pc-i440fx-7.2', now 'q35'",
                "/domain/launchSecurity was <launchSecurity type=\"s390-pv\"/>, "
                "now removed"]}),
    "device numa affinity": (
        "device numa affinity", {"tune": (
            "<numatune>\n    <memnode cellid='0' mode='strict' nodeset='0'/>\n"
            "  </numatune>\n  "), "cpu": CELLS, "devices": (
            "\n    <hostdev mode='subsystem' type='pci' managed='yes'><source><address "
            "domain='0x0000' bus='0x3b' slot='0x00' function='0x0'/></source><address "
            "type='pci' domain='0x0000' bus='0x00' slot='0x05' function='0x0'/></hostdev>")},
        ["--device-node", "0000:3b:00.0=0"],
        ["/domain/devices/hostdev[1]/address was <address type=\"pci\" domain=\"0x0000\" "
         "bus=\"0x00\" slot=\"0x05\" function=\"0x0\"/>, now removed"]),
    "vmcoreinfo": (
        "vmcoreinfo", {"features": "\n    <vmcoreinfo state='off'/>"}, [],
        ["/domain/features/vmcoreinfo/@state was 'off', now 'on'"]),
    "clock {offset:utc|localtime}": (
        "clock localtime", {}, [], ["/domain/clock/@offset was 'utc', now 'localtime'"]),
    "memory balloon {state:on|off}": (
        "memory balloon off", {"devices": "\n    <memballoon model='virtio'/>"}, [],
        ["/domain/devices/memballoon/@model was 'virtio', now 'none'"]),
    "free page reporting": (
        "free page reporting",
        {"devices": "\n    <memballoon model='virtio' freePageReporting='off'/>"}, [],
        ["/domain/devices/memballoon/@freePageReporting was 'off', now 'on'"]),
    "usb controller {model:qemu-xhci|nec-xhci|ich9-ehci1|piix3-uhci}": (
        "usb controller qemu-xhci",
        {"devices": "\n    <controller type='usb' index='0' model='nec-xhci'/>"}, [],
        ["/domain/devices/controller[1]/@model was 'nec-xhci', now 'qemu-xhci'"]),
    "network model {model:virtio|e1000e|e1000|rtl8139}": (
        "network model e1000e", {"devices": nic("")}, [],
        ["/domain/devices/interface[1]/model/@type was 'virtio', now 'e1000e'"]),
    "network queues {count:int}": (
        "network queues 4", {"devices": nic("<driver name='vhost' queues='2'/>")}, [],
        ["/domain/devices/interface[1]/driver/@queues was '2', now '4'"]),
    "network queues {count:auto}": (
        "network queues auto", {"devices": nic("<driver name='vhost' queues='4'/>")}, [],
        ["/domain/devices/interface[1]/driver/@queues was '4', now '2'"]),
    "network ring size {size:int}": (
        "network ring size 512",
        {"devices": nic("<driver rx_queue_size='256' tx_queue_size='256'/>")}, [],
        ["/domain/devices/interface[1]/driver/@rx_queue_size was '256', now '512'"]),
    "firmware {kind:bios|uefi} [{secure:secure-boot}]": (  # <os firmware='efi'>: input_of
        "firmware bios", {}, [], ["/domain/os/@firmware was 'efi', now 'bios'"]),
    "watchdog {model:i6300esb|ib700} action {action:reset|shutdown|poweroff|pause|none|"
    "dump|inject-nmi}": (
        "watchdog i6300esb action reset",
        {"devices": "\n    <watchdog model='i6300esb' action='poweroff'/>"}, [],
        ["/domain/devices/watchdog[1]/@action was 'poweroff', now 'reset'"]),
    "disk cache {mode:none|writeback|writethrough|directsync|unsafe}": (
        "disk cache none", {"devices": disk("<driver name='qemu' type='raw' "
                                           "cache='writeback'/>")}, [],
        ["/domain/devices/disk[1]/driver/@cache was 'writeback', now 'none'"]),
    "disk io {mode:native|threads|io_uring}": (
        "disk io threads", {"devices": disk("<driver name='qemu' type='raw' cache='none' "
                                           "io='native'/>")}, [],
        ["/domain/devices/disk[1]/driver/@io was 'native', now 'threads'"]),
    "disk discard {mode:unmap|ignore}": (
        "disk discard unmap", {"devices": disk("<driver name='qemu' type='raw' "
                                              "discard='ignore'/>")}, [],
        ["/domain/devices/disk[1]/driver/@discard was 'ignore', now 'unmap'"]),
    "os {id:osinfo}": (
        "os fedora37", {"top": (
            "<metadata>\n    <libosinfo:libosinfo xmlns:libosinfo='http://libosinfo.org/"
            "xmlns/libvirt/domain/1.0'>\n      <libosinfo:os id='http://redhat.com/rhel/9.0'"
            "/>\n    </libosinfo:libosinfo>\n  </metadata>\n  ")}, [],
        ["/domain/metadata/libosinfo:libosinfo/libosinfo:os/@id was "
         "'http://redhat.com/rhel/9.0', now 'http://fedoraproject.org/fedora/37'"]),
    "dedicated cpus [threads {threads:prefer|isolate|require}]": (
        "dedicated cpus", PINNED, ["--host", HOST], PIN_MOVES),
    "shared cpus": (
        "shared cpus", PINNED, ["--host", HOST],
        ["/domain/vcpu/@cpuset was '12-13', now '0-15'",
         "/domain/cputune/emulatorpin/@cpuset was '12-13', now '0-15'",
         "/domain/cputune/vcpupin[1] was <vcpupin vcpu=\"0\" cpuset=\"12\"/>, now removed",
         "/domain/cputune/vcpupin[2] was <vcpupin vcpu=\"1\" cpuset=\"13\"/>, now removed",
         "/domain/numatune/memory was <memory mode=\"strict\" nodeset=\"1\"/>, "
         "now removed"]),
    "emulator threads {policy:isolated|shared}": (
        "emulator threads isolated", {"tune": "<cputune>\n    <emulatorpin cpuset='12'/>\n"
                                              "  </cputune>\n  "}, ["--host", HOST],
        ["/domain/cputune/emulatorpin/@cpuset was '12', now '0'"]),
    "place on host node {node:int}": (
        "place on host node 0", PINNED, ["--host", HOST],
        ["/domain/vcpu/@cpuset was '12-13', now '0-7'",
         "/domain/cputune/emulatorpin/@cpuset was '12-13', now '0-7'",
         "/domain/numatune/memory/@nodeset was '1', now '0'",
         "/domain/cputune/vcpupin[1] was <vcpupin vcpu=\"0\" cpuset=\"12\"/>, now removed",
         "/domain/cputune/vcpupin[2] was <vcpupin vcpu=\"1\" cpuset=\"13\"/>, now removed"]),
    "iothreads {count:int}": (
        "iothreads 4", {"top": "<iothreads>2</iothreads>\n  "}, [],
        ["/domain/iothreads was '2', now '4'"]),
    "realtime": (
        "realtime\ndedicated cpus", {"tune": (
            "<cputune>\n    <vcpusched vcpus='0-1' scheduler='fifo' priority='5'/>\n"
            "  </cputune>\n  ")}, [],
        ["/domain/cputune/vcpusched/@priority was '5', now '1'"]),
    "cpu topology sockets {sockets:int} cores {cores:int} threads {threads:int}": (
        "cpu topology sockets 1 cores 2 threads 1", {"cpu": (
            "<cpu mode='host-passthrough'>\n    <topology sockets='2' dies='1' cores='1' "
            "threads='1'/>\n  </cpu>\n  ")}, [],
        ["/domain/cpu/topology/@sockets was '2', now '1'",
         "/domain/cpu/topology/@cores was '1', now '2'"]),
    "cpu mode {mode:host-passthrough|host-model|maximum}": (
        "cpu mode host-model", {"cpu": "<cpu mode='host-passthrough'/>\n  "}, [],
        ["/domain/cpu/@mode was 'host-passthrough', now 'host-model'"]),
    "vcpus {count:int}": ("vcpus 4", {}, [], ["/domain/vcpu was '2', now '4'"]),
    "guest numa nodes {count:int}": (
        "guest numa nodes 1", {"cpu": (
            "<cpu mode='host-passthrough'>\n    <numa>\n      <cell id='0' cpus='0' "
            "memory='524288' unit='KiB'/>\n      <cell id='1' cpus='1' memory='524288' "
            "unit='KiB'/>\n    </numa>\n  </cpu>\n  ")}, [],
        ["/domain/cpu/numa/cell/@cpus was '0', now '0-1'",  # where it is now
         "/domain/cpu/numa/cell/@memory was '524288', now '1048576'",
         "/domain/cpu/numa/cell[2] was <cell id=\"1\" cpus=\"1\" memory=\"524288\" "
         "unit=\"KiB\"/>, now removed"]),
    "hugepages {size:size}": (
        "hugepages 1GiB", {"top": (
            "<memoryBacking>\n    <hugepages>\n      <page size='2048' unit='KiB'/>\n"
            "    </hugepages>\n  </memoryBacking>\n  ")}, [],
        ["/domain/memoryBacking/hugepages/page/@size was '2048', now '1048576'"]),
    "memory allocation {mode:immediate|ondemand}": (
        "memory allocation immediate", {"top": (
            "<memoryBacking>\n    <allocation mode='ondemand'/>\n  </memoryBacking>\n  ")},
        [], ["/domain/memoryBacking/allocation/@mode was 'ondemand', now 'immediate'"]),
    "memory {size:size}": (
        "memory 2GiB", {}, [], ["/domain/memory was '1048576', now '2097152'",
                                "/domain/currentMemory was '1048576', now '2097152'"]),
}

# Traits that add a device or feature of their own and keep one the input has as it
# is (their docs say so): the input cannot state another value of theirs.
NO_STATED_VALUE = {
    "guest agent": "its channel is kept as the input has it",
    "pvpanic": "adds a pvpanic device unless the input has one",
    "rng {model:virtio}": "keeps the input's virtio RNG, whatever its backend",
    "usb tablet": "keeps the input's tablet",
    "serial console": "adds what the input lacks: the serial port, the console",
    "sound {model:ich9|ich6|ac97|es1370|sb16|usb}": "adds its card beside the input's",
    "video {model:vga|cirrus|vmvga|qxl|virtio|bochs|ramfb|none}":
        "adds a second video beside another model (upstream's rule)",
    "tpm": "keeps the input's TPM of any model",
    "hyperv enlightenments": "keeps the input's <hyperv> as it is",
    "iommu": "keeps the input's IOMMU as it is",
    "pcie root ports {count:int}": "at least N: the input's root ports count",
    "locked memory": "a flag: the input has it or not",
    "recommended": "its traits are preferences, which never override",
}

# Traits whose refusal of the input is about devices the input has, not a value:


def input_of(phrase: str, machine: str) -> str:
    parts = CASES[phrase][1]
    text = domain(machine, **parts)
    if phrase.startswith("firmware"):
        text = text.replace("<os>", "<os firmware='efi'>", 1)
    return text


def traits_of(phrase: str, machine: str) -> list[str]:
    text = CASES[phrase][0]
    text = text[machine] if isinstance(text, dict) else text
    return [arg for line in text.splitlines() for arg in ("-t", line)]


def replaced_of(phrase: str, machine: str) -> list[str]:
    replaced = CASES[phrase][3]
    return replaced[machine] if isinstance(replaced, dict) else replaced


def overrides(err: str) -> list[str]:
    return [line.split(" overrides the input: ", 1)[1] for line in err.splitlines()
            if " overrides the input: " in line]


def test_every_trait_is_here():
    import virtuned.vocab  # noqa: F401  (registers the traits)
    from virtuned.resolve import registry

    phrases = {d.phrase for d in registry.all_traits()}
    named = [*CASES, *NO_STATED_VALUE]
    assert (sorted(phrases - set(named)), len(named)) == ([], len(set(named)))


@pytest.mark.parametrize("machine", ["q35", "pc"])
@pytest.mark.parametrize("phrase", list(CASES))
def test_override_replaces_what_the_input_states(tmp_path, phrase, machine):
    (tmp_path / "in.xml").write_text(input_of(phrase, machine))
    argv = ["compile", "in.xml", *traits_of(phrase, machine), *CASES[phrase][2]]
    code, out, err = run(argv, cwd=tmp_path)
    assert (code, out) == (3, "")
    first = err.splitlines()[0]  # the conflict: "'TRAIT' wants X, but the input ..."
    assert (": error: '" in first, " wants " in first, overrides(err)) == (True, True, [])
    code, out, err = run([*argv, "--override"], cwd=tmp_path)
    assert (code, overrides(err)) == (0, replaced_of(phrase, machine)), err


def test_what_override_writes_passes_libvirt(tmp_path):
    from tests.libvirt import assert_libvirt_accepts, check_with_libvirt
    from tests.vocab.test_memory_encryption import SEV_REFUSED

    outputs = {}
    for phrase in CASES:
        for machine in ("q35", "pc"):
            (tmp_path / "in.xml").write_text(input_of(phrase, machine))
            code, out, err = run(["compile", "in.xml", *traits_of(phrase, machine),
                                  *CASES[phrase][2], "--override"], cwd=tmp_path)
            assert code == 0, err
            outputs[f"{phrase.split(' {')[0]} on {machine}"] = out
    # SEV passes libvirt's QEMU driver only on a host that has it; on any other the
    # missing hardware is all it finds wrong (tests/vocab/test_memory_encryption.py).
    sev = {name: outputs.pop(name) for name in list(outputs)
           if name.startswith("memory encryption")}
    verdicts = {(r.rng, r.qemu, r.qemu_error) for r in check_with_libvirt(sev).values()}
    assert len(verdicts) == 1 and verdicts <= {SEV_REFUSED, ("PASS", "PASS", None)}
    assert_libvirt_accepts(outputs)


# ---------------------------------------------------------------- memory SIZE

def compile_memory(tmp_path, memory: str, *traits: str, cells: str = "",
                   override: bool = True):
    text = DOMAIN.format(machine=MACHINES["q35"], top="", vcpu="", tune="", features="",
                         devices="", cpu=cells)
    text = text.replace("  <memory unit='KiB'>1048576</memory>\n"
                        "  <currentMemory unit='KiB'>1048576</currentMemory>\n", memory)
    (tmp_path / "in.xml").write_text(text)
    return run(["compile", "in.xml", *[a for t in traits for a in ("-t", t)],
                *(["--override"] if override else [])], cwd=tmp_path)


def test_memory_in_other_units_is_the_same_memory(tmp_path):
    """4194304 KiB is 4 GiB: nothing to override, nothing changes."""
    stated = ("  <memory unit='KiB'>4194304</memory>\n"
              "  <currentMemory unit='KiB'>4194304</currentMemory>\n")
    for override in (True, False):
        code, out, err = compile_memory(tmp_path, stated, "memory 4GiB", override=override)
        assert (code, err) == (0, "")
        assert stated in out


def test_memory_keeps_the_inputs_unit_where_it_writes_the_size_whole(tmp_path):
    code, out, err = compile_memory(tmp_path, "  <memory unit='GiB'>4</memory>\n",
                                    "memory 8GiB")
    assert (code, overrides(err)) == (0, ["/domain/memory was '4', now '8'"])
    assert "  <memory unit='GiB'>8</memory>\n" in out
    code, out, err = compile_memory(tmp_path, "  <memory unit='GiB'>4</memory>\n",
                                    "memory 1536MiB")
    assert (code, overrides(err)) == (0, ["/domain/memory was '4', now '1572864'",
                                          "/domain/memory/@unit was 'GiB', now 'KiB'"])
    assert "  <memory unit='KiB'>1572864</memory>\n" in out


def test_a_ballooned_current_memory_below_the_new_size_stays(tmp_path):
    """<currentMemory> is the balloon's target: below the memory on purpose, it
    stays unless it would be more than the new size."""
    stated = ("  <memory unit='KiB'>2097152</memory>\n"
              "  <currentMemory unit='KiB'>1048576</currentMemory>\n")
    code, out, err = compile_memory(tmp_path, stated, "memory 4GiB")
    assert (code, overrides(err)) == (0, ["/domain/memory was '2097152', now '4194304'"])
    assert "<currentMemory unit='KiB'>1048576</currentMemory>" in out
    code, out, err = compile_memory(tmp_path, stated, "memory 512MiB")
    assert (code, overrides(err)) == (0, [
        "/domain/memory was '2097152', now '524288'",
        "/domain/currentMemory was '1048576', now '524288'"])


def test_memory_over_the_inputs_guest_cells_needs_them_split_again(tmp_path):
    """libvirt makes <memory> the sum of the guest cells': 'memory' alone cannot
    say how to split it, so it is a conflict even with --override; with 'guest numa
    nodes N' the cells are split again."""
    memory = "  <memory unit='KiB'>1048576</memory>\n"
    code, out, err = compile_memory(tmp_path, memory, "memory 2GiB", cells=CELLS)
    assert (code, out, err.splitlines()[0]) == (3, "", (
        "<trait 1>:1:1: error: 'memory 2GiB' wants 2GiB of memory, but the input's "
        "guest NUMA cells hold 1GiB"))
    code, out, err = compile_memory(tmp_path, memory, "memory 2GiB", "guest numa nodes 2",
                                    cells=CELLS)
    assert (code, overrides(err)) == (0, [
        "/domain/cpu/numa/cell[1]/@cpus was '0-1', now '0'",
        "/domain/memory was '1048576', now '2097152'"])
    assert ("      <cell id='0' cpus='0' memory='1048576' unit='KiB'/>\n"
            "      <cell id='1' cpus='1' memory='1048576' unit='KiB'/>\n") in out


def test_memory_beyond_the_inputs_hotplug_ceiling_stays_a_conflict(tmp_path):
    """libvirt refuses a <memory> above <maxMemory>: --override does not raise the
    ceiling the input sets for memory hotplug."""
    stated = ("  <maxMemory slots='16' unit='KiB'>4194304</maxMemory>\n"
              "  <memory unit='KiB'>2097152</memory>\n")
    code, out, err = compile_memory(tmp_path, stated, "memory 8GiB")
    assert (code, out, err.splitlines()[0]) == (3, "", (
        "<trait 1>:1:1: error: 'memory 8GiB' wants 8GiB of memory, but the input's "
        "<maxMemory> (memory hotplug) is 4GiB"))
    code, out, err = compile_memory(tmp_path, stated, "memory 4GiB")
    assert (code, overrides(err)) == (0, ["/domain/memory was '2097152', now '4194304'"])


def test_a_preference_neither_replaces_nor_sizes_the_guest_with_override(tmp_path):
    """--override lets required traits win; a preferred size that the input states
    otherwise is dropped, and the guest is planned with the input's (not cells of
    the preference's memory, nor pins for its vCPUs)."""
    (tmp_path / "prefer.vt").write_text("prefer memory 2GiB\nprefer vcpus 4\n")
    (tmp_path / "in.xml").write_text(domain("q35"))
    code, out, err = run(["compile", "in.xml", "-p", "prefer.vt", "-t", "guest numa nodes 2",
                          "-t", "dedicated cpus", "--host", HOST, "--override"], cwd=tmp_path)
    assert code == 0, err
    assert [line for line in err.splitlines() if ": warning: " in line] == [
        "prefer.vt:1:1: warning: preference 'memory 2GiB' dropped: it cannot hold: "
        "'memory 2GiB' wants 2GiB of memory, but the guest has 1GiB",
        "prefer.vt:2:1: warning: preference 'vcpus 4' dropped: 'vcpus 4' wants "
        "/domain/vcpu = '4', but the input states /domain/vcpu = '2'"]
    assert ("      <cell id='0' cpus='0' memory='524288' unit='KiB'/>\n"
            "      <cell id='1' cpus='1' memory='524288' unit='KiB'/>\n") in out
    assert "vcpu='2'" not in out
