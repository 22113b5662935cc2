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
