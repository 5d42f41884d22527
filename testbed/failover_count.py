"""`python -m testbed.failover_count [SECONDS [CLIENTS]]`: how many requests reach a failing backend before
the fleet stops sending to it (README "Failover").

Needs a running fleet with hx-lb in front of deployed gateways (`up --gateways 3 --lb [--cache]`,
then a deploy with one master key). CLIENTS (default 4) `openai` clients send `hx-chat` through hx-lb; after
8 s (every worker has used llm-02) llm-02 answers 500 to every request (its `/_fault` knob) and
its counts are zeroed; SECONDS later (default 20, under the 30 s cooldown) it prints how many
chats reached llm-02 and how the clients fared, then puts llm-02 back.
"""

from __future__ import annotations

import sys
import threading
import time

import openai
from openai import OpenAI

from testbed import fleet


def backend(method: str, path: str, body: dict | None = None) -> dict:
    return fleet.backend_admin("llm-02", method, path, body)


def master_key() -> str:
    gateway = fleet.find(fleet.gateway_name(0))
    env = fleet.ssh_command(gateway, "cat /opt/HX-Infrastructure-/api-gateway/config/api-gateway/gateway.env")
    return env.stdout.strip().split("=", 1)[1]


def main(window: float, clients: int = 4) -> None:
    url = f"http://{fleet.find('hx-lb').address}:4000/v1"
    client = OpenAI(base_url=url, api_key=master_key(), max_retries=0, timeout=60)
    stop, results = threading.Event(), []
    prompt = [{"role": "user", "content": "Return exactly the text: HX-OK"}]

    def loop() -> None:
        while not stop.is_set():
            started = time.monotonic()
            try:
                answer = client.chat.completions.create(model="hx-chat", messages=prompt, temperature=0)
                results.append((answer.choices[0].message.content == "HX-OK", time.monotonic() - started))
            except openai.APIError:
                results.append((False, time.monotonic() - started))

    threads = [threading.Thread(target=loop) for _ in range(clients)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(8)
        backend("POST", "/_fault", {"error_rate": 1.0})
        backend("DELETE", "/_stats")
        first = len(results)
        time.sleep(window)
        reached = backend("GET", "/_stats").get("paths", {}).get("/api/chat", 0)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        backend("POST", "/_fault", {"reset": True})
    during = results[first:]
    print(
        f"{len(during)} requests through hx-lb in {window:.0f} s, {sum(not ok for ok, _ in during)} failed, "
        f"worst {max(t for _, t in during):.2f} s; {reached} reached the failing llm-02"
    )


if __name__ == "__main__":
    main(float(sys.argv[1]) if len(sys.argv) > 1 else 20, int(sys.argv[2]) if len(sys.argv) > 2 else 4)
