"""A gateway's readiness, seen from the control machine while its batch deploys."""

from __future__ import annotations

import threading
import time

import httpx


class ReadinessWatch(threading.Thread):
    """Polls a gateway's /health/readiness while its batch deploys: restart-to-ready is the time
    from the first failed poll to the next good one (None if it never went down)."""

    def __init__(self, url: str, interval: float = 0.2):
        super().__init__(daemon=True)
        self.url, self.interval = url, interval
        self.down_at: float | None = None
        self.ready_seconds: float | None = None
        self._done = threading.Event()

    def run(self) -> None:
        with httpx.Client(trust_env=False, timeout=1.0) as client:
            while not self._done.is_set():
                try:
                    ok = client.get(f"{self.url}/health/readiness").status_code == 200
                except httpx.HTTPError:
                    ok = False
                now = time.monotonic()
                if not ok and self.down_at is None:
                    self.down_at = now
                elif ok and self.down_at is not None and self.ready_seconds is None:
                    self.ready_seconds = now - self.down_at
                self._done.wait(self.interval)

    def stop(self) -> float | None:
        self._done.set()
        self.join(timeout=5)
        return self.ready_seconds
