"""The compose file, Dockerfiles and nginx template agree with each other and with the README.

These checks read the files the way compose would; `make test-compose` builds and runs them.
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
COMPOSE_TEXT = (ROOT / "docker-compose.yml").read_text()
COMPOSE = yaml.safe_load(COMPOSE_TEXT)
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
    for name in ("auth", "payments", "refunds", "webhooks", "webhooks-stream", "gateway_worker"):
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    for name in ("postgres", "redis", "auth", "payments", "refunds", "webhooks", "webhooks-stream", "gateway"):
        assert "healthcheck" in services[name], name


def test_every_nginx_upstream_is_a_compose_service_on_its_port():
    gateway = COMPOSE["services"]["gateway"]
    env = gateway["environment"]
    upstreams = {k: v for k, v in env.items() if k.endswith("_UPSTREAM")}
    assert set(upstreams) == {"AUTH_UPSTREAM", "PAYMENTS_UPSTREAM", "REFUNDS_UPSTREAM", "WEBHOOKS_UPSTREAM", "WEBHOOKS_STREAM_UPSTREAM"}
    for value in upstreams.values():
        host, port = value.split(":")
        assert host in COMPOSE["services"], host
        assert port in COMPOSE["services"][host]["expose"]
        bind_keys = [k for k in COMPOSE["services"][host]["environment"] if k.endswith("_BIND")]
        assert COMPOSE["services"][host]["environment"][bind_keys[0]].endswith(":" + port)


def test_every_gunicorn_config_a_command_names_is_in_its_image():
    # The stream service runs the webhooks image with its own config file: the image must hold it.
    for name, spec in COMPOSE["services"].items():
        command = spec.get("command") or []
        if "gunicorn" not in command[:1] or "build" not in spec:
            continue
        conf = command[command.index("-c") + 1]
        copies = " ".join(line for line in (ROOT / spec["build"]["dockerfile"]).read_text().splitlines()
                          if line.startswith("COPY "))
        folder, file_name = conf.rsplit("/", 1)
        assert conf in copies or (file_name in copies and f"{folder}/" in copies), (name, conf)


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
    assert published == {"gateway": "8000", "checkout-cdn": "3001", "dashboard": "3000"}
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



@pytest.mark.parametrize("conf", [*sorted(ROOT.glob("*/*/gunicorn*.conf.py")), ROOT / "dashboard" / "gunicorn.conf.py"],
                         ids=lambda p: f"{p.parent.name}-{p.stem}")
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


# --- safe defaults for a deployment -----------------------------------------------------------

REQUIRED = {"POSTGRES_PASSWORD", "DB_ROLE_PASSWORD", "REDIS_PASSWORD", "GATEWAY_SECRET", "DASHBOARD_FORWARD_SECRET",
            "DASHBOARD_SECRET_KEY"}


def compose_env_values() -> list[tuple[str, str, str]]:
    """Every (service, variable, value) of the compose file's environments, anchors merged."""
    return [
        (service, name, str(value))
        for service, spec in COMPOSE["services"].items()
        for name, value in (spec.get("environment") or {}).items()
    ]


def test_compose_publishes_neither_postgres_nor_redis():
    for name in ("postgres", "redis"):
        assert "ports" not in COMPOSE["services"][name], name


def test_redis_needs_a_password_and_every_redis_url_carries_it():
    command = COMPOSE["services"]["redis"]["command"]
    assert command[:2] == ["redis-server", "--requirepass"]
    assert command[2].startswith("${REDIS_PASSWORD:?")
    urls = [(service, value) for service, name, value in compose_env_values() if name == "REDIS_URL"]
    assert {service for service, _ in urls} >= {"auth", "payments", "gateway_worker", "refunds", "refunds-worker",
                                                 "webhooks", "webhooks-worker", "migrate"}
    for service, value in urls:
        assert re.match(r"^redis://:\$\{REDIS_PASSWORD:\?[^}]+\}@redis:6379/\d+$", value), (service, value)


def test_secrets_and_passwords_have_no_working_defaults():
    # ${NAME:?message} makes compose refuse to start, naming NAME, until it is set.
    for name in REQUIRED:
        assert f"${{{name}:-" not in COMPOSE_TEXT and f"${{{name}-" not in COMPOSE_TEXT, name
    for service, name, value in compose_env_values():
        if name in REQUIRED:
            assert value.startswith(f"${{{name}:?") and value.endswith("}"), (service, name, value)
        if name == "DATABASE_URL":
            assert re.match(r"^postgresql://postgres:\$\{POSTGRES_PASSWORD:\?[^}]+\}@postgres:5432/", value), value
    assert COMPOSE["services"]["postgres"]["environment"]["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")
    gateway_env = COMPOSE["services"]["gateway"]["environment"]
    assert gateway_env["GATEWAY_SECRET"].startswith("${GATEWAY_SECRET:?")
    assert gateway_env["DASHBOARD_FORWARD_SECRET"].startswith("${DASHBOARD_FORWARD_SECRET:?")
    assert COMPOSE["services"]["dashboard"]["environment"]["DASHBOARD_FORWARD_SECRET"] == gateway_env["DASHBOARD_FORWARD_SECRET"]
    # Nothing secret is written literally in the file either.
    assert "change-me" not in COMPOSE_TEXT and "postgres:postgres@" not in COMPOSE_TEXT
    # Each refusal names what to set.
    for name, message in re.findall(r"\$\{([A-Z0-9_]+):\?([^}]*)\}", COMPOSE_TEXT):
        assert name in message and ".env.example" in message, (name, message)


