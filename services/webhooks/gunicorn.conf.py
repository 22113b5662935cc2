"""gunicorn settings of the webhooks service (bind from WEBHOOKS_BIND, else 127.0.0.1:WEBHOOKS_PORT)."""

import os

from gateway_common.serving import json_error_pages, multiprocess_metrics, port_not_taken, whole_responses

# gunicorn's own 400/414/500 answers in the API.md envelope, not HTML pages.
json_error_pages()
# A response's head and body in one write: a replica killed mid-answer leaves nginx nothing, which it sends on.
whole_responses()
# nginx accepts request lines up to its 8 KiB header buffers; gunicorn's default (4094) refused
# longer ones nginx had let through, so a long query string never reached the app's validation.
limit_request_line = 8190

bind = os.environ.get("WEBHOOKS_BIND") or f"127.0.0.1:{os.environ.get('WEBHOOKS_PORT', '8104')}"
# /metrics adds up every worker of this gunicorn (gateway_common.metrics, docs/metrics.md).
when_ready, child_exit = multiprocess_metrics("webhooks", bind)
# Each worker listens on a socket of its own, so connections spread over the workers (port_not_taken's docstring).
reuse_port = True
on_starting = port_not_taken(bind)
worker_class = "gthread"
workers = int(os.environ.get("WEBHOOKS_WORKERS", "2"))
threads = int(os.environ.get("WEBHOOKS_THREADS", "4"))
keepalive = 75
timeout = 30
# One control socket per machine would be shared by every gunicorn here; none is needed.
control_socket_disable = True
graceful_timeout = 10
accesslog = None
