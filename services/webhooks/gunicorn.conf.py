"""gunicorn settings of the webhooks service (bind from WEBHOOKS_BIND, else 127.0.0.1:WEBHOOKS_PORT)."""

import os

bind = os.environ.get("WEBHOOKS_BIND") or f"127.0.0.1:{os.environ.get('WEBHOOKS_PORT', '8104')}"
worker_class = "gthread"
workers = int(os.environ.get("WEBHOOKS_WORKERS", "2"))
threads = int(os.environ.get("WEBHOOKS_THREADS", "4"))
keepalive = 75
timeout = 30
# One control socket per machine would be shared by every gunicorn here; none is needed.
control_socket_disable = True
graceful_timeout = 10
accesslog = None
