"""`make bench ONLY=clients` (bench/run.py --only clients): what a client key costs against the
master key, through one gateway at concurrency 1 and 16 (req/s and p50, median of --runs runs).

The client's key goes through everything a client's does: hx_auth.py's hash lookup, LiteLLM's
`UserAPIKeyAuth` with the model allow-list checked, the post-custom-auth expiry check and the
rate limiter (its rpm and max_parallel set far above the load, so it counts and never refuses).
Writes bench/results-clients.json and bench/results-clients.md; the fleet is its own
(HX_TESTBED_NET, default 9) and is taken down at the end unless --keep-fleet.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from bench.load import CHAT_MODEL, cell, targets
from bench.pyinfra_runs import load_average, log, pyinfra, settle
from hxops import client_keys
from testbed import fleet

REPO = Path(__file__).resolve().parent.parent
CLIENT = {"name": "bench", "models": [CHAT_MODEL], "rpm": 1_000_000, "max_parallel": 1000}


def group_data(folder: Path) -> str:
    base = REPO / "group_data" / "all.py"
    (folder / "all.py").write_text(
        "import importlib.util\n"
        f"_spec = importlib.util.spec_from_file_location('_base', {str(base)!r})\n"
        "_base = importlib.util.module_from_spec(_spec)\n"
        "_spec.loader.exec_module(_base)\n"
        f"clients = [{CLIENT!r}]\n"
    )
    return str(folder)


def run(requests: int, runs: int, keep_fleet: bool) -> dict:
    # The bench's client key lives with the bench, not in the operator's store.
    os.environ["HX_CLIENT_KEYS_DIR"] = tempfile.mkdtemp(prefix="hx-bench-keys-")
    key = client_keys.ensure_key(CLIENT["name"])
    folder = Path(tempfile.mkdtemp(prefix="hx-bench-gd-"))
    fleet.up(gateways=1, log=log)
    try:
        gateway = next(m for m in fleet.load_machines() if m.role == "gateway")
        backend = next(m for m in fleet.load_machines() if m.role == "backend" and m.name == "llm-01")
        pyinfra("clients: deploy one gateway with a client", "--group-data", group_data(folder))
        settle()
        url, body, master_headers = targets(gateway, backend)["gateway"]
        rows = {}
        for concurrency in (1, 16):
            for label, headers in (
                ("master key", master_headers),
                ("client key", {"Authorization": f"Bearer {key}"}),
            ):
                result = rows[f"{label} c={concurrency}"] = cell(
                    (url, body, headers), requests, runs, concurrency
                )
                result.pop("samples_ms")
                rps, p50 = result["rps"]["median"], result["p50_ms"]["median"]
                log(f"{label} c={concurrency}: {rps:.0f} req/s, p50 {p50:.1f} ms")
    finally:
        if not keep_fleet:
            fleet.down(log=log)
    return {"runs": runs, "requests_per_run": requests, "load_after": load_average(), "rows": rows}


def markdown(results: dict) -> list[str]:
    lines = [
        f"# Client key vs master key (one gateway, {results['runs']} runs "
        f"of {results['requests_per_run']} chats)",
        "",
        "| key | concurrency | req/s median (min-max) | p50 ms median (min-max) | errors (max) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, row in results["rows"].items():
        label, concurrency = name.split(" c=")
        rps, p50 = row["rps"], row["p50_ms"]
        lines.append(
            f"| {label} | {concurrency} | {rps['median']:.1f} ({rps['min']:.1f}-{rps['max']:.1f}) "
            f"| {p50['median']:.1f} ({p50['min']:.1f}-{p50['max']:.1f}) | {row['errors']['max']:.0f} |"
        )
    return lines


def main(requests: int, runs: int, keep_fleet: bool) -> int:
    results = run(requests, runs, keep_fleet)
    (REPO / "bench" / "results-clients.json").write_text(json.dumps(results, indent=2) + "\n")
    text = "\n".join(markdown(results)) + "\n"
    (REPO / "bench" / "results-clients.md").write_text(text)
    print(text)
    return 0