def test_webhooks_may_not_target_private_addresses_by_default_in_compose():
    values = {service: value for service, name, value in compose_env_values() if name == "WEBHOOK_ALLOW_PRIVATE"}
    assert {"webhooks", "webhooks-worker"} <= set(values)
    assert set(values.values()) == {"${WEBHOOK_ALLOW_PRIVATE:-false}"}


def test_env_example_shows_every_required_variable():
    example = (ROOT / ".env.example").read_text()
    listed = set(re.findall(r"^([A-Z0-9_]+)=", example, flags=re.MULTILINE))
    required = set(re.findall(r"\$\{([A-Z0-9_]+):\?", COMPOSE_TEXT))
    assert required == REQUIRED
    assert listed == required
    assert ".env" in (ROOT / ".gitignore").read_text().split()


# --- images and the host-network variant ----------------------------------------------------------

PYTHON_IMAGES = {
    "services/auth/Dockerfile", "services/payments/Dockerfile", "services/refunds/Dockerfile",
    "services/webhooks/Dockerfile", "dashboard/Dockerfile", "database/Dockerfile",
}
HOST = yaml.safe_load((ROOT / "docker-compose.host.yml").read_text())


def stages(path: Path) -> list[str]:
    """Return the text of each FROM stage of a Dockerfile."""
    return re.split(r"(?m)^(?=FROM )", path.read_text())[1:]


@pytest.mark.parametrize("dockerfile", sorted(PYTHON_IMAGES))
def test_python_images_compile_in_a_builder_stage_and_run_without_a_compiler_as_a_user(dockerfile):
    build, runtime = stages(ROOT / dockerfile)
    assert build.startswith("FROM python:3.11-slim AS build") and "gcc" in build and "pip wheel" in build
    assert "id=pip_ca" in build and "PIP_CERT=/run/secrets/pip_ca" in build  # the CA bundle, as a secret only
    assert "gcc" not in runtime and "apt-get" not in runtime
    assert "--no-index --find-links /wheels" in runtime and "from=build" in runtime
    assert re.search(r"(?m)^USER app$", runtime)
    assert re.search(r"(?m)^HEALTHCHECK ", runtime)


@pytest.mark.parametrize("dockerfile", ["gateway-nginx/Dockerfile", "services/checkout-cdn/Dockerfile"])
def test_nginx_images_run_as_nginx_with_a_healthcheck(dockerfile):
    runtime = stages(ROOT / dockerfile)[-1]
    assert re.search(r"(?m)^USER nginx$", runtime)
    assert re.search(r"(?m)^HEALTHCHECK ", runtime)


def test_every_built_compose_service_names_the_image_docker_build_sh_tags():
    script = (ROOT / "tools" / "docker-build.sh").read_text()
    files = dict(re.findall(r"\[([a-z-]+)\]=(\S+/Dockerfile)\b", script))
    for name, spec in COMPOSE["services"].items():
        if "build" not in spec:
            continue
        part = spec["image"].removeprefix("payment-gateway/").removesuffix(":latest")
        dockerfile = str(Path(spec["build"]["context"]) / spec["build"]["dockerfile"]).removeprefix("./")
        assert files.get(part) == dockerfile, (name, part, dockerfile)


def test_host_network_variant_covers_every_service_on_ports_clear_of_make_run():
    assert set(HOST["services"]) == set(COMPOSE["services"])
    assert all(spec["network_mode"] == "host" for spec in HOST["services"].values())
    text = (ROOT / "docker-compose.host.yml").read_text()
    defaults = {int(port) for port in re.findall(r"\$\{GW_[A-Z_]+:-(\d+)\}", text)}
    native = {int(v) for k, v in stack_tool.DEFAULTS.items() if k.endswith("PORT")}
    assert defaults and not defaults & (native | {5432, 6379})
    # Nothing listens beyond loopback.
    for spec in HOST["services"].values():
        for key, value in (spec.get("environment") or {}).items():
            if key.endswith(("_BIND", "_LISTEN")):
                assert value.startswith("127.0.0.1:"), (key, value)


def test_workers_get_time_to_finish_on_sigterm():
    for name in ("auth", "payments", "gateway_worker", "refunds", "refunds-worker", "webhooks", "webhooks-worker"):
        assert COMPOSE["services"][name]["stop_grace_period"] == "30s", name
