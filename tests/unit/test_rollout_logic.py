"""The rollout's pure parts: batches, reading pyinfra's results per host, the report; the LB
control script's parsing; the release state that decides stale restarts and snapshots; and the
rollout's templates (HAProxy config, rollback.sh)."""

from __future__ import annotations

import subprocess

import jinja2
import pytest

from hxgw.settings import parse_settings
from hxops import paths, release
from rollout import lbctl, logic

GW1, GW2, GW3 = "hx-api-gateway-server", "hx-api-gateway-02", "hx-api-gateway-03"
RESTART = "tasks/service.py | Restart the gateway and wait for readiness"
CONFIG = "tasks/config.py | Render config.yaml"
VALIDATE = "tasks/validate.py | Validate the gateway API at http://198.18.4.39:4000"
KEEP = "tasks/release.py | Keep this release as the last known good (the rollback target)"


def op(name, success=(), no_change=(), error=()):
    return {"name": name, "success": list(success), "no_change": list(no_change), "error": list(error)}


# --- batches ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hosts", "size", "expected"),
    [
        ([GW1, GW2, GW3], 1, [[GW1], [GW2], [GW3]]),
        ([GW1, GW2, GW3], 2, [[GW1], [GW2, GW3]]),
        ([GW1, GW2, GW3], 5, [[GW1], [GW2, GW3]]),
        ([GW1], 3, [[GW1]]),
        ([], 2, []),
        (["a", "b", "c", "d", "e", "f"], 2, [["a"], ["b", "c"], ["d", "e"], ["f"]]),
    ],
)
def test_the_canary_goes_alone_then_batches_of_n(hosts, size, expected):
    assert logic.plan_batches(hosts, size) == expected


def test_until_a_canary_passed_every_batch_is_a_single_host():
    assert logic.next_batch([GW2, GW3], canary_passed=False, batch_size=3) == [GW2]
    assert logic.next_batch([GW2, GW3], canary_passed=True, batch_size=3) == [GW2, GW3]
    with pytest.raises(ValueError):
        logic.next_batch([GW2], canary_passed=True, batch_size=0)


def test_roles():
    assert [logic.role_of(i) for i in range(3)] == ["canary", "batch 1", "batch 2"]


# --- structured results ----------------------------------------------------------------------

LOG = f"""--> Connecting to hosts...
    [{GW1}] Connected
--> Preparing operation files...
    {GW1}: identity confirmed, the host owns 198.18.4.39
    [{GW1}]     Will modify /opt/x/config.yaml
      @@ -50,4 +50,9 @@
      +   - model_name: "llm02-dolphin3"
    \n    [{GW2}]     Will modify /opt/x/config.yaml
      @@ -1 +1 @@
    [{GW2}]     \x1b[32mLiteLLM: Proxy initialized\x1b[0m
    {GW1}  llm02-phi3   chat   degraded
"""
PLANNED = {"planned": True}


def test_host_lines_keep_a_hosts_messages_and_continuations_only():
    """For the --dry preview only: what pyinfra's log says about one host."""
    lines = logic.host_lines(LOG, GW1)
    assert lines[0] == "Connected"
    assert "identity confirmed, the host owns 198.18.4.39" in lines
    assert "Will modify /opt/x/config.yaml" in lines
    assert '+   - model_name: "llm02-dolphin3"' in lines
    assert "@@ -1 +1 @@" not in lines  # GW2's diff
    assert "LiteLLM: Proxy initialized" in logic.host_lines(LOG, GW2)  # colours stripped


def test_a_rolled_back_host_names_the_cause_even_without_json():
    outcome = {
        **PLANNED,
        "restarted": True,
        "rolled_back": True,
        "cause": "ValueError: Invalid routing_strategy",
    }
    result = logic.classify(GW2, 1, None, outcome)
    assert result.status == logic.ROLLED_BACK
    assert (
        result.detail
        == "rolled back to the last known good release; cause: ValueError: Invalid routing_strategy"
    )
    assert result.restarted


def test_a_host_the_deploy_never_planned_is_unreachable():
    result = logic.classify(GW3, 1, None, None)
    assert result.status == logic.UNREACHABLE
    assert "could not connect" in result.detail


