"""The KubeVirt hook sidecar: the installed ``onDefineDomain``, run as the
sidecar-shim runs it, on the VMI and domain XML of data/ (a VMI with
dedicatedCpuPlacement, hugepages, a containerdisk, cloud-init and masquerade
networking, and the domain virt-launcher's converter makes for it)."""

from __future__ import annotations

import re

import pytest
import yaml

from tests.engines.kubevirt_run import (CONTRIB, DATA, domain, on_define_domain,
                                        site_profiles, vmi)
from tests.engines.libvirt_verdicts import assert_hook_adds_nothing_libvirt_refuses


@pytest.fixture
def home(tmp_path):
    """A search path holding configmap.yaml's site profiles, as mounted."""
    site_profiles(tmp_path)
    return tmp_path


def assert_refused(result, code: int, stderr: str) -> None:
    """A refused VMI: this exit code, exactly this on stderr, nothing on stdout (so
    the VM does not start, with the reason in the sidecar's log)."""
    assert (result.returncode, result.stderr.decode(), result.stdout) == (code, stderr, b"")


# ---------------------------------------------------------------- nothing asked


@pytest.mark.parametrize("annotations", [{}, {"virtuned.io/traits": "  \n"},
                                         {"virtuned.io/profiles": ""}])
def test_a_vmi_that_asks_nothing_gets_its_domain_back_byte_for_byte(home, annotations):
    result = on_define_domain(vmi(annotations), domain(), home)
    assert (result.returncode, result.stderr) == (0, b"")
    assert result.stdout == domain().encode()


def test_bytes_pass_unchanged_even_when_not_utf8_text(home):
    # What the shim passed comes back as it was, whatever it holds.
    text = domain().replace("<name>default_vmi-nfv</name>", "<name>caf\u00e9</name>")
    result = on_define_domain(vmi(), text, home)
    assert result.stdout == text.encode()


# ---------------------------------------------------------------- the example


def example_annotations() -> dict[str, str]:
    """vm-nfv.yaml's virtuned annotations (its VMI template's)."""
    vm = yaml.safe_load((CONTRIB / "vm-nfv.yaml").read_text())
    found = vm["spec"]["template"]["metadata"]["annotations"]
    return {name: value for name, value in found.items() if name.startswith("virtuned.io/")}


def test_the_example_vm_gets_the_site_profile_its_traits_and_params(home):
    result = on_define_domain(vmi(example_annotations()), domain(), home)
    assert (result.returncode, result.stderr) == (0, b"")
    expected = (DATA / "domain-nfv.site-nfv.xml").read_text().replace(
        "@PROFILES@", str(home / "virtuned" / "profiles"))
    assert result.stdout.decode() == expected


def test_on_a_migration_target_its_own_output_passes_unchanged(home):
    # virt-launcher runs the hook again on the target, with the running domain.
    first = on_define_domain(vmi(example_annotations()), domain(), home).stdout
    again = on_define_domain(vmi(example_annotations()), first.decode(), home)
    assert (again.returncode, again.stderr, again.stdout) == (0, b"", first)


def test_the_example_vm_names_the_sidecar_and_mounts_the_site_profile():
    vm = yaml.safe_load((CONTRIB / "vm-nfv.yaml").read_text())
    config_map = yaml.safe_load((CONTRIB / "configmap.yaml").read_text())
    sidecars = yaml.safe_load(vm["spec"]["template"]["metadata"]["annotations"]
                              ["hooks.kubevirt.io/hookSidecars"])
    assert sidecars == [{
        "image": "registry.example.com/virtuned/kubevirt-sidecar:0.1.0",
        "args": ["--version", "v1alpha3"],
        "configMap": {"name": config_map["metadata"]["name"], "key": "site-nfv.vt",
                      "hookPath": "/etc/virtuned/profiles/site-nfv.vt"}}]
    assert list(config_map["data"]) == ["site-nfv.vt"]


