"""Background polling loops (outbox relay, due-work sweepers, heartbeats)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass
class Loop:
    """Call ``step`` forever; it returns how much it did, and idle steps wait ``interval``.

    A step that did some work is followed by ``busy_interval`` (default none): a short pause
    lets work gather into bigger batches, so each query, commit and message carries more.
    """

    name: str
    step: Callable[[], int]
    interval: float = 0.1
    error_backoff: float = 1.0
    busy_interval: float = 0.0

    def run(self, stop: threading.Event) -> None:
        """Run until ``stop`` is set; errors are logged and retried after a pause."""
        while not stop.is_set():
            try:
                done = self.step()
            except Exception:
                log.warning("loop %s failed; retrying", self.name, exc_info=True)
                stop.wait(self.error_backoff)
                continue
            if not done:
                stop.wait(self.interval)
            elif self.busy_interval:
                stop.wait(self.busy_interval)


class LoopRunner:
    """Runs loops in daemon threads and stops them together."""

    def __init__(self, loops: list[Loop]) -> None:
        self.loops = loops
        self.stop_event = threading.Event()
        self.threads: list[threading.Thread] = []

    def start(self) -> None:
        """Start one thread per loop."""
        for loop in self.loops:
            thread = threading.Thread(target=loop.run, args=(self.stop_event,), name=loop.name, daemon=True)
            thread.start()
            self.threads.append(thread)

    def stop(self, timeout: float = 5.0) -> None:
        """Ask every loop to stop and wait for them."""
        self.stop_event.set()
        for thread in self.threads:
            thread.join(timeout)
