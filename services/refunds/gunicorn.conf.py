"""gunicorn settings: ``gunicorn -c services/refunds/gunicorn.conf.py "refunds:create_app()"``."""

import os

bind = os.environ.get("REFUNDS_BIND") or f"127.0.0.1:{os.environ.get('REFUNDS_PORT', '8103')}"
worker_class = "gthread"
workers = int(os.environ.get("REFUNDS_WORKERS", "2"))
# Keep threads <= DB_POOL_MAX (default 8): each request holds one pooled connection.
threads = int(os.environ.get("REFUNDS_THREADS", "8"))
timeout = 30
graceful_timeout = 10
keepalive = 30
accesslog = None
# gunicorn's control socket defaults to one path per user, shared by every master on
# the machine (several services, parallel test stacks); nothing here uses it.
control_socket_disable = True
