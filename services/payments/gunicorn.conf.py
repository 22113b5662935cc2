"""gunicorn settings of the payments service (bind from PAYMENTS_PORT, default 127.0.0.1:8102).

gthread workers: requests mostly wait on PostgreSQL (on a loaded machine, mostly for their
commit's WAL flush), so 12 threads per process: more inserts in flight share each flush. 2x12
beat 2x8, 3x6 and 4x4 on POST /payments and matched them on GET (figures: bench/RESULTS.md,
History; measured while the workers still shared one listening socket, see ``reuse_port`` below). Each thread may hold one pooled connection, so the pool is at least as large as the
thread count. nginx keeps upstream connections alive (HTTP/1.1, ``Connection ""``), so
``keepalive`` must outlast its idle time.
"""

import os

from gateway_common.serving import (
    cached_date_header,
    json_error_pages,
    multiprocess_metrics,
    port_not_taken,
    whole_responses,
)

# gunicorn's own 400/414/500 answers in the API.md envelope, not HTML pages.
json_error_pages()
# A response's head and body in one write: a replica killed mid-answer leaves nginx nothing, which it sends on.
whole_responses()
# nginx accepts request lines up to its 8 KiB header buffers; gunicorn's default (4094) refused
# longer ones nginx had let through, so a long query string never reached the app's validation.
limit_request_line = 8190

_host = os.environ.get("PAYMENTS_HOST", "127.0.0.1")
_port = os.environ.get("PAYMENTS_PORT", "8102")
bind = os.environ.get("PAYMENTS_BIND", f"{_host}:{_port}")
# /metrics adds up every worker of this gunicorn (gateway_common.metrics, docs/metrics.md).
when_ready, child_exit = multiprocess_metrics("payments", bind)
# Each worker listens on a socket of its own, so connections spread over the workers (port_not_taken's docstring).
reuse_port = True
on_starting = port_not_taken(bind)
worker_class = os.environ.get("PAYMENTS_WORKER_CLASS", "gthread")
workers = int(os.environ.get("PAYMENTS_WORKERS", "2"))
threads = int(os.environ.get("PAYMENTS_THREADS", "12"))
keepalive = 75
timeout = 30
# One control socket per machine would be shared by every gunicorn here; none is needed.
control_socket_disable = True
graceful_timeout = 10
backlog = 2048
worker_connections = 1000
accesslog = None
# Only the gateway (nginx) reaches this service. Trusting any peer's X-Forwarded-Proto skips
# parsing the peer's address against an allow list on every request (a measurable share of a
# GET's CPU: bench/RESULTS.md, History);
# gunicorn uses it for wsgi.url_scheme only, and nginx always sets it.
forwarded_allow_ips = os.environ.get("PAYMENTS_FORWARDED_ALLOW_IPS", "*")

# The pool (PAYMENTS_DB_POOL_MAX, else DB_POOL_MAX) may be smaller than the threads: a request
# waits for a connection (DB_POOL_TIMEOUT), and most hold one for well under a millisecond.


def post_fork(server, worker):  # gunicorn hook signature
    """Format the Date header once per second instead of once per response."""
    cached_date_header()


def post_worker_init(worker):  # gunicorn hook signature
    """Move everything the loaded app holds to the GC's permanent generation.

    The app's long-lived objects (Flask, marshmallow, apispec, psycopg) otherwise make every
    full collection walk them all with all threads of the process stopped (bench/RESULTS.md, History).
    """
    import gc

    gc.collect()
    gc.freeze()
