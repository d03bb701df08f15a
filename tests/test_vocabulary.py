"""The whole vocabulary, on pc and q35: every trait and every pair of traits compiles
to XML that libvirt's schema and QEMU driver accept, or is refused with the exit
code its rule gives; re-applying a trait changes nothing; and a smoke subset boots
(paused, under TCG)."""

from __future__ import annotations

import itertools
from pathlib import Path

from tests.cli_run import run
from virtuned.resolve import registry

GOLDEN = Path(__file__).parent / "golden"
INPUT = (GOLDEN / "devices/tpm-q35/input.xml").read_text()  # disk, cdrom, user NIC
MACHINES = ("q35", "pc")

# Trait texts that together use every trait and the values that behave differently.
SAMPLES = (
    "video vga", "video qxl", "video virtio", "video bochs", "video none",
    "disk bus virtio", "disk bus sata", "disk bus scsi", "disk bus ide",
    "guest agent", "vmcoreinfo", "pvpanic", "clock utc", "clock localtime",
    "rng virtio", "memory balloon on", "memory balloon off", "free page reporting",
    "usb controller qemu-xhci", "usb controller ich9-ehci1", "usb tablet",
    "serial console", "graphics spice", "graphics vnc", "graphics none",
    "sound ich9", "sound ac97", "network model virtio", "network model e1000e",
    "network model rtl8139", "firmware bios", "firmware uefi",
    "firmware uefi secure-boot", "tpm", "hyperv enlightenments",
    "watchdog i6300esb action reset", "watchdog ib700 action poweroff", "iommu",
    "pcie root ports 4", "disk cache none", "disk cache writeback", "disk io native",
    "disk io io_uring", "network model virtio\nnetwork queues 2",
    "network model virtio\nnetwork queues auto",
    "network model virtio\nnetwork ring size 512", "os win11\nrecommended",
    "os fedora37\nrecommended", "memory encryption",
    "device numa affinity",  # no host device here: see tests/golden/numa/
    # The planner's traits, without --host (phase one: what holds on every host;
    # placement itself is in tests/golden/placement/). INPUT has 2 vCPUs and 2 GiB.
    "dedicated cpus threads isolate", "shared cpus", "dedicated cpus\nrealtime",
    "emulator threads isolated", "iothreads 2", "place on host node 0",
    "guest numa nodes 2", "hugepages 2MiB", "locked memory", "memory 2GiB", "vcpus 2",
    "cpu topology sockets 1 cores 2 threads 1", "cpu mode host-passthrough",
)

# Why a sample cannot be on a machine (exit 2 alone and in every pair there).
MACHINE_RULES = {
    "disk bus ide": "pc",  # q35 has no IDE bus
    "firmware uefi secure-boot": "q35",  # OVMF's Secure Boot builds are q35 only
    "iommu": "q35",  # the virtual Intel IOMMU needs q35
    "pcie root ports 4": "q35",
    "memory encryption": "q35",  # AMD SEV guests need q35 and UEFI
}

# Pairs that cannot go together, and the exit code that says so.
PAIR_RULES = {
    frozenset(pair): code for code, pairs in {
        3: [  # two traits decide one thing differently
            ("video vga", "video bochs"), ("video vga", "video none"),
            ("video qxl", "video none"), ("video virtio", "video none"),
            ("video bochs", "video none"),
            ("disk bus virtio", "disk bus sata"), ("disk bus virtio", "disk bus scsi"),
            ("disk bus virtio", "disk bus ide"), ("disk bus sata", "disk bus scsi"),
            ("disk bus sata", "disk bus ide"), ("disk bus scsi", "disk bus ide"),
            ("clock utc", "clock localtime"),
            ("memory balloon on", "memory balloon off"),
            ("memory balloon off", "free page reporting"),
            ("usb controller qemu-xhci", "usb controller ich9-ehci1"),
            ("graphics spice", "graphics vnc"), ("graphics spice", "graphics none"),
            ("graphics vnc", "graphics none"),
            ("sound ich9", "sound ac97"),
            ("network model virtio", "network model e1000e"),
            ("network model virtio", "network model rtl8139"),
            ("network model e1000e", "network model rtl8139"),
            ("firmware bios", "firmware uefi"),
            ("firmware bios", "firmware uefi secure-boot"),
            ("firmware bios", "memory encryption"),
            ("disk cache none", "disk cache writeback"),
            ("disk cache writeback", "disk io native"),
            ("disk io native", "disk io io_uring"),
            ("watchdog i6300esb action reset", "watchdog ib700 action poweroff"),
            ("network model virtio\nnetwork queues 2",
             "network model virtio\nnetwork queues auto"),
            ("os win11\nrecommended", "os fedora37\nrecommended"),
            # one CPU policy: dedicated (with or without a thread policy) or shared
            ("dedicated cpus threads isolate", "shared cpus"),
            ("dedicated cpus threads isolate", "dedicated cpus\nrealtime"),
            ("shared cpus", "dedicated cpus\nrealtime"),
        ],
    }.items() for pair in pairs
}