def test_a_failure_without_rollback_is_failed_with_its_cause():
    results = {"operations": [op(RESTART, error=[GW2])], "failed_hosts": [GW2]}
    outcome = {
        **PLANNED,
        "restarted": True,
        "rolled_back": False,
        "cause": "the gateway did not become ready",
    }
    result = logic.classify(GW2, 1, results, outcome)
    assert (result.status, result.detail, result.restarted) == (
        logic.FAILED,
        "the gateway did not become ready",
        True,
    )


def test_a_failure_the_deploy_did_not_explain_names_the_failed_operation():
    results = {"operations": [op(CONFIG, error=[GW2])], "failed_hosts": [GW2]}
    result = logic.classify(GW2, 1, results, PLANNED)
    assert (result.status, result.detail) == (logic.FAILED, f"failed at {CONFIG}")


def test_a_failed_validation_names_the_failing_check():
    failure = "llm02-phi3: chat answered 'WRONG-ANSWER', expected 'HX-OK'"
    results = {"operations": [op(RESTART, success=[GW1]), op(VALIDATE, error=[GW1])], "failed_hosts": [GW1]}
    outcome = {**PLANNED, "restarted": True, "failures": [failure], "cause": failure}
    result = logic.classify(GW1, 1, results, outcome)
    assert (result.status, result.detail) == (logic.FAILED, failure)
    result = logic.classify(GW1, 1, results, {**outcome, "rolled_back": True})
    assert result.status == logic.ROLLED_BACK and failure in result.detail


def test_updated_and_unchanged_come_from_the_json_results():
    results = {
        "operations": [
            op(CONFIG, success=[GW1], no_change=[GW2]),
            op(RESTART, success=[GW1]),
            op(VALIDATE, no_change=[GW1, GW2]),
            op(KEEP, success=[GW1]),
        ],
        "failed_hosts": [],
    }
    updated = logic.classify(GW1, 0, results, {**PLANNED, "restart": True, "restarted": True})
    assert (updated.status, updated.changes, updated.restarted) == (
        logic.UPDATED,
        [CONFIG, RESTART, KEEP],
        True,
    )
    unchanged = logic.classify(GW2, 0, results, PLANNED)
    assert (unchanged.status, unchanged.changes, unchanged.restarted) == (logic.UNCHANGED, [], False)


def test_degraded_checks_are_reported_on_a_passing_host():
    results = {"operations": [op(VALIDATE, no_change=[GW1])], "failed_hosts": []}
    degraded = "llm02-phi3: chat failed: HTTP 500 [backend llm-02 unreachable; degraded]"
    result = logic.classify(GW1, 0, results, {**PLANNED, "degraded": [degraded]})
    assert result.status == logic.UNCHANGED
    assert result.degraded == [degraded]
    assert result.detail.startswith("degraded: 1 check(s), e.g. llm02-phi3")


def test_a_refused_host_names_the_refusal():
    refused = "REFUSING TO DEPLOY: this host does not own the gateway address 198.18.4.39"
    results = {"operations": [op("tasks/precheck.py | REFUSED: x", error=[GW1])], "failed_hosts": [GW1]}
    result = logic.classify(GW1, 1, results, {**PLANNED, "refused": refused, "cause": refused})
    assert (result.status, result.detail) == (logic.FAILED, refused)


def test_the_dry_plan_says_which_hosts_restart_whatever_the_operations_are_called():
    plan = [
        {"name": CONFIG, "hosts_with_change": [GW1, GW2]},
        {"name": "tasks/service.py | Bounce it (renamed)", "hosts_with_change": [GW1]},
    ]
    assert logic.planned(plan, GW1, {**PLANNED, "restart": True}) == {
        "changes": [CONFIG, "tasks/service.py | Bounce it (renamed)"],
        "restart": True,
    }
    assert logic.planned(plan, GW2, {**PLANNED, "restart": False}) == {"changes": [CONFIG], "restart": False}
    assert logic.planned([{"name": RESTART, "hosts_with_change": [GW3]}], GW3, PLANNED)["restart"] is False


