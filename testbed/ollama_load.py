"""The fake's load model and knobs: Ollama's scheduler (a model loaded or not, its parallel
slots, the pending queue in front of loads), keep_alive and cold loads, and the injected faults
(stdlib only; imported by plain name by fake_ollama.py).

Imitated from Ollama v0.12.10 (server/sched.go, llm/server.go, envconfig/config.go), as a
maintainer confirmed it in ollama/ollama#7758:
- A request for a model already loaded never queues in the scheduler: GetRunner (sched.go
  lines 103-107) hands it the loaded runner (useLoadedRunner, lines 371-389), and the runner's
  Completion/Embedding waits on `s.sem.Acquire(ctx, 1)` (llm/server.go line 1431), a semaphore
  of OLLAMA_NUM_PARALLEL (default 1, line 250) with no bound on its waiters. However many
  clients pile up, they wait (until they give up); none gets an error.
- A request for a model NOT loaded goes to `pendingReqCh`, a channel of OLLAMA_MAX_QUEUE
  (default 512, sched.go line 69); when it is full, `ErrMaxQueue` (lines 108-113), which
  routes.go handleScheduleError answers 503 "server busy, please try again.  maximum pending
  requests exceeded" (line 2304). One goroutine (processPending, line 132) takes them one at a
  time and loads the model synchronously (`llama.Load`, line 438): so the channel fills only
  while a model loads (or one unloads to make room). The fake's cold load (load_ms) is that
  synchronous part; the model counts as loaded once it is done.
- OLLAMA_KEEP_ALIVE (default 5m) or the request's keep_alive: how long a model stays loaded
  after its last request (0 unloads at once, a negative value keeps it); the next request
  after that pays a cold load (load_ms here), reported as load_duration.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from contextlib import contextmanager

from ollama_contract import OllamaError, norm

ERR_MAX_QUEUE = "server busy, please try again.  maximum pending requests exceeded"
DEFAULT_KEEP_ALIVE_S = 300.0
# knob -> (default, check, what it must be). The first group are faults (reset to these
# defaults); the second imitate Ollama's settings (reset to the values the backend started with).
FAULTS = {
    "latency_ms": (0, lambda v: type(v) is int and v >= 0, "an integer >= 0"),
    "error_rate": (0.0, lambda v: type(v) in (int, float) and 0 <= v <= 1, "a number in 0..1"),
    "wrong_models": ([], lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
                     "a list of model names"),
    "stream_error_after": (-1, lambda v: type(v) is int and v >= -1, "an integer >= -1 (-1: off)"),
    "no_usage": (False, lambda v: type(v) is bool, "true or false"),
}  # fmt: skip
SETTINGS = {
    "num_parallel": (1, lambda v: type(v) is int and v >= 1, "an integer >= 1"),
    "max_queue": (512, lambda v: type(v) is int and v >= 0, "an integer >= 0"),
    "keep_alive_s": (DEFAULT_KEEP_ALIVE_S, lambda v: type(v) in (int, float), "a number of seconds"),
    "load_ms": (0, lambda v: type(v) is int and v >= 0, "an integer >= 0"),
}


class Knobs:
    """Fault and setting knobs, changed at start (CLI) or at run time (POST /_fault)."""

    def __init__(self, start: dict):
        self.lock = threading.Lock()
        given = self.validated(start)
        self.start = {k: given.get(k, d) for k, (d, _, _) in SETTINGS.items()}
        faults = {k: given.get(k, d) for k, (d, _, _) in FAULTS.items()}
        self.values = faults | self.start
        self.fault_n = 0

    @staticmethod
    def validated(req) -> dict:
        checks = FAULTS | SETTINGS
        if not isinstance(req, dict) or set(req) - {*checks, "reset"}:
            raise OllamaError(400, f"knobs are {', '.join([*checks, 'reset'])}")
        new = {}
        for key, (_, valid, what) in checks.items():
            if key in req:
                if not valid(req[key]):
                    raise OllamaError(400, f"{key} must be {what}")
                new[key] = req[key]
        if "wrong_models" in new:
            new["wrong_models"] = sorted({norm(x) for x in new["wrong_models"]})
        if "error_rate" in new:
            new["error_rate"] = float(new["error_rate"])
        return new

    def update(self, req) -> dict:
        new = self.validated(req)
        with self.lock:
            if req.get("reset"):
                self.values = {k: d for k, (d, _, _) in FAULTS.items()} | self.start
            self.values |= new
            self.fault_n = 0  # restart the error counter: predictable tests
            return self.snapshot()

    def snapshot(self) -> dict:
        return {k: (list(v) if isinstance(v, list) else v) for k, v in self.values.items()}

    def __getitem__(self, key: str):
        return self.values[key]

    def should_fail(self) -> bool:
        """Request n (counted from the last knob change) fails iff floor(n*rate) > floor((n-1)*rate)."""
        with self.lock:
            self.fault_n += 1
            n, rate = self.fault_n, self.values["error_rate"]
        return math.floor(n * rate + 1e-9) > math.floor((n - 1) * rate + 1e-9)


class Scheduler:
    """Loaded models, their running requests and slot waiters, and the pending queue of loads."""

    def __init__(self, knobs: Knobs):
        self.knobs = knobs
        self.cond = threading.Condition()
        self.running: dict[str, int] = {}
        self.waiting = 0  # on a loaded model's slots: unbounded (llm/server.go s.sem.Acquire)
        self.pending: deque[object] = deque()  # sched.go pendingReqCh, at most max_queue
        self.loading = False  # processPending busy with one load
        self.expires: dict[str, float] = {}  # model -> monotonic time it unloads

    def is_loaded(self, model: str) -> bool:
        return self.expires.get(model, 0) > time.monotonic() or self.running.get(model, 0) > 0

    def loaded(self) -> dict[str, float]:
        """Models loaded now -> seconds until they unload (inf: kept)."""
        now = time.monotonic()
        with self.cond:
            return {m: t - now for m, t in self.expires.items() if t > now or self.running.get(m)}

    def snapshot(self) -> dict:
        with self.cond:
            running = {m: n for m, n in self.running.items() if n}
            return {"running": running, "waiting": self.waiting, "pending": len(self.pending),
                    "loading": self.loading}  # fmt: skip

    def unload(self, model: str) -> None:
        """sched.go expireRunner: keep_alive 0 with nothing to run unloads the model."""
        with self.cond:
            if not self.running.get(model):
                self.expires.pop(model, None)

    def _wait(self, blocked, gone) -> None:
        """Wait (holding the lock) while blocked(); a client that has gone stops waiting, as
        Ollama's waits end with the request's context (sem.Acquire(ctx), the pending request's
        ctx.Err() in processPending)."""
        while blocked():
            self.cond.wait(0.1)
            if gone is not None and gone():
                raise OllamaError(499, "request canceled")

    def _load_if_cold(self, model: str, gone) -> int:
        """Called holding the lock: through the pending queue unless the model is loaded
        (sched.go GetRunner). Returns the cold-load time paid, in ns."""
        if self.is_loaded(model):
            return 0
        if self.loading and len(self.pending) >= self.knobs["max_queue"]:
            raise OllamaError(503, ERR_MAX_QUEUE)  # the channel is full: `default:` branch
        me = object()
        self.pending.append(me)
        self.cond.notify_all()  # observers (tests) wait on the queue growing
        try:
            self._wait(lambda: self.loading or self.pending[0] is not me, gone)
        finally:
            self.pending.remove(me)
            self.cond.notify_all()
        if self.is_loaded(model):  # loaded while this one waited: processPending reuses it
            return 0
        self.loading = True
        self.cond.release()
        try:
            time.sleep(self.knobs["load_ms"] / 1000)
        finally:
            self.cond.acquire()
            self.loading = False
            self.expires[model] = math.inf  # loaded: the slot below sets its expiry
            self.cond.notify_all()
        return self.knobs["load_ms"] * 1_000_000

    @contextmanager
    def slot(self, model: str, keep: float | None, gone=None):
        """Hold one of the model's parallel slots (loading it first if needed); yields the
        load_duration reported, in ns. `keep`: the request's keep_alive in seconds, or None;
        `gone()`: whether the client has given up (then 499, as Ollama's cancelled context)."""
        keep = float(self.knobs["keep_alive_s"]) if keep is None else keep
        with self.cond:
            load_ns = 1_000_000 + self._load_if_cold(model, gone)
            if self.running.get(model, 0) >= self.knobs["num_parallel"]:
                self.waiting += 1
                self.cond.notify_all()
                try:
                    self._wait(lambda: self.running.get(model, 0) >= self.knobs["num_parallel"], gone)
                finally:
                    self.waiting -= 1
            self.running[model] = self.running.get(model, 0) + 1
            self.expires[model] = math.inf
        try:
            yield load_ns
        finally:
            with self.cond:
                self.running[model] -= 1
                self.expires[model] = time.monotonic() + keep
                self.cond.notify_all()
