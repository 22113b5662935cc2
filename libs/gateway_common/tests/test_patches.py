"""Patches of kombu and gunicorn internals run only on the library versions they were checked against."""

from __future__ import annotations

import email.utils
import re
import socket
from importlib.metadata import version

import pytest
from gateway_common import serving, workers
from gateway_common.config import Settings
from gateway_common.patches import UncheckedLibraryVersion
from gunicorn import util
from gunicorn.config import Config
from gunicorn.http import wsgi
from gunicorn.http.parser import RequestParser

PATCHES = [
    ("kombu", workers, "KOMBU_CHECKED", workers._survive_restore_on_dead_connection, "restore_unacked"),
    ("gunicorn", serving, "GUNICORN_CHECKED", serving.json_error_pages, "write_error"),
    ("gunicorn", serving, "GUNICORN_CHECKED", serving.cached_date_header, "http_date"),
    ("gunicorn", serving, "GUNICORN_CHECKED", serving.whole_responses, "Response.write"),
]


@pytest.fixture(autouse=True)
def _restore_gunicorn(monkeypatch: pytest.MonkeyPatch) -> None:
    # The gunicorn patches replace module functions; the test leaves them as it found them.
    monkeypatch.setattr(util, "write_error", util.write_error)
    monkeypatch.setattr(util, "http_date", util.http_date)
    monkeypatch.setattr(wsgi.Response, "write", wsgi.Response.write)


@pytest.mark.parametrize(("distribution", "module", "constant", "apply", "patched"), PATCHES)
def test_each_patch_was_checked_against_the_installed_version(distribution, module, constant, apply, patched):
    assert version(distribution) in getattr(module, constant)
    apply()  # raises UncheckedLibraryVersion otherwise


@pytest.mark.parametrize(("distribution", "module", "constant", "apply", "patched"), PATCHES)
def test_each_patch_refuses_a_version_it_was_not_checked_against(
    monkeypatch, distribution, module, constant, apply, patched
):
    monkeypatch.setattr(module, constant, ("0.0.1",))
    with pytest.raises(UncheckedLibraryVersion) as raised:
        apply()
    message = str(raised.value)
    assert f"{distribution} {version(distribution)} is installed" in message
    assert patched in message
    assert "https://github.com/" in message


def test_a_celery_app_is_not_made_on_an_unchecked_kombu(monkeypatch):
    monkeypatch.setattr(workers, "KOMBU_CHECKED", ("0.0.1",))
    with pytest.raises(UncheckedLibraryVersion, match="restore_unacked"):
        workers.make_celery(Settings.from_env("patches-test"), "patches-test")


def test_the_cached_date_header_is_gunicorns_format():
    serving.cached_date_header()
    first = util.http_date()
    assert email.utils.parsedate_to_datetime(first).tzname() == "UTC"
    assert first.endswith(" GMT")
    assert util.http_date(0) == "Thu, 01 Jan 1970 00:00:00 GMT"


