#!/usr/bin/python3
"""The backends' health as this gateway sees it, for Prometheus (node exporter's textfile collector).
Managed by the HX gateway deploy (templates/hx-backend-probe.py; tasks/monitoring_agent.py).

Every INTERVAL seconds: GET each backend's /api/tags (what Ollama serves) from this host, then write
  hx_backend_up{backend, api_base}                   1 answered, 0 not
  hx_backend_probe_seconds{backend, api_base}        how long the answer took
  hx_model_member_up{model_group, backend, model}    1 when its backend answered and lists the model
  hx_gateway_release_info{release, litellm_version}  1: the release the gateway's venv link names
atomically into TEXTFILE_DIR/hx_backends.prom. Usage: hx-backend-probe.py CONFIG.json TEXTFILE_DIR
"""

import glob
import json
import os
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor


def label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def probe(url: str, timeout: float) -> tuple[set | None, float]:
    started = time.monotonic()
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/api/tags", timeout=timeout) as response:
            names = {m.get("name") for m in json.loads(response.read()).get("models", [])}
            names |= {n.split(":")[0] for n in names if n and n.endswith(":latest")}
            return names, time.monotonic() - started
    except (OSError, ValueError, AttributeError):
        return None, time.monotonic() - started


def release_info(venv_link: str) -> str:
    try:
        release = os.readlink(venv_link)
    except OSError:
        return ""
    found = glob.glob(os.path.join(release, "lib", "python3*", "site-packages", "litellm-*.dist-info"))
    version = os.path.basename(found[0])[len("litellm-") : -len(".dist-info")] if found else ""
    where = f'release="{label(os.path.basename(release))}",litellm_version="{label(version)}"'
    return (
        "# HELP hx_gateway_release_info The release (venv) the gateway serves and its LiteLLM version.\n"
        f"# TYPE hx_gateway_release_info gauge\nhx_gateway_release_info{{{where}}} 1\n"
    )


def render(config: dict, answers: dict) -> str:
    lines = [
        "# HELP hx_backend_up Whether the backend answered GET /api/tags from this gateway.",
        "# TYPE hx_backend_up gauge",
    ]
    for backend in config["backends"]:
        served, _ = answers[backend["name"]]
        where = f'backend="{label(backend["name"])}",api_base="{label(backend["url"])}"'
        lines.append(f"hx_backend_up{{{where}}} {0 if served is None else 1}")
    lines += [
        "# HELP hx_backend_probe_seconds The probe's duration.",
        "# TYPE hx_backend_probe_seconds gauge",
    ]
    for backend in config["backends"]:
        where = f'backend="{label(backend["name"])}",api_base="{label(backend["url"])}"'
        lines.append(f"hx_backend_probe_seconds{{{where}}} {answers[backend['name']][1]:.3f}")
    lines += [
        "# HELP hx_model_member_up Whether a model group's member can serve (its backend lists it).",
        "# TYPE hx_model_member_up gauge",
    ]
    for member in config["members"]:
        served, _ = answers[member["backend"]]
        up = served is not None and member["model"] in served
        where = (
            f'model_group="{label(member["model_group"])}",backend="{label(member["backend"])}",'
            f'model="{label(member["model"])}"'
        )
        lines.append(f"hx_model_member_up{{{where}}} {int(up)}")
    return "\n".join(lines) + "\n" + release_info(config["venv_link"])


def main() -> None:
    config = json.load(open(sys.argv[1]))
    target = os.path.join(sys.argv[2], "hx_backends.prom")
    interval, timeout = config["interval_s"], min(config["interval_s"], 5)
    with ThreadPoolExecutor(max_workers=max(1, len(config["backends"]))) as pool:
        while True:
            started = time.monotonic()
            results = pool.map(lambda b: probe(b["url"], timeout), config["backends"])
            answers = dict(zip([b["name"] for b in config["backends"]], results, strict=True))
            staged = target + ".new"  # not *.prom: the collector never reads a half-written file
            with open(staged, "w") as out:
                out.write(render(config, answers))
            os.replace(staged, target)
            time.sleep(max(0.0, interval - (time.monotonic() - started)))


if __name__ == "__main__":
    main()
