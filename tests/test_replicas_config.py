"""`make up SCALE=...`: replicas' ports, Procfile entries, nginx upstreams, the connection budget, and the
scrape config that lists them (no stack is started here; tests/chaos/test_replicas.py runs them)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tools import prometheus_config
from tools import stack as stack_tool

ROOT = Path(__file__).resolve().parents[1]
BRIEF = "payments=3 payments-worker=2 refunds-worker=2 webhooks-worker=3"


def env_with(tmp_path: Path, **settings: str) -> dict[str, str]:
    """The defaults and ``settings`` only (nothing from this process's environment)."""
    return {**stack_tool.DEFAULTS, "RUN_DIR": str(tmp_path), "GATEWAY_SECRET": "x", "DASHBOARD_FORWARD_SECRET": "y", **settings}


def test_scale_reads_names_and_counts_and_refuses_anything_else():
    assert stack_tool.parse_scale(BRIEF) == {"payments": 3, "payments-worker": 2, "refunds-worker": 2, "webhooks-worker": 3}
    assert stack_tool.parse_scale(" auth=2,refunds=1 ") == {"auth": 2, "refunds": 1}
    assert stack_tool.parse_scale("") == {}
    for bad, said in (("nginx=2", "cannot be scaled"), ("dashboard=2", "cannot be scaled"), ("payments=0", "COUNT from 1"),
                      ("payments", "NAME=COUNT"), ("payments=x", "NAME=COUNT"), ("payments=21", "COUNT from 1 to 20")):
        with pytest.raises(SystemExit, match=said):
            stack_tool.parse_scale(bad)


def test_each_replica_has_its_own_port_bind_and_celery_node(tmp_path):
    env = env_with(tmp_path, SCALE=BRIEF)
    assert stack_tool.replica_ports(env, "payments") == ["8102", "8202", "8302"]
    assert stack_tool.replica_ports(env, "auth") == ["8101"]
    assert stack_tool.replica_ports(env, "webhooks-worker") == ["8114", "8214", "8314"]
    entries = dict(stack_tool.procfile_entries(env))
    assert {"payments", "payments-2", "payments-3", "payments-worker-2", "webhooks-worker-3"} <= set(entries)
    assert "payments-4" not in entries and "auth-2" not in entries
    assert entries["payments-3"].startswith("env PAYMENTS_BIND=127.0.0.1:8302 gunicorn ")
    assert entries["webhooks-worker-3"].startswith("env WEBHOOKS_WORKER_METRICS_BIND=127.0.0.1:8314 celery ")
    nodes = [entries[n].split(" -n ")[1].split()[0] for n in ("webhooks-worker", "webhooks-worker-2", "webhooks-worker-3")]
    assert nodes == ["webhooks@%h", "webhooks-2@%h", "webhooks-3@%h"]
    # The first replica is the entry as the Procfile has it.
    assert entries["payments"] == 'gunicorn -c services/payments/gunicorn.conf.py "payments:create_app()"'


def test_listed_ports_win_and_must_cover_every_replica(tmp_path):
    env = env_with(tmp_path, SCALE="refunds=2", REFUNDS_PORTS="4001, 4002,4003")
    assert stack_tool.replica_ports(env, "refunds") == ["4001", "4002"]
    with pytest.raises(SystemExit, match="lists 1 ports for 2 replicas"):
        stack_tool.replica_ports(env_with(tmp_path, SCALE="refunds=2", REFUNDS_PORTS="4001"), "refunds")


def test_nginx_upstreams_list_every_replica_and_the_config_passes_nginx_t(tmp_path):
    env = env_with(tmp_path, SCALE=BRIEF + " auth=2 webhooks-stream=2")
    text = stack_tool.render_nginx(env).read_text()
    stream = text[text.index("upstream webhooks_stream_svc {"):]
    assert "server 127.0.0.1:8105;" in stream and "server 127.0.0.1:8205;" in stream.split("}")[0]
    assert dict(stack_tool.procfile_entries(env))["webhooks-stream-2"].startswith("env WEBHOOKS_STREAM_BIND=127.0.0.1:8205 ")
    block = text[text.index("upstream payments_svc {"):text.index("}", text.index("upstream payments_svc {"))]
    assert [line.strip() for line in block.splitlines() if "server " in line] == [
        "server 127.0.0.1:8102;", "server 127.0.0.1:8202;", "server 127.0.0.1:8302;"]
    assert "server 127.0.0.1:8201;" in text and "server 127.0.0.1:8103;" in text
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        pytest.skip("nginx is not installed")
    result = subprocess.run([nginx, "-t", "-c", str(tmp_path / "nginx" / "nginx.conf"), "-p", str(tmp_path / "nginx")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_replicas_count_in_the_budget_and_pools_shrink_to_thirty(tmp_path):
    env = env_with(tmp_path, SCALE=BRIEF)
    before = stack_tool.connection_budget(env)
    assert before["payments"] == 3 * 2 * 5 and before["webhooks-worker"] == 3 * 3 and sum(before.values()) > 30
    shrunk = stack_tool.fit_connection_budget(env)
    after = stack_tool.connection_budget(env)
    assert sum(after.values()) <= stack_tool.DEFAULT_BUDGET
    assert all(size >= 1 for size in shrunk.values())
    assert env["PAYMENTS_DB_POOL_MAX"] == str(shrunk["payments"]) and int(env["PAYMENTS_DB_POOL_MAX"]) < 5
    # Shrunk by one factor: the biggest pool stays the biggest.
    assert shrunk["payments"] >= max(shrunk.values()) - 1


def test_without_replicas_the_pools_stand_as_configured(tmp_path):
    env = env_with(tmp_path)
    assert stack_tool.fit_connection_budget(env) == {}
    assert sum(stack_tool.connection_budget(env).values()) == 30
    # Replicas that fit are left alone too.
    small = env_with(tmp_path, SCALE="auth=2", AUTH_DB_POOL_MAX="1", PAYMENTS_DB_POOL_MAX="4")
    assert stack_tool.fit_connection_budget(small) == {}


def test_more_processes_than_the_budget_is_refused_with_what_to_change(tmp_path):
    env = env_with(tmp_path, SCALE="payments=12 payments-worker=3")
    with pytest.raises(SystemExit) as refused:
        stack_tool.fit_connection_budget(env)
    message = str(refused.value)
    assert "runs 36 processes" in message and "payments 24" in message and "budget of 30" in message
    assert "PAYMENTS_WORKERS=1" in message and "STACK_DB_BUDGET" in message
    # One gunicorn process per replica fits, and a larger budget lets the pools grow back.
    assert stack_tool.fit_connection_budget(env_with(tmp_path, SCALE="payments=12", PAYMENTS_WORKERS="1"))
    roomy = env_with(tmp_path, SCALE=BRIEF, STACK_DB_BUDGET="64")
    assert stack_tool.fit_connection_budget(roomy) == {}


def test_the_committed_scrape_config_is_the_generated_one_and_lists_replicas(tmp_path):
    committed = (ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text()
    assert committed == prometheus_config.render(dict(stack_tool.DEFAULTS)), \
        "deploy/prometheus/prometheus.yml is stale: regenerate it (see its header)"
    scaled = yaml.safe_load(prometheus_config.render(env_with(tmp_path, SCALE=BRIEF)))
    jobs = {job["job_name"]: job for job in scaled["scrape_configs"]}
    by_service = {c["labels"]["service"]: c["targets"] for job in jobs.values() for c in job["static_configs"]}
    assert by_service["payments"] == ["127.0.0.1:8102", "127.0.0.1:8202", "127.0.0.1:8302"]
    assert by_service["webhooks-worker"] == ["127.0.0.1:8114", "127.0.0.1:8214", "127.0.0.1:8314"]
    assert set(by_service) == {"auth", "payments", "refunds", "webhooks", "webhooks-stream", "payments-worker",
                               "refunds-worker", "webhooks-worker", "nginx"}
    kubernetes = yaml.safe_load((ROOT / "deploy" / "prometheus" / "kubernetes.yml").read_text())
    assert kubernetes["scrape_configs"][0]["kubernetes_sd_configs"][0]["role"] == "pod"


def test_every_scalable_compose_service_can_take_several_containers():
    # `docker compose up --scale payments=3`: a fixed container name or a published port would
    # stop the second container; on the host network the API replicas share their port.
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    host = yaml.safe_load((ROOT / "docker-compose.host.yml").read_text())["services"]
    for name in ("auth", "payments", "refunds", "webhooks", "gateway_worker", "refunds-worker", "webhooks-worker"):
        assert "container_name" not in compose[name] and "ports" not in compose[name], name
    for name in ("auth", "payments", "refunds", "webhooks"):
        assert host[name]["environment"]["GUNICORN_CMD_ARGS"] == "--reuse-port", name
    # And Compose itself takes both files (where a compose tool is installed: make test-compose installs one).
    tool = ["docker", "compose"] if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0 \
        else [shutil.which("docker-compose")] if shutil.which("docker-compose") else None
    if tool is None:
        return
    secrets = {name: "s" * 24 for name in ("POSTGRES_PASSWORD", "DB_ROLE_PASSWORD", "REDIS_PASSWORD", "GATEWAY_SECRET",
                                           "DASHBOARD_FORWARD_SECRET", "DASHBOARD_SECRET_KEY")}
    for files in (["-f", "docker-compose.yml"], ["-f", "docker-compose.yml", "-f", "docker-compose.host.yml"]):
        checked = subprocess.run([*tool, *files, "config", "-q"], cwd=ROOT, env={"PATH": "/usr/bin:/bin:/usr/local/bin", **secrets},
                                 capture_output=True, text=True, timeout=60)
        assert checked.returncode == 0, checked.stderr
