"""The benchmark's load: chat latency and throughput through the gateway and straight to the backend,
and the gateway's memory (RSS of every process of its unit)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from bench.pyinfra_runs import load_average, log
from bench.steps import percentile, summary
from testbed import fleet

ENV_FILE = "/opt/HX-Infrastructure-/api-gateway/config/api-gateway/gateway.env"
UNIT = "hx-litellm-gateway.service"
CHAT_MODEL, CHAT_TAG, CHAT_BACKEND = "llm01-llama3.2-3b", "llama3.2:3b", "llm-01"
PROMPT = "Return exactly the text: HX-OK"


def master_key(machine: fleet.Machine) -> str:
    out = fleet.ssh_command(machine, f"cat {ENV_FILE}").stdout
    for line in out.splitlines():
        name, _, value = line.partition("=")
        if name.strip() == "LITELLM_MASTER_KEY":
            return value.strip().strip("'\"")
    raise SystemExit(f"bench: no master key on {machine.name}")


def gateway_rss_mb(machine: fleet.Machine) -> float:
    """Resident memory of the gateway's main process and all its descendants (the supervisor and
    its workers). By process tree, not cgroup: the testbed's machines have a hybrid cgroup v1
    layout where the unit's cgroup.procs is not under /sys/fs/cgroup/<ControlGroup>."""
    script = (
        f"pid=$(systemctl show -p MainPID --value {UNIT}); ps -eo pid=,ppid=,rss= | awk -v root=$pid "
        "'{p[$1]=$2; r[$1]=$3} END {for (k in p) {x=k; while (x != root && (x in p) && x > 1) x=p[x]; "
        "if (x == root) s+=r[k]} print s+0}'"
    )
    return int(fleet.ssh_command(machine, script).stdout.strip() or 0) / 1024


def load(url: str, body: dict, headers: dict, count: int, concurrency: int) -> tuple[list[float], float, int]:
    """`count` POSTs with `concurrency` in flight: each latency (ms) of the answered ones, the wall
    time (s) and how many failed (an error status or a dropped connection)."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    with httpx.Client(timeout=60, trust_env=False, limits=limits, headers=headers) as client:

        def one(_: int) -> float | None:
            started = time.perf_counter()
            try:
                client.post(url, json=body).raise_for_status()
            except httpx.HTTPError:
                return None
            return (time.perf_counter() - started) * 1000

        for _ in range(min(10, count)):  # warm up: connections, LiteLLM's first-use lookups
            one(0)
        started = time.perf_counter()
        with ThreadPoolExecutor(concurrency) as pool:
            answers = list(pool.map(one, range(count)))
        latencies = [ms for ms in answers if ms is not None]
        return latencies, time.perf_counter() - started, len(answers) - len(latencies)


def targets(gateway: fleet.Machine, backend: fleet.Machine) -> dict:
    key = master_key(gateway)
    return {
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


def cell(target: tuple, requests: int, runs: int, concurrency: int) -> dict:
    """One latency cell: p50/p99/req/s/errors as median (min, max) of `runs`, the load before and
    after, and the first run's latencies (for the picture)."""
    url, body, headers = target
    p50s, p99s, rates, errors, samples = [], [], [], [], None
    before = load_average()
    for _ in range(runs):
        latencies, elapsed, failed = load(url, body, headers, requests, concurrency)
        samples = latencies if samples is None else samples
        p50s.append(percentile(latencies, 50) if latencies else float("nan"))
        p99s.append(percentile(latencies, 99) if latencies else float("nan"))
        rates.append(len(latencies) / elapsed)
        errors.append(failed)
    return {
        "p50_ms": summary(p50s),
        "p99_ms": summary(p99s),
        "rps": summary(rates),
        "errors": summary(errors),
        "requests_per_run": requests,
        "load": [before, load_average()],
        "samples_ms": [round(ms, 2) for ms in samples or []],
    }


def latency_cells(gateway: fleet.Machine, backend: fleet.Machine, requests: int, runs: int) -> dict:
    cells = {}
    for concurrency in (1, 16):
        for name, target in targets(gateway, backend).items():
            result = cells[f"{name}_c{concurrency}"] = cell(target, requests, runs, concurrency)
            log(
                f"{name} c={concurrency}: p50 {result['p50_ms']['median']:.1f} ms, "
                f"p99 {result['p99_ms']['median']:.1f} ms, {result['rps']['median']:.0f} req/s"
            )
    return cells


def serving_cell(
    gateway: fleet.Machine, backend: fleet.Machine, requests: int, runs: int, concurrency: int
) -> dict:
    """Through the gateway at `concurrency`, with its memory (RSS) after the load."""
    result = cell(targets(gateway, backend)["gateway"], requests, runs, concurrency)
    result["rss_mb"] = gateway_rss_mb(gateway)
    rps, p50, p99 = (result[k]["median"] for k in ("rps", "p50_ms", "p99_ms"))
    log(
        f"gateway c={concurrency}: {rps:.0f} req/s, p50 {p50:.1f} ms, p99 {p99:.1f} ms, "
        f"errors {result['errors']['max']:.0f}, RSS {result['rss_mb']:.0f} MB"
    )
    return result
