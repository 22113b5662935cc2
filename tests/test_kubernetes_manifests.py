"""deploy/kubernetes: valid against the Kubernetes schemas, and complete where schemas cannot tell.

kubernetes-validate (pinned in constraints.txt) ships the schemas of every Kubernetes version it
knows inside the package, so this runs offline; the run below points any HTTP(S) client at a dead
proxy to prove it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
KUBE = ROOT / "deploy" / "kubernetes"
# The oldest Kubernetes minor still supported by the managed offerings, and the newest the validator knows.
VERSIONS = ("1.31.0", "1.37.0")
MANIFESTS = sorted(p for p in KUBE.glob("*.yaml") if p.name != "kustomization.yaml")
API_SERVICES = {"auth": 8101, "payments": 8102, "refunds": 8103, "webhooks": 8104}
WORKERS = {"payments-worker", "refunds-worker", "webhooks-worker"}
# Long-lived connections, not CPU: no autoscaler (each pod serves its listeners until they reconnect).
STREAM = ("webhooks-stream", 8105)


def resources() -> list[dict]:
    """Every resource of every manifest file."""
    return [doc for path in MANIFESTS for doc in yaml.safe_load_all(path.read_text()) if doc]


def of_kind(kind: str) -> dict[str, dict]:
    return {r["metadata"]["name"]: r for r in resources() if r["kind"] == kind}


def validate(paths: list[Path], version: str) -> subprocess.CompletedProcess:
    dead = "http://127.0.0.1:9"
    env = {**os.environ, "HTTP_PROXY": dead, "HTTPS_PROXY": dead, "http_proxy": dead, "https_proxy": dead, "NO_PROXY": ""}
    return subprocess.run(
        [sys.executable, "-m", "kubernetes_validate", "--strict", "--no-warn", "-k", version, *map(str, paths)],
        capture_output=True, text=True, env=env, timeout=300,
    )


@pytest.mark.parametrize("version", VERSIONS)
def test_every_manifest_passes_strict_schema_validation_offline(version):
    result = validate(MANIFESTS, version)
    assert result.returncode == 0, result.stdout + result.stderr
    passed = re.findall(r"passed for resource (\S+)", result.stdout)
    assert len(passed) == len(resources()), result.stdout


@pytest.mark.parametrize(("old", "new", "reported"), [
    ("containerPort: 8102", 'containerPort: "eighty"', "'eighty' is not of type 'integer'"),
    ("readinessProbe:", "readynessProbe:", "readynessProbe"),  # strict: an unknown field is an error
])
def test_the_validator_rejects_a_broken_manifest(tmp_path, old, new, reported):
    broken = tmp_path / "broken.yaml"
    broken.write_text((KUBE / "payments.yaml").read_text().replace(old, new, 1))
    result = validate([broken], VERSIONS[-1])
    assert result.returncode != 0
    assert "did not validate for resource deployment/payments" in result.stdout and reported in result.stdout, result.stdout


def test_kustomization_lists_every_manifest_and_every_image_we_build():
    kustomization = yaml.safe_load((KUBE / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == [p.name for p in MANIFESTS]
    built = set(re.findall(r"\[([a-z-]+)\]=", (ROOT / "tools" / "docker-build.sh").read_text()))
    assert {i["name"] for i in kustomization["images"]} == {f"payment-gateway/{part}" for part in built}
    used = {c["image"].split(":")[0] for r in resources() for c in pod_spec(r).get("containers", [])}
    assert used <= {i["name"] for i in kustomization["images"]}


def pod_spec(resource: dict) -> dict:
    if resource["kind"] in ("Deployment", "Job"):
        return resource["spec"]["template"]["spec"]
    return {}


def test_no_secret_values_are_committed():
    assert "Secret" not in {r["kind"] for r in resources()}
    kustomization = yaml.safe_load((KUBE / "kustomization.yaml").read_text())
    assert kustomization["secretGenerator"] == [{"name": "gateway-secrets", "envs": ["secrets.env"]}]
    assert "deploy/kubernetes/secrets.env" in (ROOT / ".gitignore").read_text().split()
    tracked = subprocess.run(["git", "ls-files", str(KUBE)], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert "secrets.env\n" not in tracked.replace("secrets.env.example", "")
    example = dict(
        line.split("=", 1) for line in (KUBE / "secrets.env.example").read_text().splitlines() if line and not line.startswith("#")
    )
    # Empty, or a URL whose password is a visible placeholder.
    for key, value in example.items():
        assert value == "" or re.search(r"[A-Z_]*PASSWORD@", value), (key, value)
    wanted = {ref["key"] for r in resources() for ref in refs(r, "secretKeyRef")}
    assert wanted == set(example)


def refs(resource: dict, kind: str) -> list[dict]:
    return [env["valueFrom"][kind] for c in pod_spec(resource).get("containers", []) for env in c.get("env", [])
            if kind in env.get("valueFrom", {})]


def test_every_configmap_key_referenced_exists():
    maps = of_kind("ConfigMap")
    for resource in resources():
        for ref in refs(resource, "configMapKeyRef"):
            assert ref["key"] in maps[ref["name"]]["data"], (resource["metadata"]["name"], ref)
        for container in pod_spec(resource).get("containers", []):
            for source in container.get("envFrom", []):
                assert source["configMapRef"]["name"] in maps


def test_every_deployment_has_probes_requests_a_pdb_and_a_non_root_user():
    deployments = of_kind("Deployment")
    assert set(deployments) == {*API_SERVICES, *WORKERS, STREAM[0], "gateway", "checkout-cdn", "dashboard"}
    budgets = {b["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"] for b in of_kind("PodDisruptionBudget").values()}
    for name, deployment in deployments.items():
        spec = pod_spec(deployment)
        assert spec["securityContext"]["runAsNonRoot"] is True and spec["securityContext"]["runAsUser"] != 0, name
        for container in spec["containers"]:
            assert container["readinessProbe"] and container["livenessProbe"], name
            assert {"cpu", "memory"} <= set(container["resources"]["requests"]), name
            assert container["securityContext"]["allowPrivilegeEscalation"] is False, name
        assert name in budgets, f"{name} has no PodDisruptionBudget"
        assert deployment["spec"]["selector"]["matchLabels"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()


def test_api_services_probe_their_own_health_and_scale_horizontally():
    deployments = of_kind("Deployment")
    services = of_kind("Service")
    autoscalers = {h["spec"]["scaleTargetRef"]["name"]: h for h in of_kind("HorizontalPodAutoscaler").values()}
    assert set(autoscalers) == set(API_SERVICES)
    for name, port in API_SERVICES.items():
        container = pod_spec(deployments[name])["containers"][0]
        assert container["ports"] == [{"name": "http", "containerPort": port}]
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env[f"{name.upper()}_BIND"] == f"0.0.0.0:{port}"
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert container[probe]["httpGet"] == {"path": "/health", "port": "http"}, (name, probe)
        assert services[name]["spec"]["ports"][0]["port"] == port
        assert autoscalers[name]["spec"]["minReplicas"] >= 2
    for name in WORKERS:
        container = pod_spec(deployments[name])["containers"][0]
        assert container["command"][:3] == ["celery", "-A", f"{name.split('-')[0]}.worker"]
        for probe in ("readinessProbe", "livenessProbe"):
            assert container[probe]["exec"]["command"] == ["python", "-m", "gateway_common.healthcheck"]


def test_services_select_deployments_and_the_gateway_reaches_every_api_by_service_name():
    deployments = of_kind("Deployment")
    for name, service in of_kind("Service").items():
        selector = service["spec"]["selector"]
        matching = [d for d in deployments.values() if selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()]
        assert len(matching) == 1, name
    gateway_env = {e["name"]: e.get("value") for e in pod_spec(deployments["gateway"])["containers"][0]["env"]}
    for name, port in API_SERVICES.items():
        assert gateway_env[f"{name.upper()}_UPSTREAM"] == f"{name}:{port}"


def test_the_event_stream_runs_the_webhooks_image_as_its_own_app_behind_the_gateway():
    name, port = STREAM
    deployments = of_kind("Deployment")
    container = pod_spec(deployments[name])["containers"][0]
    assert container["image"].startswith("payment-gateway/webhooks:")
    assert container["command"][-1] == "webhooks:create_stream_app()"
    assert "services/webhooks/gunicorn_stream.conf.py" in container["command"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["WEBHOOKS_STREAM_BIND"] == f"0.0.0.0:{port}"
    assert env["WEBHOOKS_STREAM_DB_POOL_MAX"] == "1"
    assert container["ports"] == [{"name": "http", "containerPort": port}]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/health", "port": "http"}, probe
    assert of_kind("Service")[name]["spec"]["ports"][0]["port"] == port
    gateway_env = {e["name"]: e.get("value") for e in pod_spec(deployments["gateway"])["containers"][0]["env"]}
    assert gateway_env["WEBHOOKS_STREAM_UPSTREAM"] == f"{name}:{port}"
