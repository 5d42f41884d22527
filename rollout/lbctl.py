#!/usr/bin/python3
"""hx-lb-ctl: drain and restore gateways on the HAProxy load balancer (runs ON the LB host).

Installed by tasks/loadbalancer.py as /usr/local/sbin/hx-lb-ctl (root only); the rollout calls it
over SSH. Python 3 standard library only: the LB host has no socat.

    hx-lb-ctl state BACKEND                       the servers as JSON: status, sessions, weight,
                                                  and whether drained or in maintenance
    hx-lb-ctl drain BACKEND SERVER... [--timeout S]
        no new requests to SERVER (state drain), then wait until its current sessions are 0
    hx-lb-ctl ready BACKEND SERVER... [--timeout S]
        back in rotation (state ready), then wait until HAProxy's health check has it UP

Exit status 0 when every server got there in time, 1 otherwise (the JSON says which), 2 on usage
or socket errors.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import time

# The load balancer's names and paths, defined here once: tasks/loadbalancer.py installs this file
# and renders HAProxy's config with them, the rollout (rollout/runner.py) calls it by them.
SOCKET = "/run/haproxy/admin.sock"  # HAProxy's runtime API (the `stats socket` line)
BACKEND = "hx_gateways"  # the HAProxy backend that lists the gateways
CONTROL = "/usr/local/sbin/hx-lb-ctl"  # where this script is installed on the LB host
CONFIG = "/etc/haproxy/haproxy.cfg"
CANDIDATE = "/etc/haproxy/haproxy.cfg.hx-next"  # a new config, checked with `haproxy -c` first
POLL_SECONDS = 0.2


def command(text: str, path: str = SOCKET) -> str:
    """One runtime API command over the admin socket; HAProxy closes the socket after answering."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(path)
        sock.sendall(text.encode() + b"\n")
        chunks = []
        while True:
            data = sock.recv(65536)
            if not data:
                break
            chunks.append(data)
    return b"".join(chunks).decode("utf-8", "replace")


def parse_stat(text: str, backend: str) -> dict[str, dict]:
    """`show stat` CSV -> {server: {"status", "scur", "weight"}} for one backend's servers."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines or not lines[0].startswith("# "):
        raise ValueError(f"unexpected `show stat` answer: {text[:200]!r}")
    header = lines[0][2:].split(",")
    servers = {}
    for line in lines[1:]:
        row = dict(zip(header, line.split(","), strict=False))
        if row.get("pxname") != backend or row.get("svname") in ("FRONTEND", "BACKEND"):
            continue
        servers[row["svname"]] = {
            "status": row.get("status", ""),
            "scur": int(row.get("scur") or 0),
            "weight": int(row.get("weight") or 0),
        }
    return servers


# srv_admin_state bits (HAProxy's include/haproxy/server-t.h, enum srv_admin): any drain flag
# (forced 0x08, inherited 0x10), any maintenance flag (forced 0x01, inherited 0x02, DNS 0x20).
ADMIN_DRAIN, ADMIN_MAINT = 0x18, 0x23


def parse_servers_state(text: str, backend: str) -> dict[str, int]:
    """`show servers state BACKEND` -> {server: srv_admin_state}. `show stat` cannot tell it: a
    drained server whose health check fails (a gateway restarting) shows "DOWN" there, not
    "DRAIN", and so looked like one nobody had taken out of rotation (seen on the testbed)."""
    lines = [line for line in text.splitlines() if line.strip()]
    header = next((line[2:].split() for line in lines if line.startswith("# ")), None)
    if header is None or "srv_admin_state" not in header:
        raise ValueError(f"unexpected `show servers state` answer: {text[:200]!r}")
    admin = {}
    for line in lines:
        row = dict(zip(header, line.split(), strict=False))
        if line.startswith("#") or len(row) < len(header) or row["be_name"] != backend:
            continue  # the header, the format version line, another backend
        admin[row["srv_name"]] = int(row["srv_admin_state"])
    return admin


def state(backend: str) -> dict[str, dict]:
    servers = parse_stat(command("show stat"), backend)
    admin = parse_servers_state(command(f"show servers state {backend}"), backend)
    for name, server in servers.items():
        server["drained"] = bool(admin.get(name, 0) & ADMIN_DRAIN)
        server["maint"] = bool(admin.get(name, 0) & ADMIN_MAINT)
    return servers


def set_state(backend: str, servers: list[str], admin_state: str) -> list[str]:
    """`set server B/S state X` for each server; returns HAProxy's complaints (empty when fine)."""
    problems = []
    for server in servers:
        answer = command(f"set server {backend}/{server} state {admin_state}").strip()
        if answer:  # HAProxy answers nothing on success
            problems.append(f"{server}: {answer}")
    return problems


def wait_for(backend: str, servers: list[str], done, timeout: float) -> tuple[bool, dict, float]:
    started = time.monotonic()
    while True:
        current = state(backend)
        missing = [s for s in servers if s not in current]
        if missing:
            return False, current, time.monotonic() - started
        if all(done(current[s]) for s in servers):
            return True, current, time.monotonic() - started
        if time.monotonic() - started >= timeout:
            return False, current, time.monotonic() - started
        time.sleep(POLL_SECONDS)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hx-lb-ctl", description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("state", "drain", "ready"))
    parser.add_argument("backend")
    parser.add_argument("servers", nargs="*")
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args(argv)
    try:
        if args.action == "state":
            print(json.dumps(state(args.backend), sort_keys=True))
            return 0
        if not args.servers:
            parser.error(f"{args.action} needs at least one server name")
        known = state(args.backend)
        unknown = [s for s in args.servers if s not in known]
        if unknown:
            print(json.dumps({"ok": False, "error": f"not in backend {args.backend}: {', '.join(unknown)}"}))
            return 1
        if args.action == "drain":
            problems = set_state(args.backend, args.servers, "drain")
            ok, current, waited = wait_for(args.backend, args.servers, lambda s: s["scur"] == 0, args.timeout)
        else:
            problems = set_state(args.backend, args.servers, "ready")
            ok, current, waited = wait_for(
                args.backend, args.servers, lambda s: s["status"] == "UP", args.timeout
            )
    except (OSError, ValueError) as error:
        print(json.dumps({"ok": False, "error": f"HAProxy runtime API at {SOCKET}: {error}"}))
        return 2
    result = {
        "ok": ok and not problems,
        "action": args.action,
        "waited_s": round(waited, 2),
        "servers": {s: current.get(s) for s in args.servers},
        "problems": problems,
    }
    print(json.dumps(result, sort_keys=True))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
