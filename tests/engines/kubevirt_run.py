"""Run the installed ``onDefineDomain`` exactly as KubeVirt's sidecar-shim does
(cmd/sidecars/sidecar_shim.go: ``exec.Command("onDefineDomain", "--vmi", vmiJSON,
"--domain", domainXML)``, no stdin, stdout is the domain, stderr is logged)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

DATA = Path(__file__).with_name("data")
CONTRIB = Path(__file__).parents[2] / "contrib" / "kubevirt"
# pip puts a package's console scripts beside the interpreter.
ON_DEFINE_DOMAIN = Path(sys.executable).with_name("onDefineDomain")


def go_json(value) -> str:
    """JSON as Go's json.Marshal writes it: compact, with <, > and & escaped."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def vmi(annotations: dict[str, str] | None = None, *, without=("virtuned.io/profiles",)):
    """The fixture VMI (data/vmi-nfv.json) with these annotations added and the
    ``without`` ones removed."""
    value = json.loads((DATA / "vmi-nfv.json").read_text())
    found = value["metadata"]["annotations"]
    for name in without:
        found.pop(name, None)
    found.update(annotations or {})
    return value


def domain() -> str:
    """The domain virt-launcher's converter makes for that VMI (tab-indented, no
    XML declaration, no final newline: xml.MarshalIndent(spec, "", "\\t"))."""
    return (DATA / "domain-nfv.xml").read_text()


def site_profiles(home: Path) -> Path:
    """configmap.yaml's profiles, where the search path finds them: a directory as
    the ConfigMap's keys are mounted (the user directory of $XDG_CONFIG_HOME stands
    in for /etc/virtuned/profiles, which a test cannot write)."""
    directory = home / "virtuned" / "profiles"
    directory.mkdir(parents=True, exist_ok=True)
    config_map = yaml.safe_load((CONTRIB / "configmap.yaml").read_text())
    for key, text in config_map["data"].items():
        (directory / key).write_text(text)
    return directory


def on_define_domain(vmi_value, domain_xml: str, home: Path) -> subprocess.CompletedProcess:
    vmi_json = vmi_value if isinstance(vmi_value, str) else go_json(vmi_value)
    environment = {"PATH": str(ON_DEFINE_DOMAIN.parent), "HOME": str(home),
                   "XDG_CONFIG_HOME": str(home), "VIRTUNED_CACHE_DIR": ""}
    return subprocess.run([str(ON_DEFINE_DOMAIN), "--vmi", vmi_json, "--domain", domain_xml],
                          stdin=subprocess.DEVNULL, capture_output=True, env=environment,
                          timeout=120)
