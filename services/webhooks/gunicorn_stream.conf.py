"""gunicorn settings of the webhooks service's stream process (``GET /events/stream`` only).

Each open stream holds a thread for as long as the client listens, so the streams get a process
of their own with many threads (``WEBHOOKS_STREAM_THREADS``, 64) and the API's few threads stay
free. A stream touches the database only for short reads, so one connection serves them all
(``WEBHOOKS_STREAM_DB_POOL_MAX``, 1; see ``webhooks.create_stream_app``).
Bind from WEBHOOKS_STREAM_BIND, else 127.0.0.1:WEBHOOKS_STREAM_PORT (8105).
"""

import os

from gateway_common.serving import json_error_pages, multiprocess_metrics, whole_responses

json_error_pages()
# A response's head and body in one write: a replica killed mid-answer leaves nginx nothing, which it sends on.
whole_responses()
limit_request_line = 8190

bind = os.environ.get("WEBHOOKS_STREAM_BIND") or f"127.0.0.1:{os.environ.get('WEBHOOKS_STREAM_PORT', '8105')}"
# /metrics on this port too, kept across a restart of its worker (gateway_common.metrics, docs/metrics.md).
when_ready, child_exit = multiprocess_metrics("webhooks-stream", bind)
worker_class = "gthread"
workers = 1
threads = int(os.environ.get("WEBHOOKS_STREAM_THREADS", "64"))
keepalive = 75
timeout = 30
control_socket_disable = True
# Streams never end by themselves: on a restart they are cut after this and the clients reconnect
# with Last-Event-ID.
graceful_timeout = 3
accesslog = None
