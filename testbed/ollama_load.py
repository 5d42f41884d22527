"""The fake's load model and knobs: per-model parallelism, a bounded queue, keep_alive and cold
loads, and the injected faults (stdlib only; imported by plain name by fake_ollama.py).

Imitated from Ollama's server/sched.go and envconfig/config.go:
- OLLAMA_NUM_PARALLEL (default 1): requests one loaded model runs at once; the rest wait.
- OLLAMA_MAX_QUEUE (default 512): past that many waiting requests the next one is answered
  503 "server busy, please try again.  maximum pending requests exceeded" (sched.go ErrMaxQueue,
  routes.go handleScheduleError). The fake counts the waiters of every model together.
- OLLAMA_KEEP_ALIVE (default 5m) or the request's keep_alive: how long a model stays loaded
  after its last request (0 unloads at once, a negative value keeps it); the next request
  after that pays a cold load (load_ms here), reported as load_duration.
"""

from __future__ import annotations

import math
import re
import threading
import time
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
_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}


def keep_alive_seconds(value, default: float) -> float:
    """api/types.go Duration: a number of seconds or a Go duration string ("5m", "1h30m");
    negative means forever (math.inf here)."""
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise OllamaError(400, 'keep_alive must be a number of seconds or a duration like "5m"')
    if isinstance(value, str):
        body = value.strip()
        sign, body = (-1, body[1:]) if body.startswith("-") else (1, body)
        if re.fullmatch(r"\d+(\.\d+)?", body):
            seconds = sign * float(body)
        elif body and not _DURATION_RE.sub("", body):
            seconds = sign * sum(float(n) * _UNIT[u] for n, u in _DURATION_RE.findall(body))
        else:
            raise OllamaError(400, f'time: invalid duration "{value}"')
    else:
        seconds = float(value)
    return math.inf if seconds < 0 else seconds


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
    """Loaded models, their running requests and the queue in front of them."""

    def __init__(self, knobs: Knobs):
        self.knobs = knobs
        self.cond = threading.Condition()
        self.running: dict[str, int] = {}
        self.waiting = 0
        self.expires: dict[str, float] = {}  # model -> monotonic time it unloads
        self.loaded_at: dict[str, float] = {}

    def loaded(self) -> dict[str, float]:
        """Models loaded now -> seconds until they unload (inf: kept)."""
        now = time.monotonic()
        with self.cond:
            return {m: t - now for m, t in self.expires.items() if t > now or self.running.get(m)}

    def snapshot(self) -> dict:
        with self.cond:
            return {"running": {m: n for m, n in self.running.items() if n}, "waiting": self.waiting}

    @contextmanager
    def slot(self, model: str, keep_alive):
        """Hold one of the model's parallel slots; yields the cold-load time paid, in ns."""
        keep = keep_alive_seconds(keep_alive, float(self.knobs["keep_alive_s"]))
        with self.cond:
            if self.running.get(model, 0) >= self.knobs["num_parallel"]:
                if self.waiting >= self.knobs["max_queue"]:
                    raise OllamaError(503, ERR_MAX_QUEUE)
                self.waiting += 1
                self.cond.notify_all()  # observers (tests) wait on the queue growing
                try:
                    while self.running.get(model, 0) >= self.knobs["num_parallel"]:
                        self.cond.wait()
                finally:
                    self.waiting -= 1
            self.running[model] = self.running.get(model, 0) + 1
            cold = self.expires.get(model, 0) <= time.monotonic() and self.running[model] == 1
            if cold:
                self.expires[model] = math.inf  # loading: others do not load it again
        load_ns = 1_000_000
        if cold and self.knobs["load_ms"]:
            time.sleep(self.knobs["load_ms"] / 1000)
            load_ns += self.knobs["load_ms"] * 1_000_000
        try:
            yield load_ns
        finally:
            with self.cond:
                self.running[model] -= 1
                self.expires[model] = time.monotonic() + keep
                self.cond.notify_all()
