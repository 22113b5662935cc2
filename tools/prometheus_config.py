"""Print a Prometheus scrape config for the native stack: every API replica, worker replica and nginx.

    python -m tools.prometheus_config > prometheus.yml     (the stack's settings and SCALE, as make up reads them)

deploy/prometheus/prometheus.yml is its output for the default ports and no replicas (a test keeps it so).
"""

from __future__ import annotations

import sys

import yaml

from tools import stack as stack_tool

API = stack_tool.API_PARTS
WORKERS = ("payments-worker", "refunds-worker", "webhooks-worker")
# nginx-prometheus-exporter's default listener; it reads nginx's stub_status (docs/metrics.md).
NGINX_EXPORTER = "127.0.0.1:9113"

HEADER = """\
# Prometheus scrape config for the gateway run natively (make run / make up): every API service
# (/metrics on its own port), every worker's metrics port, and nginx through nginx-prometheus-exporter
# (prometheus-nginx-exporter -nginx.scrape-uri http://127.0.0.1:{status}/stub_status).
# Written by `python -m tools.prometheus_config` (it lists each replica when SCALE is set); the
# metric names are in docs/metrics.md. For Kubernetes see kubernetes.yml beside this file.
"""


def scrape_config(env: dict[str, str]) -> dict:
    """The scrape config (as data) of a stack with the settings ``env``."""

    def targets(names: tuple[str, ...]) -> list[dict]:
        return [
            {"targets": [f"127.0.0.1:{port}" for port in stack_tool.replica_ports(env, name)], "labels": {"service": name}}
            for name in names
        ]

    return {
        "global": {"scrape_interval": "15s", "scrape_timeout": "10s"},
        "scrape_configs": [
            {"job_name": "gateway-services", "metrics_path": "/metrics", "static_configs": targets(API)},
            {"job_name": "gateway-workers", "metrics_path": "/metrics", "static_configs": targets(WORKERS)},
            {"job_name": "gateway-nginx", "static_configs": [{"targets": [NGINX_EXPORTER], "labels": {"service": "nginx"}}]},
        ],
    }


def render(env: dict[str, str]) -> str:
    """The scrape config of a stack with the settings ``env``, as YAML with a header."""
    body = yaml.safe_dump(scrape_config(env), sort_keys=False, default_flow_style=False)
    return HEADER.format(status=env["NGINX_STATUS_PORT"]) + body


def main() -> int:
    """Print the config of the stack that `make up` would start here."""
    sys.stdout.write(render(stack_tool.stack_env()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
