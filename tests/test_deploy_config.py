"""The compose file, Dockerfiles and nginx template agree with each other and with the README.

No Docker engine runs here, so these checks read the files the way compose would.
"""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tools import stack as stack_tool

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
TEMPLATE = (ROOT / "gateway-nginx" / "nginx.conf.template").read_text()
PLACEHOLDER = re.compile(r"\$\{([A-Z0-9_]+)\}")


def dockerfile_env(path: Path) -> set[str]:
    """Names set by ENV lines of a Dockerfile (both ``ENV A=1 B=2`` and continuation lines)."""
    names: set[str] = set()
    in_env = False
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("ENV "):
            in_env = True
            stripped = stripped[4:]
        if in_env:
            names.update(re.findall(r"([A-Z0-9_]+)=", stripped))
            in_env = stripped.endswith("\\")
    return names


def test_compose_parses_and_every_build_exists():
    services = COMPOSE["services"]
    for name, spec in services.items():
        if "build" in spec:
            context = ROOT / spec["build"]["context"]
            assert context.is_dir(), name
            assert (context / spec["build"]["dockerfile"]).is_file(), name
        else:
            assert "image" in spec, name


def test_compose_has_the_documented_parts():
    services = COMPOSE["services"]
    assert services["postgres"]["container_name"] == "payment_db"
    assert services["redis"]["container_name"] == "redis_gateway"
    assert services["gateway"]["container_name"] == "payment_api"
    assert services["checkout-cdn"]["container_name"] == "checkout_cdn"
    assert "gateway_worker" in services and "payments.worker" in " ".join(services["gateway_worker"]["command"])
    for worker in ("refunds-worker", "webhooks-worker"):
        assert worker in services
    assert services["migrate"]["restart"] == "no"
    for name in ("auth", "payments", "refunds", "webhooks", "gateway_worker"):
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    for name in ("postgres", "redis", "auth", "payments", "refunds", "webhooks", "gateway"):
        assert "healthcheck" in services[name], name


def test_every_nginx_upstream_is_a_compose_service_on_its_port():
    gateway = COMPOSE["services"]["gateway"]
    env = gateway["environment"]
    upstreams = {k: v for k, v in env.items() if k.endswith("_UPSTREAM")}
    assert set(upstreams) == {"AUTH_UPSTREAM", "PAYMENTS_UPSTREAM", "REFUNDS_UPSTREAM", "WEBHOOKS_UPSTREAM"}
    for value in upstreams.values():
        host, port = value.split(":")
        assert host in COMPOSE["services"], host
        assert port in COMPOSE["services"][host]["expose"]
        bind_keys = [k for k in COMPOSE["services"][host]["environment"] if k.endswith("_BIND")]
        assert COMPOSE["services"][host]["environment"][bind_keys[0]].endswith(":" + port)


def test_gateway_image_fills_every_template_placeholder():
    provided = dockerfile_env(ROOT / "gateway-nginx" / "Dockerfile") | set(COMPOSE["services"]["gateway"]["environment"])
    missing = set(PLACEHOLDER.findall(TEMPLATE)) - provided
    assert not missing


def test_published_ports_match_the_readme():
    readme = (ROOT / "README.md").read_text()
    published = {}
    for name, spec in COMPOSE["services"].items():
        for mapping in spec.get("ports", []):
            published[name] = mapping.split(":")[0]
    assert published == {
        "postgres": "5432", "redis": "6379", "gateway": "8000", "checkout-cdn": "3001", "dashboard": "3000",
    }
    for port in published.values():
        assert re.search(rf"\|\s*`?{port}`?\s*\|", readme), f"port {port} missing from the README's table"


def test_native_render_passes_nginx_config_test(tmp_path):
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        pytest.skip("nginx is not installed")
    env = stack_tool.stack_env({"RUN_DIR": str(tmp_path), "GATEWAY_SECRET": "x"})
    conf = stack_tool.render_nginx(env)
    text = conf.read_text()
    assert "${" not in text
    assert "server_tokens off;" in text
    result = subprocess.run([nginx, "-t", "-c", str(conf), "-p", str(tmp_path / "nginx")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_checkout_image_fills_every_placeholder_of_its_server_block():
    block = (ROOT / "services" / "checkout-cdn" / "nginx-server.conf.template").read_text()
    provided = dockerfile_env(ROOT / "services" / "checkout-cdn" / "Dockerfile") | set(COMPOSE["services"]["checkout-cdn"]["environment"])
    assert set(PLACEHOLDER.findall(block)) - provided == set()



@pytest.mark.parametrize("conf", [*sorted(ROOT.glob("*/*/gunicorn.conf.py")), ROOT / "dashboard" / "gunicorn.conf.py"],
                         ids=lambda p: p.parent.name)
def test_no_gunicorn_binds_the_shared_control_socket(conf):
    # gunicorn 27 binds $HOME/.gunicorn/gunicorn.ctl by default: every master here (five per stack,
    # and the tests run several stacks) would take it from the one before and remove it on exit.
    # Read, not run: the payments file sets DB_POOL_MAX in the environment when it runs.
    settings = {
        target.id: node.value.value
        for node in ast.parse(conf.read_text()).body
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    assert settings.get("control_socket_disable") is True
