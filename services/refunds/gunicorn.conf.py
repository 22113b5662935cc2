"""gunicorn settings: ``gunicorn -c services/refunds/gunicorn.conf.py "refunds:create_app()"``."""

import os

from gateway_common.serving import json_error_pages, multiprocess_metrics, port_not_taken, whole_responses

# gunicorn's own 400/414/500 answers in the API.md envelope, not HTML pages.
json_error_pages()
# A response's head and body in one write: a replica killed mid-answer leaves nginx nothing, which it sends on.
whole_responses()
# nginx accepts request lines up to its 8 KiB header buffers; gunicorn's default (4094) refused
# longer ones nginx had let through, so a long query string never reached the app's validation.
limit_request_line = 8190

bind = os.environ.get("REFUNDS_BIND") or f"127.0.0.1:{os.environ.get('REFUNDS_PORT', '8103')}"
# /metrics adds up every worker of this gunicorn (gateway_common.metrics, docs/metrics.md).
when_ready, child_exit = multiprocess_metrics("refunds", bind)
# Each worker listens on a socket of its own, so connections spread over the workers (port_not_taken's docstring).
reuse_port = True
on_starting = port_not_taken(bind)
worker_class = "gthread"
workers = int(os.environ.get("REFUNDS_WORKERS", "2"))
threads = int(os.environ.get("REFUNDS_THREADS", "8"))
timeout = 30
graceful_timeout = 10
keepalive = 30
accesslog = None
# gunicorn's control socket defaults to one path per user, shared by every master on
# the machine (several services, parallel test stacks); nothing here uses it.
control_socket_disable = True