def _with_queues(pair):
    """A NIC model other than virtio conflicts with the driver samples' virtio."""
    models = ("network model e1000e", "network model rtl8139")
    queues = [s for s in pair if "network queues" in s or "network ring" in s]
    return queues and any(s in models for s in pair)


def expected_exit(texts: tuple[str, ...], machine: str) -> int:
    """Conflicts are found when traits are resolved, before any trait looks at the
    machine, so they win over a machine that cannot have a trait."""
    if len(texts) == 2 and (PAIR_RULES.get(frozenset(texts)) or _with_queues(texts)):
        return 3
    if any(MACHINE_RULES.get(text, machine) != machine for text in texts):
        return 2
    return 0


def compile_texts(texts, machine: str, tmp_path, domain: str = INPUT):
    (tmp_path / "in.xml").write_text(domain)
    argv = ["compile", "in.xml", "-t", f"machine {machine}"]
    for text in texts:
        argv += ["-t", text]
    return run(argv, cwd=tmp_path)


def test_the_samples_use_every_trait():
    lines = [line for sample in SAMPLES for line in sample.splitlines()]
    names = {d.name for d in registry.all_traits()}
    missing = sorted(n for n in names
                     if not any(f"{line} ".startswith(f"{n} ") for line in lines))
    assert missing == ["machine"]  # the machine is the other axis of every test here


def test_every_trait_has_a_one_line_summary():
    """'virtuned traits' shows the first line of each trait's documentation."""
    unfinished = [d.phrase for d in registry.all_traits()
                  if not (d.doc.strip().split("\n\n")[0].endswith(".")
                          and "\n" not in d.doc.strip().split("\n\n")[0])]
    assert unfinished == []


def test_every_trait_and_every_pair_on_pc_and_q35_passes_libvirt(tmp_path):
    from tests.libvirt import check_with_libvirt
    from tests.test_memory_encryption import SEV_REFUSED

    outputs, wrong = {}, []
    combinations = [(s,) for s in SAMPLES] + list(itertools.combinations(SAMPLES, 2))
    for texts in combinations:
        for machine in MACHINES:
            code, out, err = compile_texts(texts, machine, tmp_path)
            label = " + ".join(t.replace("\n", " & ") for t in texts) + f" @{machine}"
            if code != expected_exit(texts, machine):
                wrong.append(f"{label}: exit {code}, expected "
                             f"{expected_exit(texts, machine)}\n{err}")
            elif code == 0:
                outputs[label] = out
    assert not wrong, f"{len(wrong)} unexpected results:\n" + "\n".join(wrong[:20])
    # of 2 * (n + n(n-1)/2): the rules above refuse few
    assert len(outputs) >= 0.85 * len(combinations) * len(MACHINES)
    results = check_with_libvirt(outputs)  # one run of libvirt for all of them
    sev = {label for label in outputs if "memory encryption" in label}
    rejected = {label: r.problems() for label, r in results.items()
                if label not in sev and not r.ok}
    assert rejected == {}
    verdicts = {(results[label].rng, results[label].qemu, results[label].qemu_error)
                for label in sev}
    # alone and with every other sample, on q35, but for firmware bios and disk bus ide
    assert len(sev) == len(SAMPLES) - 2 and verdicts in ({SEV_REFUSED}, {("PASS", "PASS", None)})


# Values for slots that are not choices, by trait name (by slot name when a trait
# has several).
VALUES = {"pcie root ports": "4", "network queues": "2", "network ring size": "512",
          "os": "fedora37", "iothreads": "2", "place on host node": "0",
          "guest numa nodes": "2", "hugepages": "1GiB", "memory": "2GiB", "vcpus": "2",
          "cpu topology sockets": {"sockets": "2", "cores": "1", "threads": "1"}}
# What a trait line needs beside it to be valid at all.
NEEDS = {"network queues": "network model virtio", "network ring size":
         "network model virtio", "recommended": "os fedora37",
         "realtime": "dedicated cpus"}


def every_line(definition) -> list[str]:
    """Every trait line a definition accepts: each choice, with and without each
    optional group; other slots take VALUES."""
    def expand(tokens) -> list[list[str]]:
        lines: list[list[str]] = [[]]
        for token in tokens:
            if isinstance(token, str):
                options = [[token]]
            elif isinstance(token, registry.Slot):
                given = VALUES.get(definition.name)
                given = given[token.name] if isinstance(given, dict) else given
                options = [[value] for value in token.choices or (given,)]
            else:
                options = [[]] + expand(token.tokens)
            lines = [line + option for line in lines for option in options]
        return lines

    return [" ".join(words) for words in expand(definition.tokens)]


