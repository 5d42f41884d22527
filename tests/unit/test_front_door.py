"""The validation's front-door check (hxgw/validation_front_door.py) against a stand-in load
balancer that takes turns among its gateways, as HAProxy's leastconn does for sequential requests."""

from __future__ import annotations

import itertools

import httpx

from hxgw.validation_front_door import check_front_door

FLEET_KEY = "sk-fleet-key-0123456789abcdefghijkl"


def balancer(keys: list[str], busy_first: int = 0) -> httpx.MockTransport:
    """Each request goes to the next gateway; a gateway answers 200 to its own key, else 401.
    The first `busy_first` requests get 503 (HAProxy before its health checks saw a gateway UP)."""
    turn, count = itertools.cycle(keys), itertools.count()

    def handle(request: httpx.Request) -> httpx.Response:
        if next(count) < busy_first:
            return httpx.Response(503, text="no server is available")
        held = next(turn)
        ok = request.headers.get("authorization") == f"Bearer {held}"
        return httpx.Response(200 if ok else 401, json={"data": []} if ok else {"error": {}})

    return httpx.MockTransport(handle)


def test_one_key_behind_the_front_door_passes():
    result = check_front_door("http://lb:4000", FLEET_KEY, 3, transport=balancer([FLEET_KEY] * 3))
    assert (result.check, result.status) == ("front-door", "pass")
    assert (
        result.detail == "9 of 9 requests through the front door http://lb:4000 served with the fleet's key"
    )


def test_a_split_fleet_fails_naming_the_share_refused():
    keys = [FLEET_KEY, "sk-other-1", "sk-other-2"]
    result = check_front_door("http://lb:4000", FLEET_KEY, 3, transport=balancer(keys))
    assert result.status == "fail"
    assert result.detail.startswith("6 of 9 requests through the front door http://lb:4000 got 401")
    assert FLEET_KEY not in result.detail


def test_a_front_door_that_is_busy_at_first_is_waited_for():
    transport = balancer([FLEET_KEY] * 2, busy_first=3)
    result = check_front_door("http://lb:4000", FLEET_KEY, 2, wait_s=30, transport=transport)
    assert result.status == "pass"


def test_a_front_door_that_never_serves_is_degraded_not_failed():
    transport = balancer([FLEET_KEY], busy_first=10**6)
    result = check_front_door("http://lb:4000", FLEET_KEY, 1, wait_s=0, transport=transport)
    assert result.status == "degraded"
    assert "the front door http://lb:4000 served 0 of 3 requests; the others got HTTP 503" in result.detail
