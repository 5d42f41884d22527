"""Serving defaults (hxgw.serving): workers from the host's CPUs and memory, recycling only where
it recycles, the access line only when asked, and what the unit and uvicorn are given."""

from __future__ import annotations

import dataclasses
import json

import pytest

from hxgw.catalogue import ConfigError
from hxgw.serving import WORKER_MB, auto_workers, serving_for, serving_problem, uvicorn_log_config
from hxgw.settings import parse_settings
from tests.unit.helpers import render

BASELINE = {"base_dir": "/opt/hx", "gateway_ip": "192.168.10.39", "litellm_version": "1.74.9"}


def settings(**changes):
    return parse_settings({**BASELINE, **changes})


@pytest.mark.parametrize(
    ("cpus", "memory_mb", "workers"),
    [
        (2, 24000, 2),  # the testbed gateway
        (16, 64000, 16),  # one per CPU
        (16, 4 * WORKER_MB, 4),  # as many as the memory holds
        (1, 8000, 2),  # not one while two fit: a crash would leave nothing serving
        (4, WORKER_MB + 100, 1),  # but one when the memory holds only one
        (1, 0, 2),  # memory unknown: the CPUs decide, at least 2
        (8, 0, 8),
    ],
)
def test_workers_follow_the_hosts_cpus_and_memory(cpus, memory_mb, workers):
    assert auto_workers(cpus, memory_mb) == workers
    assert serving_for(settings(), cpus, memory_mb).workers == workers


def test_an_explicit_worker_count_wins_over_the_host():
    assert serving_for(settings(num_workers=3), 16, 64000).workers == 3
    assert serving_problem(settings(num_workers=3), 16, 64000) is None


@pytest.mark.parametrize(
    ("workers", "cpus", "memory_mb", "expected"),
    [
        (9, 2, 64000, ["num_workers 9 is more than 4 per CPU", "at most 8", "leave it unset"]),
        (6, 8, 2000, ["num_workers 6 needs about 2700 MB", "the host has 2000 MB", "at most 4"]),
    ],
)
def test_workers_the_host_cannot_carry_are_refused_naming_the_fix(workers, cpus, memory_mb, expected):
    problem = serving_problem(settings(num_workers=workers), cpus, memory_mb)
    assert problem is not None and all(part in problem for part in expected), problem


def test_the_automatic_count_is_never_refused():
    assert serving_problem(settings(), 1, 500) is None


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (
            {"num_workers": 1, "max_requests_before_restart": 5000},
            ["max_requests_before_restart 5000 with num_workers 1 stops the gateway", "num_workers to 2"],
        ),
        (
            {"max_requests_before_restart": 100000},
            ["max_requests_before_restart 100000", "a recycled worker is replaced only after", "leave it 0"],
        ),
        ({"max_requests_before_restart": 999}, ["recycles a worker too often", "1000 or more, or 0"]),
        ({"max_requests_before_restart": -1}, ["max_requests_before_restart -1 is out of range"]),
        ({"log_level": "warn"}, ["log_level 'warn'", "'WARNING'"]),
        ({"access_log": "yes"}, ["access_log must be True or False"]),
        ({"num_workers": "auto"}, ["num_workers must be an integer", "leave it unset"]),
    ],
)
def test_bad_serving_settings_are_refused(changes, expected):
    with pytest.raises(ConfigError) as error:
        settings(**changes)
    assert any(all(part in line for part in expected) for line in error.value.problems), error.value.problems


def test_the_unit_runs_the_workers_recycling_and_log_level_asked_for():
    # Recycling is refused as a setting for now (hxgw/serving.py RECYCLING_REFUSED_BECAUSE); the
    # unit still renders it for the day it is allowed again.
    chosen = settings(log_level="ERROR")
    serving = dataclasses.replace(serving_for(chosen, 4, 8000), max_requests=20000, jitter=2000)
    unit = render("hx-litellm-gateway.service.j2", settings=chosen, serving=serving)
    exec_start = next(line for line in unit.splitlines() if line.startswith("ExecStart="))
    assert exec_start.endswith(
        "--num_workers 4 --timeout_worker_healthcheck 120 --max_requests_before_restart 20000 --max_requests_before_restart_jitter 2000 "
        "--log_config /opt/hx/config/api-gateway/uvicorn-logging.json"
    )
    assert "Environment=LITELLM_LOG=ERROR\n" in unit


def test_no_recycling_flags_unless_asked():
    unit = render(
        "hx-litellm-gateway.service.j2", settings=settings(), serving=serving_for(settings(), 2, 8000)
    )
    assert "max_requests_before_restart" not in unit.split("ExecStart=", 1)[1].splitlines()[0]


@pytest.mark.parametrize("access_log", [False, True])
def test_uvicorn_logs_its_lifecycle_and_the_access_line_only_when_asked(access_log):
    config = uvicorn_log_config(serving_for(settings(access_log=access_log), 2, 8000))
    text = render("uvicorn-logging.json.j2", log_config=config)
    loaded = json.loads(text)
    assert loaded == config
    # Kept: LiteLLM's secret-redacting filters sit on loggers that exist before uvicorn configures.
    assert loaded["disable_existing_loggers"] is False
    assert loaded["loggers"]["uvicorn.error"]["level"] == "INFO"  # "Application startup complete"
    access = loaded["loggers"]["uvicorn.access"]
    assert (access["handlers"], access["level"]) == ((["access"], "INFO") if access_log else ([], "WARNING"))