def strip_empty_sysinfo(text: str) -> str:
    """Without the empty <bios>, <baseBoard> and <chassis> Go's marshaller writes
    for KubeVirt's sysinfo (libvirt's schema wants entries in them)."""
    return re.sub(r"\s*<(bios|baseBoard|chassis)(></\1>|/>)", "", text)


def test_libvirt_accepts_the_domain_the_hook_returns(home):
    result = on_define_domain(vmi(example_annotations()), domain(), home)
    assert_hook_adds_nothing_libvirt_refuses(
        domain(), result.stdout.decode(), strip_empty_sysinfo,
        "Relax-NG validity error : Extra element bios in interleave\n"
        "element bios: Relax-NG validity error : Element sysinfo failed to validate "
        "content\n"
        "Relax-NG validity error : Extra element sysinfo in interleave\n"
        "element sysinfo: Relax-NG validity error : Element domain failed to validate "
        "content")


# ---------------------------------------------------------------- KubeVirt pins


def cputune(text: str) -> str:
    return re.search(r"<cputune>.*</cputune>", text, re.S).group(0)


def test_kubevirt_pinning_stays_as_kubevirt_made_it(home):
    # No host is known in the sidecar: placement traits say what they need, and
    # KubeVirt's vcpupin and emulatorpin (from the pod's cpuset) are kept, as Go's
    # encoding/xml wrote them.
    result = on_define_domain(vmi({"virtuned.io/traits": "dedicated cpus\n"
                                   "emulator threads isolated"}), domain(), home)
    assert result.returncode == 0
    assert result.stderr.decode() == (
        "virtuned.io/traits:1:1: warning: 'dedicated cpus': no --host given, so no host "
        "CPUs or NUMA nodes were chosen and nothing host-specific was written; "
        "'virtuned plan' reports what a host must offer\n"
        "    dedicated cpus\n"
        "    ^^^^^^^^^^^^^^\n")
    assert cputune(result.stdout.decode()) == (
        '<cputune>\n'
        '\t\t<vcpupin vcpu="0" cpuset="4"></vcpupin>\n'
        '\t\t<vcpupin vcpu="1" cpuset="5"></vcpupin>\n'
        '\t\t<emulatorpin cpuset="6"></emulatorpin>\n'
        '\t</cputune>')


def test_with_a_host_a_trait_that_would_repin_is_a_conflict_never_a_repin():
    from virtuned import api
    from virtuned.diagnostics import VirtunedError

    host = (CONTRIB.parents[1] / "examples" / "hosts" / "two-node-smt.xml").read_text()
    with pytest.raises(VirtunedError) as caught:
        api.compile(domain(), traits=("dedicated cpus",), host=host)
    diagnostic = caught.value.diagnostics[0]
    assert (caught.value.exit_code, diagnostic.message, diagnostic.related[0].message) == (
        3, "'dedicated cpus' wants /domain/cputune/vcpupin <vcpupin vcpu='0' cpuset='0'>, "
           "but the input has <vcpupin vcpu='0' cpuset='4'>",
        "the input has <vcpupin vcpu='0' cpuset='4'>")


# ---------------------------------------------------------------- refusals


def test_a_trait_against_what_kubevirt_states_is_a_conflict(home):
    result = on_define_domain(vmi({"virtuned.io/traits": "memory balloon off"}), domain(),
                              home)
    assert_refused(result, 3, (
        "virtuned.io/traits:1:1: error: 'memory balloon off' wants "
        "/domain/devices/memballoon/@model = 'none', but the input states "
        "/domain/devices/memballoon/@model = 'virtio-non-transitional'\n"
        "    memory balloon off\n"
        "    ^^^^^^^^^^^^^^^^^^\n"
        "<domain>:48:3: note: the input states /domain/devices/memballoon/@model = "
        "'virtio-non-transitional'\n"
        '                    <memballoon model="virtio-non-transitional" '
        'freePageReporting="off">\n'
        "                    ^^^^^^^^^^^\n"
        "hint: a trait never overrides what the input states: change the input, or drop "
        "the trait\n"))