def test_summary_and_exit_status():
    results = [
        logic.HostResult("hx-lb", logic.UNCHANGED, "load balancer"),
        logic.HostResult(GW1, logic.UPDATED, "canary", changes=[CONFIG], restarted=True, ready_seconds=9.25),
        logic.HostResult(GW2, logic.ROLLED_BACK, "batch 1", "rolled back; cause: ValueError: x"),
        logic.HostResult(GW3, logic.SKIPPED, "batch 2", f"not touched: the rollout stopped at {GW2}"),
    ]
    lines = logic.summary(results)
    assert lines[0].split() == ["host", "role", "result", "restart->ready", "detail"]
    assert "9.2 s" in lines[2] and "1 change(s)" in lines[2]
    assert "rolled back" in lines[3] and "ValueError: x" in lines[3]
    assert lines[-1] == "updated: 1, unchanged: 1, rolled back: 1, failed: 0, unreachable: 0, skipped: 1"
    assert logic.exit_code(results) == 1
    assert logic.exit_code(results[:2]) == 0
    assert logic.exit_code([logic.HostResult(GW3, logic.UNREACHABLE)]) == 1


# --- the LB control script -------------------------------------------------------------------

STAT = """# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight,act,bck
hx_front_door,FRONTEND,,,3,5,262124,100,1,2,0,0,0,,,,,OPEN,,,
hx_gateways,hx-api-gateway-server,0,0,2,4,,50,1,2,,0,,0,0,0,0,UP,1,1,0
hx_gateways,hx-api-gateway-02,0,0,0,3,,50,1,2,,0,,0,0,0,0,DRAIN,1,1,0
hx_gateways,hx-api-gateway-03,0,0,0,0,,0,0,0,,0,,0,0,0,0,DOWN 1/2,1,1,0
hx_gateways,BACKEND,0,0,2,5,,100,1,2,0,0,,0,0,0,0,UP,2,2,0
"""


def test_lbctl_reads_show_stat_for_one_backend():
    servers = lbctl.parse_stat(STAT, "hx_gateways")
    assert servers == {
        GW1: {"status": "UP", "scur": 2, "weight": 1},
        GW2: {"status": "DRAIN", "scur": 0, "weight": 1},
        GW3: {"status": "DOWN 1/2", "scur": 0, "weight": 1},
    }
    assert lbctl.parse_stat(STAT, "other") == {}
    with pytest.raises(ValueError):
        lbctl.parse_stat("Unknown command\n", "hx_gateways")


# `show servers state hx_gateways` as HAProxy 2.6 answered on the testbed: GW1 drained while its
# health check failed (`show stat` said "DOWN"), GW2 in maintenance, GW3 in rotation.
SERVERS_STATE = """1
# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port
3 hx_gateways 1 hx-api-gateway-server 198.18.9.39 0 8 1 1 10 8 2 0 6 0 0 0 - 4000 - 0 0 - - 0
3 hx_gateways 2 hx-api-gateway-02 198.18.9.40 0 1 1 1 11 8 2 0 14 0 0 0 - 4000 - 0 0 - - 0
3 hx_gateways 3 hx-api-gateway-03 198.18.9.41 2 0 1 1 5 15 3 3 6 0 0 0 - 4000 - 0 0 - - 0
"""


def test_lbctl_reads_the_admin_state_that_show_stat_hides():
    admin = lbctl.parse_servers_state(SERVERS_STATE, "hx_gateways")
    assert admin == {GW1: 8, GW2: 1, GW3: 0}
    assert [bool(a & lbctl.ADMIN_DRAIN) for a in admin.values()] == [True, False, False]
    assert [bool(a & lbctl.ADMIN_MAINT) for a in admin.values()] == [False, True, False]
    assert lbctl.parse_servers_state(SERVERS_STATE, "other") == {}
    with pytest.raises(ValueError):
        lbctl.parse_servers_state("Can't find backend.\n", "hx_gateways")


# --- the release state -----------------------------------------------------------------------


