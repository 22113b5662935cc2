"""gunicorn settings of the auth service (bind from AUTH_BIND)."""

import os

bind = os.environ.get("AUTH_BIND", "127.0.0.1:8101")
worker_class = "gthread"
workers = int(os.environ.get("AUTH_WORKERS", "2"))
threads = int(os.environ.get("AUTH_THREADS", "4"))
keepalive = 75
timeout = 30
graceful_timeout = 10
accesslog = None
# One control socket per machine would be shared by every gunicorn here; none is needed.
control_socket_disable = True
