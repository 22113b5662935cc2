"""A worker's per-process resources: built once per process, on first use, again after a fork."""

from __future__ import annotations

import os
import threading
import time

from gateway_common.workers import per_process


def test_a_resource_is_built_on_first_use_once_however_many_threads_ask():
    builds: list[int] = []

    @per_process
    def resource() -> object:
        builds.append(os.getpid())
        time.sleep(0.05)  # long enough for every thread to ask while the first build runs
        return object()

    assert not resource.built()
    got: list[object] = []
    threads = [threading.Thread(target=lambda: got.append(resource())) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    assert builds == [os.getpid()]
    assert len(got) == 8 and all(value is got[0] for value in got)
    assert resource.built()
    assert resource.__name__ == "resource"


def test_a_forked_child_builds_its_own():
    @per_process
    def pid_of_builder() -> int:
        return os.getpid()

    assert pid_of_builder() == os.getpid()
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # the child: report what it sees, then leave without running pytest's teardown
        try:
            os.write(write, f"{int(pid_of_builder.built())} {pid_of_builder()} {os.getpid()}".encode())
        finally:
            os._exit(0)
    os.close(write)
    built_before, built_by, child_pid = (int(v) for v in os.read(read, 100).split())
    os.close(read)
    os.waitpid(child, 0)
    assert built_before == 0, "the child does not inherit the parent's resource"
    assert built_by == child_pid == child
    assert pid_of_builder() == os.getpid()


def test_a_late_ack_on_a_channel_closed_by_a_reconnect_does_not_kill_the_worker():
    """A task finishing after the consumer reconnected acks through the old, closed channel.

    Unpatched, kombu raises AttributeError there and Celery exits ("Unrecoverable error"); the
    patched ack drops the acknowledgement and the message is delivered again on the new channel.
    """
    import secrets

    from gateway_common.workers import _survive_restore_on_dead_connection
    from kombu import Connection, Consumer, Exchange, Queue

    _survive_restore_on_dead_connection()
    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    name = f"late-ack-test-{secrets.token_hex(4)}"
    queue = Queue(name, Exchange(name, type="direct"), routing_key=name)
    options = {"global_keyprefix": f"{name}:"}
    with Connection(url, transport_options=options) as connection:
        with connection.Producer() as producer:
            producer.publish({"n": 1}, exchange=queue.exchange, routing_key=name, declare=[queue])
        old_channel = connection.channel()
        got: list = []
        with Consumer(old_channel, queues=[queue], callbacks=[lambda body, m: got.append(m)]):
            connection.drain_events(timeout=5)
        assert len(got) == 1
        old_channel.close()  # what the consumer does on a broker reconnect; restores the message
        # The state CI's traceback showed (kombu 5.7.0, Redis restarted under the worker): the
        # closed channel has neither a connection nor a connection pool, so the ack cannot make one.
        old_channel._disconnect_pools()
        assert old_channel.connection is None

        got[0].ack()  # the late ack of a task that was still running: must not raise

        again: list = []
        with Consumer(connection.channel(), queues=[queue], callbacks=[lambda body, m: again.append((body, m))]):
            connection.drain_events(timeout=5)
        assert [body for body, _ in again] == [{"n": 1}], "the message was not delivered again"
        again[0][1].ack()
        queue(connection.default_channel).delete()
