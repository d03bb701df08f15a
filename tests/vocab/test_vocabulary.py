"""The whole vocabulary, on pc and q35: every trait and every pair of traits compiles
to XML that libvirt's schema and QEMU driver accept, or is refused with the exit
code its rule gives; re-applying a trait changes nothing; and a smoke subset boots
(paused, under TCG)."""

from __future__ import annotations

import itertools
from pathlib import Path

from tests.cli_run import run
from virtuned import vocab  # noqa: F401  (registers the traits)
from virtuned.resolve import registry

GOLDEN = Path(__file__).parents[1] / "golden"
INPUT = (GOLDEN / "devices/tpm-q35/input.xml").read_text()  # disk, cdrom, user NIC
MACHINES = ("q35", "pc")

def examples() -> tuple[str, ...]:
    """Every trait's declared example (the machine is the other axis here), so a new
    trait is in every test below without a line of this file."""
    return tuple(d.example for d in registry.all_traits() if d.name != "machine")


# More values than the examples show: those that behave differently.
MORE_SAMPLES = (
    "video vga", "video virtio", "video bochs", "video none",
    "disk bus sata", "disk bus scsi", "disk bus ide", "clock localtime",
    "memory balloon off", "usb controller ich9-ehci1", "graphics vnc", "graphics none",
    "sound ac97", "network model e1000e", "network model rtl8139", "firmware bios",
    "firmware uefi secure-boot", "watchdog ib700 action poweroff", "disk cache writeback",
    "disk io io_uring", "os win11\nrecommended",
)
# The examples take INPUT as it is: 2 vCPUs and 2 GiB, a disk, a cdrom, a user NIC.
SAMPLES = examples() + MORE_SAMPLES

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
            ("os win11\nrecommended", "os fedora37"),
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


def test_every_trait_has_a_one_line_summary():
    """'virtuned traits' shows the first line of each trait's documentation."""
    unfinished = [d.phrase for d in registry.all_traits()
                  if not (d.doc.strip().split("\n\n")[0].endswith(".")
                          and "\n" not in d.doc.strip().split("\n\n")[0])]
    assert unfinished == []


def test_every_trait_and_every_pair_on_pc_and_q35_passes_libvirt(tmp_path):
    from tests.libvirt import check_with_libvirt
    from tests.vocab.test_memory_encryption import SEV_REFUSED

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


def every_line(definition) -> list[str]:
    """Every trait line a definition accepts: each choice, with and without each
    optional group; other slots take the value its example gives them."""
    given = example_values(definition)

    def expand(tokens) -> list[list[str]]:
        lines: list[list[str]] = [[]]
        for token in tokens:
            if isinstance(token, str):
                options = [[token]]
            elif isinstance(token, registry.Slot):
                options = [[value] for value in token.choices or (given[token.name],)]
            else:
                options = [[]] + expand(token.tokens)
            lines = [line + option for line in lines for option in options]
        return lines

    return [" ".join(words) for words in expand(definition.tokens)]


def example_values(definition) -> dict[str, str]:
    """The slot values of a trait's own line in its example (its last line)."""
    from virtuned.syntax.parser import parse

    line = parse(definition.example.splitlines()[-1], "<example>").statements[0]
    args = registry.match(definition, line.items)
    return {name: registry.to_text(value) for name, value in args.items()}


def needed_beside(definition) -> tuple[str, ...]:
    """What a trait's line needs beside it: the lines before it in its example."""
    return tuple(definition.example.splitlines()[:-1])


def test_every_value_of_every_trait_alone_passes_libvirt(tmp_path):
    from tests.libvirt import check_with_libvirt
    from tests.vocab.test_memory_encryption import SEV_REFUSED

    outputs, refused = {}, []
    for definition in registry.all_traits():
        if definition.name == "machine":
            continue
        for line in every_line(definition):
            for machine in MACHINES:
                code, out, err = compile_texts((*needed_beside(definition), line), machine,
                                               tmp_path)
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
# The smoke domain is smaller than Windows 11 and Fedora want, and 'recommended'
# says so.
SMOKE_WARNINGS = {name: f"""\
<trait 2>:2:1: warning: recommended: the input gives {os} 256MiB of memory; osinfo-db's \
minimum is {minimum}
    recommended
    ^^^^^^^^^^^
""" for name, os, minimum in (("q35-os", "Microsoft Windows 11", "4GiB"),
                              ("pc-os", "Fedora Linux 37", "1GiB"))}
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
            assert (code, err) == (0, SMOKE_WARNINGS.get(name, "")), name
            outputs[name] = out.replace("<name>smoke</name>", f"<name>smoke-{name}</name>")
        assert_libvirt_accepts(outputs, start=True)
    finally:
        shutil.rmtree(folder)


def test_disk_bus_scsi_on_an_input_without_devices(tmp_path):
    """No <devices> at all: the virtio-scsi controller is the first device."""
    (tmp_path / "in.xml").write_text('<domain type="kvm"><name>x</name></domain>')
    code, out, err = run(["compile", str(tmp_path / "in.xml"), "-t", "disk bus scsi"])
    assert (code, err) == (0, "")
    assert "<controller type=\"scsi\" index=\"0\" model=\"virtio-scsi\"/>" in out
