"""More of the rollout's failure paths (rollout/runner.py), driven through `python -m rollout` on
the session's rollout fleet (three gateways behind hx-lb), each asserting the exit status and the
report: a --dry run with an unreachable host, a drain that times out with sessions still open,
and a restart with no other gateway UP on the load balancer. (Argument errors and a --limit that
matches nothing are refused before anything connects: tests/unit/test_rollout_cli.py.)

A restart is made the cheap way: the gateway's config.yaml touched, so its service is older than
its files and the deploy restarts it (hxops.release.stale_reason), with nothing to put back.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import time

from testbed import fleet
from tests.e2e import helpers
from tests.e2e.rollout_support import LB, config_sha, lb_servers, rollout


def unchanged_everywhere(gateways: list[str]) -> dict:
    return {n: (config_sha(n), helpers.main_pid(n)) for n in gateways}


def test_dry_with_an_unreachable_host_reports_it_and_changes_nothing(healthy, tmp_path):
    change = helpers.with_extra_model(tmp_path / "group_data")
    canary = healthy.gateways[0]
    before = unchanged_everywhere(healthy.gateways)
    fleet.power_off(LB)  # the fixture powers it on again
    result = rollout(healthy, "--dry", "--group-data", change)
    assert result.returncode == 1, result.output[-4000:]
    assert f"=== {LB}: UNREACHABLE, it would be skipped and reported as failed" in result.output
    assert f"=== {canary} (canary): " in result.output
    assert "restarts the gateway (drained from the load balancer first)" in result.output
    assert result.output.rstrip().endswith("(--dry: nothing was changed)")
    assert unchanged_everywhere(healthy.gateways) == before


@contextlib.contextmanager
def open_sessions(count: int, key: str):
    """`count` requests through hx-lb that stay open: each sends its headers and part of a large
    body, so HAProxy has connected it to a gateway (http-buffer-request forwards a full buffer)
    while the gateway waits for the rest. leastconn spreads them over every gateway. Reset on
    leaving (SO_LINGER 0), as a client that gives up."""
    address = fleet.find(LB).address
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: {address}:4000\r\nAuthorization: Bearer {key}\r\n"
        "Content-Type: application/json\r\nContent-Length: 1000000\r\n\r\n"
    ).encode()
    socks = []
    try:
        for _ in range(count):
            s = socket.create_connection((address, 4000), timeout=10)
            s.sendall(head + b'{"model": "hx-chat", "messages": [' + b" " * 40000)
            socks.append(s)
        yield
    finally:
        for s in socks:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()


def test_a_drain_that_times_out_with_sessions_open_deploys_nothing(healthy):
    canary = healthy.gateways[0]
    helpers.ssh(canary, f"touch {helpers.CONFIG}")  # a restart is planned: the canary is drained
    pid = helpers.main_pid(canary)
    with open_sessions(2 * len(healthy.gateways), healthy.key):
        deadline = time.monotonic() + 30
        while lb_servers()[canary]["scur"] == 0:
            assert time.monotonic() < deadline, lb_servers()
            time.sleep(0.2)
        result = rollout(healthy, "--drain-timeout", "3")
    assert result.returncode == 1, result.output[-4000:]
    assert result.status(canary) == "failed"
    assert f"not drained from {LB}: sessions still open after 3 s; nothing deployed" in result.row(canary)
    for name in healthy.gateways[1:]:
        assert result.status(name) == "skipped"
        assert f"the rollout stopped at {canary}" in result.row(name)
    assert helpers.main_pid(canary) == pid  # not restarted
    assert lb_servers()[canary]["status"] == "UP"  # and put back in rotation at once
