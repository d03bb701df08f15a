"""contrib/k8s: the manifests that run 'virtuned serve' on Kubernetes hold together:
the container's arguments are ones 'virtuned serve' takes, the probes reach its
/healthz on the port it listens on, the Service and the autoscaler name the
Deployment, the memory limit holds every operation's --memory-limit, and the
ConfigMap's site profiles check clean and compile on the search path it is
mounted on."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.cli_run import run
from virtuned.cli import _parser

K8S = Path(__file__).resolve().parent.parent / "contrib" / "k8s"
ROOT = K8S.parent.parent


@pytest.fixture(scope="module")
def objects() -> dict[str, dict]:
    """Every object the kustomization lists, by kind."""
    resources = yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"]
    found = {}
    for name in resources:
        for document in yaml.safe_load_all((K8S / name).read_text()):
            found[document["kind"]] = document
    return found


def container(objects) -> dict:
    (only,) = objects["Deployment"]["spec"]["template"]["spec"]["containers"]
    return only


def serve_options(objects):
    args = container(objects)["args"]
    assert args[:2] == ["virtuned", "serve"]
    return _parser(args[1:]).parse_args(args[1:])


def mebibytes(quantity: str) -> int:
    units = {"Mi": 1, "Gi": 1024}
    return int(quantity[:-2]) * units[quantity[-2:]]


def test_every_manifest_is_in_the_kustomization(objects):
    assert sorted(objects) == ["ConfigMap", "Deployment", "HorizontalPodAutoscaler",
                               "Service"]
    assert sorted(p.name for p in K8S.glob("*.yaml")) == sorted(
        ["kustomization.yaml", *yaml.safe_load(
            (K8S / "kustomization.yaml").read_text())["resources"]])


def test_the_probes_reach_healthz_where_serve_listens(objects):
    options = serve_options(objects)
    ports = {p["name"]: p["containerPort"] for p in container(objects)["ports"]}
    assert (options.host, ports["http"]) == ("0.0.0.0", options.port)
    for probe in ("readinessProbe", "livenessProbe"):
        assert container(objects)[probe]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert objects["Service"]["spec"]["ports"][0]["targetPort"] == "http"
    labels = objects["Deployment"]["spec"]["template"]["metadata"]["labels"]
    assert objects["Service"]["spec"]["selector"] == labels


def test_the_autoscaler_scales_the_deployment(objects):
    target = objects["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == (
        "Deployment", objects["Deployment"]["metadata"]["name"])


def test_the_memory_limit_holds_every_operation_at_its_limit(objects):
    options = serve_options(objects)
    operations = options.workers * options.concurrency * options.memory_limit
    limit = mebibytes(container(objects)["resources"]["limits"]["memory"])
    assert operations < limit  # and the rest is the workers' own (tens of MiB each)


def test_the_site_profiles_check_and_compile_where_they_are_mounted(objects, tmp_path):
    options = serve_options(objects)
    (mount,) = [m for m in container(objects)["volumeMounts"] if m["name"] == "profiles"]
    assert options.profile_path == [mount["mountPath"]]
    volumes = objects["Deployment"]["spec"]["template"]["spec"]["volumes"]
    assert {"name": "profiles", "configMap": {"name": objects["ConfigMap"]["metadata"][
        "name"]}} in volumes
    library = tmp_path / "profiles"
    library.mkdir()
    for name, text in objects["ConfigMap"]["data"].items():
        (library / name).write_text(text)
    for name in objects["ConfigMap"]["data"]:
        assert run(["check", str(library / name)]) == (0, "", "")
        code, out, err = run(["compile", str(ROOT / "examples/domains/nfv-guest.xml"),
                              "-p", name.removesuffix(".vt"), "--profile-path",
                              str(library)])
        assert code == 0, err
        assert f"name='{name.removesuffix('.vt')}' version='1.0.0'" in out  # the input's quotes
