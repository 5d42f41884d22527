"""The validation's check of the front door (the `loadbalancers` group's HAProxy) with the key.

Each gateway's own checks pass on a split fleet (each with its own key): the front door does
not. HAProxy balances `leastconn`, which takes turns among equally idle servers, so a row of
sequential requests reaches every gateway that is UP: 3 per gateway of the fleet are sent, and
one 401 means a gateway behind the front door does not hold the fleet's key (`fail`). A front
door that answers nothing else (a 503 while HAProxy's health checks have not yet seen the
restarted gateways UP) is waited for up to `wait_s`; still not answering is `degraded`: that is
the load balancer's state, not the gateway's.
"""

from __future__ import annotations

import time

import httpx

from hxgw.validation_report import DEGRADED, FAIL, PASS, CheckResult, shorten

CHECK = "front-door"
PER_GATEWAY = 3


def check_front_door(
    url: str, key: str, gateways: int, wait_s: float = 30.0, transport: httpx.BaseTransport | None = None
) -> CheckResult:
    """GET /v1/models through the front door `url` with the fleet's key, PER_GATEWAY times per gateway."""
    wanted = PER_GATEWAY * max(gateways, 1)
    headers = {"Authorization": f"Bearer {key}"}
    served = refused = 0
    last = ""
    started = time.perf_counter()
    deadline = time.monotonic() + wait_s
    options = {"headers": headers, "timeout": 10, "trust_env": False, "transport": transport}
    with httpx.Client(base_url=url, **options) as client:
        while served + refused < wanted:
            try:
                status = client.get("/v1/models").status_code
            except httpx.HTTPError as error:
                status, last = None, type(error).__name__
            if status == 200:
                served += 1
            elif status == 401:
                refused += 1
            else:
                last = f"HTTP {status}" if status else last
                if time.monotonic() > deadline:
                    break
                time.sleep(0.5)
    latency = round((time.perf_counter() - started) * 1000, 1)
    asked = served + refused
    if refused:
        detail = (
            f"{refused} of {asked} requests through the front door {url} got 401 with the fleet's master "
            "key: a gateway behind it holds another key (deploy every gateway: one key for the fleet)"
        )
        return CheckResult(None, CHECK, FAIL, latency, shorten(detail), 401)
    if asked < wanted:
        detail = (
            f"the front door {url} served {served} of {wanted} requests; the others got {last}: "
            "check the load balancer (hx-lb-ctl state hx_gateways)"
        )
        return CheckResult(None, CHECK, DEGRADED, latency, shorten(detail))
    detail = f"{served} of {wanted} requests through the front door {url} served with the fleet's key"
    return CheckResult(None, CHECK, PASS, latency, detail, 200)
