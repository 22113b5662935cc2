"""gunicorn settings of the dashboard (bind from DASHBOARD_BIND, else DASHBOARD_HOST:DASHBOARD_PORT)."""

import os

bind = os.environ.get("DASHBOARD_BIND") or (
    f"{os.environ.get('DASHBOARD_HOST', '127.0.0.1')}:{os.environ.get('DASHBOARD_PORT', '3000')}"
)
worker_class = "gthread"
workers = int(os.environ.get("DASHBOARD_WORKERS", "2"))
threads = int(os.environ.get("DASHBOARD_THREADS", "8"))
keepalive = 75
timeout = 30
# One control socket per machine would be shared by every gunicorn here; none is needed.
control_socket_disable = True
graceful_timeout = 10
accesslog = None
