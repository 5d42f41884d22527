"""The benchmark's load: chat latency and throughput through the gateway and straight to the backend."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from bench.pyinfra_runs import log
from bench.steps import percentile, summary
from testbed import fleet

ENV_FILE = "/opt/HX-Infrastructure-/api-gateway/config/api-gateway/gateway.env"
CHAT_MODEL, CHAT_TAG, CHAT_BACKEND = "llm01-llama3.2-3b", "llama3.2:3b", "llm-01"
PROMPT = "Return exactly the text: HX-OK"


def master_key(machine: fleet.Machine) -> str:
    out = fleet.ssh_command(machine, f"cat {ENV_FILE}").stdout
    for line in out.splitlines():
        name, _, value = line.partition("=")
        if name.strip() == "LITELLM_MASTER_KEY":
            return value.strip().strip("'\"")
    raise SystemExit(f"bench: no master key on {machine.name}")


def load(url: str, body: dict, headers: dict, count: int, concurrency: int) -> tuple[list[float], float]:
    """`count` POSTs with `concurrency` in flight; returns each latency (ms) and the wall time (s)."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    with httpx.Client(timeout=60, trust_env=False, limits=limits, headers=headers) as client:

        def one(_: int) -> float:
            started = time.perf_counter()
            response = client.post(url, json=body)
            response.raise_for_status()
            return (time.perf_counter() - started) * 1000

        for _ in range(min(10, count)):  # warm up: connections, LiteLLM's first-use lookups
            one(0)
        started = time.perf_counter()
        with ThreadPoolExecutor(concurrency) as pool:
            latencies = list(pool.map(one, range(count)))
        return latencies, time.perf_counter() - started


def latency_cells(gateway: fleet.Machine, backend: fleet.Machine, requests: int, runs: int) -> dict:
    key = master_key(gateway)
    targets = {
        "gateway": (
            f"http://{gateway.address}:4000/v1/chat/completions",
            {
                "model": CHAT_MODEL,
                "messages": [{"role": "user", "content": PROMPT}],
                "max_tokens": 10,
                "temperature": 0,
            },
            {"Authorization": f"Bearer {key}"},
        ),
        "direct": (
            f"http://{backend.address}:{fleet.OLLAMA_PORT}/api/chat",
            {
                "model": CHAT_TAG,
                "messages": [{"role": "user", "content": PROMPT}],
                "stream": False,
                "options": {"temperature": 0, "num_predict": 10},
            },
            {},
        ),
    }
    cells = {}
    for concurrency in (1, 16):
        for name, (url, body, headers) in targets.items():
            p50s, p99s, rates = [], [], []
            for _ in range(runs):
                latencies, elapsed = load(url, body, headers, requests, concurrency)
                p50s.append(percentile(latencies, 50))
                p99s.append(percentile(latencies, 99))
                rates.append(requests / elapsed)
            cells[f"{name}_c{concurrency}"] = {
                "p50_ms": summary(p50s),
                "p99_ms": summary(p99s),
                "rps": summary(rates),
                "requests_per_run": requests,
            }
            log(
                f"{name} c={concurrency}: p50 {cells[f'{name}_c{concurrency}']['p50_ms']['median']:.1f} ms, "
                f"p99 {cells[f'{name}_c{concurrency}']['p99_ms']['median']:.1f} ms, "
                f"{cells[f'{name}_c{concurrency}']['rps']['median']:.0f} req/s"
            )
    return cells


def workers_rps(gateway: fleet.Machine, requests: int, runs: int) -> dict:
    key = master_key(gateway)
    body = {"model": CHAT_MODEL, "messages": [{"role": "user", "content": PROMPT}], "max_tokens": 10}
    url = f"http://{gateway.address}:4000/v1/chat/completions"
    rates, p50s = [], []
    for _ in range(runs):
        latencies, elapsed = load(url, body, {"Authorization": f"Bearer {key}"}, requests, 16)
        rates.append(requests / elapsed)
        p50s.append(percentile(latencies, 50))
    return {"rps": summary(rates), "p50_ms": summary(p50s)}
