"""The fake queues as Ollama v0.12.10 does (testbed/ollama_load.py cites the lines): a loaded
model's requests wait on its slots without limit, and 503 "server busy" comes only from the
scheduler's pending queue, which fills while a model loads (ollama/ollama#7758)."""

from __future__ import annotations

import httpx

from tests.unit import fake_ollama_helpers as fo
from tests.unit.fake_ollama_helpers import chat, in_background, stats, wait_until

server, http, client = fo.server, fo.http, fo.client  # the fixtures, by name
BUSY = {"error": "server busy, please try again.  maximum pending requests exceeded"}


def unload(client, model: str) -> None:
    """routes.go ChatHandler: no messages and keep_alive 0 expires the runner."""
    r = client.post("/api/chat", json={"model": model, "messages": [], "keep_alive": 0})
    assert r.json()["done_reason"] == "unload"


def concurrently(url: str, n: int, **kw) -> list:
    """n chats at once, each on its own connection (as n clients would)."""

    def one():
        with httpx.Client(base_url=url, timeout=60, trust_env=False) as c:
            return chat(c, **kw)

    return [in_background(one) for _ in range(n)]


def test_a_loaded_model_queues_without_limit_even_with_max_queue_0(client, server):
    # sched.go GetRunner: a loaded runner is used at once; llm/server.go s.sem.Acquire waits.
    assert chat(client).status_code == 200  # llama3.2:3b is loaded now
    client.post("/_fault", json={"latency_ms": 400, "num_parallel": 1, "max_queue": 0})
    jobs = concurrently(server[0], 6)
    wait_until(client, lambda s: s["running"] == {"llama3.2:3b": 1} and s["waiting"] == 5, "5 waiting")
    for thread, _ in jobs:
        thread.join(timeout=60)
    assert [out[0].status_code for _, out in jobs] == [200] * 6


def test_num_parallel_runs_that_many_at_once(client, server):
    assert chat(client, model="phi3").status_code == 200
    client.post("/_fault", json={"latency_ms": 400, "num_parallel": 2})
    jobs = concurrently(server[0], 5, model="phi3")
    seen = wait_until(client, lambda s: s["waiting"] == 3, "3 waiting behind 2 running")
    assert seen["running"] == {"phi3:latest": 2}
    for thread, _ in jobs:
        thread.join(timeout=60)
    assert [out[0].status_code for _, out in jobs] == [200] * 5


def test_server_busy_only_while_a_model_loads_and_the_pending_queue_is_full(client, server):
    # sched.go: pendingReqCh holds max_queue requests for models not loaded; one is loading.
    assert chat(client).status_code == 200  # llama3.2:3b stays loaded
    unload(client, "phi3")
    unload(client, "mistral-small3.2")
    client.post("/_fault", json={"load_ms": 1500, "max_queue": 1})
    (loader,) = concurrently(server[0], 1, model="phi3")
    wait_until(client, lambda s: s["loading"], "phi3 loading")
    (pending,) = concurrently(server[0], 1, model="mistral-small3.2")
    wait_until(client, lambda s: s["pending"] == 1, "one request pending")
    busy = chat(client, model="mistral-small3.2")
    warm = chat(client)  # a loaded model is not behind the scheduler's queue
    loader[0].join(timeout=60)
    pending[0].join(timeout=60)
    assert (busy.status_code, busy.json()) == (503, BUSY)
    assert warm.status_code == 200
    assert [loader[1][0].status_code, pending[1][0].status_code] == [200, 200]
    assert stats(client)["pending"] == 0 and stats(client)["loading"] is False


def test_the_same_cold_model_is_loaded_once(client, server):
    unload(client, "phi3")
    client.post("/_fault", json={"load_ms": 300})
    jobs = concurrently(server[0], 3, model="phi3")
    for thread, _ in jobs:
        thread.join(timeout=60)
    loads = sorted(out[0].json()["load_duration"] for _, out in jobs)
    assert loads == [1_000_000, 1_000_000, 301_000_000]


def test_a_client_that_gives_up_frees_its_slot_and_its_place_in_the_queue(client, server):
    # Ollama's waits and generations end with the request's context (sem.Acquire(ctx)).
    assert chat(client).status_code == 200
    client.post("/_fault", json={"latency_ms": 20000, "num_parallel": 1})
    with httpx.Client(base_url=server[0], timeout=0.5, trust_env=False) as impatient:
        for _ in range(2):  # one running, then one waiting behind it
            try:
                chat(impatient)
            except httpx.ReadTimeout:
                pass
            else:
                raise AssertionError("a 20 s generation answered within 0.5 s")
    idle = wait_until(client, lambda s: not s["running"] and not s["waiting"], "both given up", timeout=5)
    assert idle["statuses"].get("499") == 2