def test_release_state_parses_and_decides_stale_and_snapshot():
    fact = release.ReleaseState()
    facts = fact.process(
        [
            "start 1000.5",
            "active active",
            "need_reload no",
            "mtime config.yaml 999.9",
            "same config.yaml yes",
            "mtime gateway.env 10",
            "same gateway.env yes",
            "mtime hx-litellm-gateway.service 10",
            "same hx-litellm-gateway.service yes",
            "mtime venv -",
            "same venv yes",
        ]
    )
    assert facts["start"] == 1000.5 and facts["mtimes"]["venv"] is None
    assert release.stale_reason(facts) is None
    assert release.last_good_matches(facts)
    newer = {**facts, "mtimes": {**facts["mtimes"], "config.yaml": 1000.6}}
    assert release.stale_reason(newer).startswith("config.yaml changed after the service started")
    assert release.stale_reason({**facts, "need_reload": True}).startswith("the unit file changed")
    assert (
        release.stale_reason({**newer, "active": "inactive"}) is None
    )  # a stopped service is started anyway
    assert not release.last_good_matches({**facts, "same": {**facts["same"], "venv": False}})
    assert not release.last_good_matches({"same": {}})


def test_release_state_command_never_reads_the_key_file_content():
    settings = parse_settings({"base_dir": "/opt/hx", "gateway_ip": "192.0.2.1", "litellm_version": "1.2.3"})
    command = release.ReleaseState().command(settings)
    assert "sha256sum < /opt/hx/config/api-gateway/gateway.env" in command  # compared, never printed
    assert "cat /opt/hx/config/api-gateway/gateway.env" not in command
    assert release.last_good_dir(settings) == "/opt/hx/releases/last-good"


# --- templates -------------------------------------------------------------------------------


def render(name: str, **context) -> str:
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    return env.from_string((paths.TEMPLATES / name).read_text()).render(**context)


def test_haproxy_config_lists_every_gateway_with_health_checks_and_retries():
    text = render(
        "haproxy.cfg.j2",
        servers=[
            {"name": GW1, "address": "198.18.4.39", "port": 4000},
            {"name": GW2, "address": "198.18.4.40", "port": 4000},
        ],
        backend="hx_gateways",
        admin_socket="/run/haproxy/admin.sock",
        bind="0.0.0.0",
        port=4000,
        connect_timeout=5,
        request_timeout=300,
        check_interval_ms=1000,
    )
    assert "stats socket /run/haproxy/admin.sock mode 660 level admin" in text
    assert "option httpchk GET /health/readiness" in text
    assert "bind 0.0.0.0:4000" in text
    assert "retries 3" in text and "option redispatch 1" in text
    assert f"    server {GW1} 198.18.4.39:4000\n" in text
    assert f"    server {GW2} 198.18.4.40:4000\n" in text


def test_rollback_script_renders_and_is_valid_shell(tmp_path):
    settings = parse_settings({"base_dir": "/opt/hx", "gateway_ip": "192.0.2.1", "litellm_version": "1.2.3"})
    text = render(
        "rollback.sh.j2",
        settings=settings,
        last_good=release.last_good_dir(settings),
        unit_file=release.unit_file(settings),
        auth_file="/opt/hx/config/api-gateway/hx_auth.py",
        start="/opt/hx/scripts/service/api-gateway/start.sh",
    )
    script = tmp_path / "rollback.sh"
    script.write_text(text)
    assert subprocess.run(["sh", "-n", str(script)], capture_output=True).returncode == 0
    assert "GOOD=/opt/hx/releases/last-good" in text
    assert 'cp "$AUTH_FILE" "$new/hx_auth.py"' in text  # the key check is saved with its config
    assert "NOT ROLLED BACK: there is no last known good release yet" in text


def test_a_cause_only_the_log_holds_is_shown_from_the_hosts_own_failed_line():
    log = (
        "    [hx-lb]                 Success\n"
        "    [hx-api-gateway-02]     FAILED: not this host\n"
        "    [hx-lb]                 FAILED: haproxy -c refused the new config; the live one is unchanged\n"
        "    [hx-lb]                 Error: executed 0 commands\n"
    )
    assert logic.said_in_log("hx-lb", log) == (
        "FAILED: haproxy -c refused the new config; the live one is unchanged"
    )
    assert logic.said_in_log("hx-api-gateway-server", log) is None
    failed = logic.classify("hx-lb", 1, None, {"planned": True})
    assert (failed.status, failed.detail) == (logic.FAILED, logic.UNKNOWN_CAUSE)
