"""The deploy's structured outcome per host (hxops.outcome) and the start operation's reading of
the gateway's own error (hxops.start_op): what the rollout decides on instead of pyinfra's log."""

from __future__ import annotations

from types import SimpleNamespace

from hxops import outcome, start_op
from hxops.start_op import gateway_error


def test_an_outcome_is_merged_per_host_and_absent_without_outcome_dir(tmp_path):
    host = SimpleNamespace(name="gw", data={outcome.KEY: str(tmp_path / "o")})
    outcome.record(host, planned=True)
    outcome.record(host, restart=True)
    assert outcome.read(tmp_path / "o", "gw") == {"planned": True, "restart": True}
    assert outcome.read(tmp_path / "o", "never-planned") is None
    outcome.record(SimpleNamespace(name="gw", data={}), planned=True)  # no outcome_dir: nothing written
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["gw.json"]


def test_the_gateways_own_error_is_the_last_exception_in_the_journal_tail():
    lines = [
        "FAILED: hx-litellm-gateway.service is not ready (state active, restarts 1, 27s). Journal:",
        "LiteLLM: Proxy initialized",
        "Traceback (most recent call last):",
        "ValueError: Invalid routing_strategy: 'simple_shuffle'. Valid options: ['simple-shuffle']",
    ]
    assert gateway_error(lines) == (
        "ValueError: Invalid routing_strategy: 'simple_shuffle'. Valid options: ['simple-shuffle']"
    )
    assert gateway_error(["FAILED: not ready", "no exception here"]) is None


def test_rollback_verdict_is_rollback_sh_own_line():
    lines = ["--> Rolling back to the last known good release (venv r1); cause: x", "FAILED: ...",
             "ROLLBACK FAILED: the last known good release did not become ready either; cause: x"]  # fmt: skip
    assert start_op.rollback_verdict(lines) == lines[-1]
    nothing = ["NOT ROLLED BACK: there is no last known good release yet (first deploy); cause: x", ""]
    assert start_op.rollback_verdict(nothing) == nothing[0]
    assert start_op.rollback_verdict(["sh: 1: rollback.sh: not found"]) == "sh: 1: rollback.sh: not found"
    assert start_op.rollback_verdict([]) == "rollback.sh printed nothing"
