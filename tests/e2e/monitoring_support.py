"""The monitored fleet's helpers: Prometheus's API on hx-mon, the pager's notifications, a
gateway's /metrics with the scrape token (tests/e2e/monitoring_long.py)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path

import httpx

from testbed import fleet, monitoring

PROMETHEUS_PORT = 9090
REPO = Path(__file__).resolve().parents[2]


def prometheus(path: str, **params) -> dict:
    url = f"http://{fleet.find(monitoring.MONITOR[0]).address}:{PROMETHEUS_PORT}{path}"
    answer = httpx.get(url, params=params, timeout=10, trust_env=False)
    answer.raise_for_status()
    return answer.json()["data"]


def targets() -> list[dict]:
    return [
        {
            "job": t["labels"]["job"],
            "host": t["labels"]["host"],
            "health": t["health"],
            "error": t["lastError"],
        }
        for t in prometheus("/api/v1/targets")["activeTargets"]
    ]


def firing() -> list[dict]:
    """The alerts Prometheus has firing (pending ones are not), as their label sets."""
    return [a["labels"] for a in prometheus("/api/v1/alerts")["alerts"] if a["state"] == "firing"]


def query(expr: str) -> list[dict]:
    return prometheus("/api/v1/query", query=expr)["result"]


def named(alerts: list[dict], alertname: str, **labels) -> list[dict]:
    return [
        a for a in alerts if a["alertname"] == alertname and all(a.get(k) == v for k, v in labels.items())
    ]


def wait_until(what: str, check, timeout: float) -> float:
    """Poll `check()` until it is true; the seconds it took (a bound on a hang, not a claim)."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < timeout, f"{what}: not within {timeout:.0f} s; firing: {firing()}"
        time.sleep(0.25)
    return time.monotonic() - started


def notifications(status: str, alertname: str, since: int = 0, **labels) -> list[dict]:
    """The alerts with this status, name and labels in the pager's notifications from the
    `since`-th on (0: all)."""
    return [
        alert
        for note in monitoring.received()[since:]
        for alert in note["body"]["alerts"]
        if alert["status"] == status
        and alert["labels"]["alertname"] == alertname
        and all(alert["labels"].get(k) == v for k, v in labels.items())
    ]


def scrape(gateway: str, token: str) -> httpx.Response:
    address = fleet.find(gateway).address
    return httpx.get(
        f"http://{address}:4000/metrics/",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
        trust_env=False,
    )


def counter_total(text: str, name: str, **labels) -> float:
    """The sum of every sample of `name` whose labels include `labels`, in an exposition text."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


SCREENSHOTS = REPO / "reports" / "screenshots"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def chromium(tmp_path, url: str, *args: str) -> str:
    """Headless Chromium (Debian's, `make deps`) with a fresh profile: what it prints."""
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    result = subprocess.run(
        ["chromium", *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--window-size=1280,900", *args, url],
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert result.returncode == 0, f"chromium failed ({result.returncode}):\n{result.stderr[-2000:]}"
    return result.stdout


def table(dom: str, table_id: str) -> list[list[str]]:
    """The data rows of the table with this id, as lists of cell texts (headers left out)."""

    class Rows(HTMLParser):
        def __init__(self):
            super().__init__()
            self.inside, self.rows, self.cell = False, [], None

        def handle_starttag(self, tag, attrs):
            if tag == "table":
                self.inside = dict(attrs).get("id") == table_id
            elif self.inside and tag == "tr":
                self.rows.append([])
            elif self.inside and tag == "td":
                self.cell = ""

        def handle_endtag(self, tag):
            if self.inside and tag == "td":
                self.rows[-1].append(self.cell.strip())
                self.cell = None
            elif tag == "table":
                self.inside = False

        def handle_data(self, data):
            if self.cell is not None:
                self.cell += data

    parser = Rows()
    parser.feed(dom)
    return [row for row in parser.rows if row]


def curl_code(url: str) -> str:
    result = subprocess.run(
        ["curl", "-s", "-m", "3", "-o", "/dev/null", "-w", "%{http_code}", url],
        capture_output=True,
        text=True,
    )
    return result.stdout


def status(*args: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-m", "hxops.status", "testbed/inventory.py", "--json", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout)