def test_every_value_of_every_trait_alone_passes_libvirt(tmp_path):
    from tests.libvirt import check_with_libvirt
    from tests.test_memory_encryption import SEV_REFUSED

    outputs, refused = {}, []
    for definition in registry.all_traits():
        if definition.name == "machine":
            continue
        for line in every_line(definition):
            for machine in MACHINES:
                need = [NEEDS[definition.name]] if definition.name in NEEDS else []
                code, out, err = compile_texts((line, *need), machine, tmp_path)
                if code:
                    refused.append(f"{line} @{machine}: exit {code}")
                else:
                    outputs[f"{line} @{machine}"] = out
    assert refused == [
        "disk bus ide @q35: exit 2", "firmware bios secure-boot @q35: exit 2",
        "firmware bios secure-boot @pc: exit 2", "firmware uefi secure-boot @pc: exit 2",
        "iommu @pc: exit 2", "pcie root ports 4 @pc: exit 2",
        "memory encryption @pc: exit 2"]
    verdicts = {name: (r.rng, r.qemu, r.qemu_error) if not r.ok else "ok"
                for name, r in check_with_libvirt(outputs).items()}
    assert {name: v for name, v in verdicts.items() if v != "ok"} in (
        {"memory encryption @q35": SEV_REFUSED}, {})


def test_reapplying_a_trait_changes_nothing(tmp_path):
    """... and warns the same (a placing trait without --host warns each time)."""
    for text in SAMPLES:
        for machine in MACHINES:
            if expected_exit((text,), machine):
                continue
            code, once, warned = compile_texts((text,), machine, tmp_path)
            again = compile_texts((text,), machine, tmp_path, domain=once)
            assert (code, again) == (0, (0, once, warned)), f"{text} @{machine}"


# Booting costs ~1 s per domain: one domain per machine holds many traits at once.
SMOKE = {
    "q35": ("firmware uefi secure-boot\ntpm\nvmcoreinfo\npvpanic\nrng virtio\n"
            "memory balloon on\nfree page reporting\nusb tablet\nserial console\n"
            "graphics spice\nvideo qxl\nsound ich9\nguest agent\niommu\n"
            "pcie root ports 4\nwatchdog i6300esb action reset\nnetwork model virtio\n"
            "network queues 2\nnetwork ring size 1024\n"
            "clock localtime\nhyperv enlightenments"),
    "pc": ("firmware uefi\ntpm\nusb controller ich9-ehci1\nusb tablet\ngraphics vnc\n"
           "video vga\nsound ac97\nwatchdog ib700 action poweroff\nnetwork model e1000\n"
           "memory balloon off\nserial console\npvpanic"),
    "q35-os": "os win11\nrecommended",
    "pc-os": "os fedora37\nrecommended",
}
# No disk: a domain that boots must not name images that do not exist.
BOOTABLE = """<domain type="qemu">
  <name>smoke</name>
  <memory unit="MiB">256</memory>
  <devices>
    <interface type="user">
      <mac address="52:54:00:12:34:56"/>
    </interface>
  </devices>
</domain>
"""


# The disk traits need a disk that exists, readable by the checker's user (nobody),
# on a file system with O_DIRECT (cache none, native I/O): not tmpfs, so /var/tmp.
DISK_SMOKE = {
    "q35-disk-virtio": "disk bus virtio\ndisk io native",
    "q35-disk-sata": "disk bus sata\ndisk io io_uring\ndisk cache writeback",
    "q35-disk-scsi": "disk bus scsi\ndisk cache none\ndisk io threads",
    "pc-disk-ide": "disk bus ide\ndisk cache directsync\ndisk io native",
}


def test_a_smoke_subset_boots_under_tcg(tmp_path):
    import os
    import shutil
    import tempfile

    from tests.libvirt import assert_libvirt_accepts

    folder = tempfile.mkdtemp(prefix="virtuned-smoke-", dir="/var/tmp")
    try:
        os.chmod(folder, 0o755)
        image = os.path.join(folder, "disk.raw")
        with open(image, "wb") as handle:
            handle.truncate(16 << 20)
        os.chmod(image, 0o666)
        with_disk = BOOTABLE.replace("  <devices>\n", f"""  <devices>
    <disk type="file" device="disk">
      <driver name="qemu" type="raw"/>
      <source file="{image}"/>
      <target dev="sda"/>
    </disk>
""")
        outputs = {}
        for name, text in {**SMOKE, **DISK_SMOKE}.items():
            domain = with_disk if name in DISK_SMOKE else BOOTABLE
            code, out, err = compile_texts((text,), name.split("-")[0], tmp_path, domain)
            assert (code, err) == (0, ""), name
            outputs[name] = out.replace("<name>smoke</name>", f"<name>smoke-{name}</name>")
        assert_libvirt_accepts(outputs, start=True)
    finally:
        shutil.rmtree(folder)