class _Wire:
    """A real socket that also remembers each ``sendall`` (one per write gunicorn makes)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.writes: list[bytes] = []

    def sendall(self, data: bytes) -> None:
        self.writes.append(bytes(data))
        self.sock.sendall(data)


def _answer(chunks: list[bytes], headers: list[tuple[str, str]]) -> tuple[list[bytes], bytes]:
    """Have gunicorn answer one parsed request with ``chunks``; return its writes and what the peer read."""
    cfg = Config()
    left, right = socket.socketpair()
    try:
        right.sendall(b"POST /api/v1/payments HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        request = next(iter(RequestParser(cfg, left, ("127.0.0.1", 1))))
        wire = _Wire(left)
        response, _ = wsgi.create(request, wire, ("127.0.0.1", 1), ("127.0.0.1", 8102), cfg)
        response.start_response("201 CREATED", headers)
        for chunk in chunks:
            response.write(chunk)
        response.close()
        left.shutdown(socket.SHUT_WR)
        received = b""
        while block := right.recv(65536):
            received += block
        return wire.writes, received
    finally:
        left.close()
        right.close()


def test_a_response_head_and_body_leave_in_one_write():
    """A replica killed between two writes left nginx a head without its body (tests/chaos, 1 in 6,000)."""
    body = b'{"id":"pay_0123456789abcdef","status":"pending"}'
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    unpatched, plain = _answer([body], headers)
    assert len(unpatched) == 2  # gunicorn's own behaviour: the head, then the body

    serving.whole_responses()
    serving.whole_responses()  # applying it twice wraps gunicorn's write once
    writes, received = _answer([body], headers)
    assert len(writes) == 1
    assert writes[0].startswith(b"HTTP/1.1 201 CREATED\r\n") and writes[0].endswith(b"\r\n\r\n" + body)
    undated = [re.sub(rb"Date: [^\r]*", b"", raw) for raw in (received, plain)]
    assert undated[0] == undated[1]  # the same bytes as before, in one write

    # A streamed answer (chunked, as the event stream sends) keeps its framing; later chunks follow as before.
    writes, received = _answer([b"data: 1\n\n", b"data: 2\n\n"], [("Content-Type", "text/event-stream")])
    assert len(writes) == 3  # head with the first chunk, the second chunk, the terminating chunk
    assert writes[0].endswith(b"\r\n\r\n9\r\ndata: 1\n\n\r\n")
    assert received.endswith(b"9\r\ndata: 2\n\n\r\n0\r\n\r\n")


def _listening_sockets(port: int) -> int:
    """How many sockets listen on ``port`` (IPv4), read from /proc/net/tcp."""
    rows = open("/proc/net/tcp").read().splitlines()[1:]
    return sum(1 for row in rows if row.split()[1].endswith(f":{port:04X}") and row.split()[3] == "0A")


def test_each_worker_listens_on_its_own_socket_and_a_second_gunicorn_is_refused(tmp_path):
    import subprocess
    import sys
    import time

    import requests

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    (tmp_path / "hello.py").write_text(
        "def app(environ, start_response):\n"
        "    start_response('200 OK', [('Content-Length', '2')])\n"
        "    return [b'ok']\n"
    )
    (tmp_path / "conf.py").write_text(
        "from gateway_common.serving import port_not_taken\n"
        f"bind = '127.0.0.1:{port}'\n"
        "workers = 2\n"
        "worker_class = 'gthread'\n"
        "reuse_port = True\n"
        "on_starting = port_not_taken(bind, attempts=2)\n"
    )
    command = [sys.executable, "-m", "gunicorn", "-c", str(tmp_path / "conf.py"), "--chdir", str(tmp_path), "hello:app"]
    first = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while _listening_sockets(port) < 2:
            assert time.monotonic() < deadline, "the workers did not open their sockets"
            time.sleep(0.2)
        assert requests.get(f"http://127.0.0.1:{port}/", timeout=5).text == "ok"
        assert _listening_sockets(port) == 2  # one per worker, none in the master

        second = subprocess.run(command, capture_output=True, text=True, timeout=30)
        assert second.returncode != 0
        assert f"127.0.0.1:{port} is already served by another process" in second.stderr
        assert first.poll() is None and requests.get(f"http://127.0.0.1:{port}/", timeout=5).text == "ok"
    finally:
        first.terminate()
        first.wait(timeout=15)
    # Once the port is free, the check lets a gunicorn start at once.
    serving.port_not_taken(f"127.0.0.1:{port}", attempts=1)(None)


def test_replicas_meant_to_share_a_port_skip_the_check(monkeypatch):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        bind = f"127.0.0.1:{listener.getsockname()[1]}"
        with pytest.raises(SystemExit, match="already served by another process"):
            serving.port_not_taken(bind, attempts=1)(None)
        monkeypatch.setenv("PORT_SHARED_BY_REPLICAS", "true")
        serving.port_not_taken(bind, attempts=1)(None)  # returns: compose's replicas share the port