def test_a_mistake_in_the_traits_annotation_is_reported_at_its_place(home):
    result = on_define_domain(vmi({"virtuned.io/traits": "pvpanic\nhugepages 3x"}),
                              domain(), home)
    assert_refused(result, 2, (
        "virtuned.io/traits:2:11: error: hugepages: size: unknown unit 'x' in '3x'; use "
        "one of KB, k, K, KiB, MB, M, MiB, GB, G, GiB, TB, T, TiB\n"
        "    hugepages 3x\n"
        "              ^^\n"
        "hint: usage: hugepages SIZE\n"))


def test_an_unknown_profile_is_named_with_the_closest(home):
    result = on_define_domain(vmi({"virtuned.io/profiles": "server, site-nvf"}), domain(),
                              home)
    assert_refused(result, 2, (
        "virtuned.io/profiles:1:9: error: no profile 'site-nvf' on the search path\n"
        "    server, site-nvf\n"
        "            ^\n"
        "hint: did you mean 'site-nfv'?\n"))


@pytest.mark.parametrize("profiles, col, message", [
    ("server, /etc/passwd", 9, "'/etc/passwd' is not a profile name"),
    ("server,./site.vt", 8, "'./site.vt' is not a profile name"),
])
def test_a_profile_annotation_never_names_a_file(home, profiles, col, message):
    result = on_define_domain(vmi({"virtuned.io/profiles": profiles}), domain(), home)
    assert_refused(result, 2, (
        f"virtuned.io/profiles:1:{col}: error: {message}\n"
        f"    {profiles}\n"
        f"    {' ' * (col - 1)}^\n"
        "hint: name profiles of the library or the mounted search path; files are "
        "never read from here\n"))


def test_an_empty_profile_name(home):
    result = on_define_domain(vmi({"virtuned.io/profiles": "server,,site-nfv"}), domain(),
                              home)
    assert_refused(result, 2, (
        "virtuned.io/profiles:1:8: error: an empty profile name\n"
        "    server,,site-nfv\n"
        "           ^\n"
        "hint: profiles are separated by single commas: nfv,site-nfv\n"))


@pytest.mark.parametrize("params, stderr", [
    ('{"queues": 4,}',
     "virtuned.io/params:1:14: error: expected a param name in double quotes\n"
     '    {"queues": 4,}\n'
     "                 ^\n"
     'hint: a JSON object of param values: {"queues": 4, "nfv.node": 1}\n'),
    ('{\n  "queues": [4]\n}',
     "virtuned.io/params:2:13: error: param 'queues': expected a string, number or "
     "boolean, got [4]\n"
     '      "queues": [4]\n'
     "                ^\n"
     'hint: a JSON object of param values: {"queues": 4, "nfv.node": 1}\n'),
    ('{"queues": "many"}',
     "virtuned.io/params:1:12: error: param 'queues' (int): expected a whole number, "
     "got 'many'\n"
     '    {"queues": "many"}\n'
     "               ^\n"),
    ('{"queue": 4}',
     'virtuned.io/params:1:11: error: "queue": no profile given declares a param '
     "'queue'\n"
     '    {"queue": 4}\n'
     "              ^\n"),
])
def test_a_mistake_in_the_params_annotation_is_reported_at_its_place(home, params, stderr):
    result = on_define_domain(vmi({"virtuned.io/profiles": "site-nfv",
                                   "virtuned.io/params": params}), domain(), home)
    assert_refused(result, 2, stderr)


def test_a_vmi_that_is_not_json_is_refused(home):
    result = on_define_domain("{", domain(), home)
    assert_refused(result, 2, "--vmi: error: not JSON: Expecting property name enclosed "
                              "in double quotes: line 1 column 2 (char 1)\n")
