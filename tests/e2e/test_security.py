"""Security of the deployed gateway on a real fleet machine: the unit's exposure, no internet at
start-up, the master key's single home and its rotation, the permission model and its repair,
loopback-only listening, hostile free text, and a bad value that changes nothing.

Every test shares the session's deployed gateway; those that change it put it back in a fixture's
teardown (conftest.restore_gateway), so a failed restore never hides the test's own failure.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shlex
import subprocess
import sys

import httpx
import pytest

from tests.e2e import helpers

GATEWAY = helpers.GATEWAY
BASE = helpers.BASE
UNIT = helpers.UNIT
CONFIG_DIR = f"{BASE}/config/api-gateway"
CONFIG = helpers.CONFIG
ENV_FILE = helpers.ENV_FILE
LOGS = f"{BASE}/logs/services"
SCRIPTS = helpers.SCRIPTS
UNIT_FILE = helpers.UNIT_FILE
VENV_PYTHON = f"{BASE}/gateway/venv/bin/python"
# What LiteLLM 1.108.7 logs when it reaches for the internet at start-up (seen by starting it
# without LITELLM_LOCAL_MODEL_COST_MAP on a fleet machine, which has no route out):
#   "LiteLLM: model cost map fetch attempt 1/3 failed (ConnectError fetching https://raw.githubusercontent.com/...
#    [Errno -3] Temporary failure in name resolution); retrying in 2.6s"
#   "LiteLLM: Failed to fetch remote model cost map from https://raw.githubusercontent.com/..."
# and, were telemetry recording, "telemetry: recording [...]".
INTERNET_MARKERS = (
    "fetch attempt",
    "Failed to fetch",
    "githubusercontent",
    "name resolution",
    "Network is unreachable",
    "telemetry: recording",
)
HOSTILE = 'it\'s "quoted" $HOME `whoami` # not a comment: yes\nsecond line'


def base_url() -> str:
    return helpers.url(GATEWAY)


def get(path: str, key: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.get(base_url() + path, headers=headers, timeout=30, trust_env=False)


def new_key() -> str:
    return "sk-" + secrets.token_urlsafe(32)


def changes(result: helpers.DeployResult) -> list[str]:
    """Changed operations, without the validation."""
    return [name for name in result.changed(GATEWAY) if not name.startswith("tasks/validate.py")]


def host_yaml(expression: str) -> object:
    """Evaluate `expression` (with `c` the parsed config.yaml) in the gateway venv's Python; the
    host's system Python has no yaml."""
    code = f"import json, yaml; c = yaml.safe_load(open({CONFIG!r})); print(json.dumps({expression}))"
    return json.loads(helpers.ssh(GATEWAY, f"{VENV_PYTHON} -c {shlex.quote(code)}"))


def test_unit_exposure_is_at_most_2_and_every_open_directive_is_explained(first_deploy):
    analysis = helpers.ssh(GATEWAY, f"systemd-analyze security {UNIT} --no-pager")
    score = re.search(rf"Overall exposure level for {re.escape(UNIT)}: (\d+\.\d+)", analysis)
    assert score, analysis[-2000:]
    assert float(score.group(1)) <= 2.0, analysis
    comments = [
        line for line in helpers.ssh(GATEWAY, f"cat {UNIT_FILE}").splitlines() if line.startswith("#")
    ]
    still_open = [line.split()[1] for line in analysis.splitlines() if line.startswith("✗")]
    assert still_open, "systemd-analyze lists nothing open: update this test and the unit's comments"
    for setting in still_open:
        directive = setting.split("=")[0]
        assert any(directive in comment for comment in comments), f"{setting} is open without a comment"
    # Closed as far as that, the proxy still serves chat and embeddings.
    key = helpers.master_key(GATEWAY)
    with httpx.Client(base_url=base_url(), headers={"Authorization": f"Bearer {key}"}, timeout=60) as client:
        chat = client.post(
            "/v1/chat/completions",
            json={
                "model": "hx-chat",
                "messages": [{"role": "user", "content": "Return exactly the text: HX-OK"}],
                "temperature": 0,
                "max_tokens": 10,
            },
        )
        assert chat.status_code == 200, chat.text
        assert chat.json()["choices"][0]["message"]["content"].strip() == "HX-OK"
        emb = client.post("/v1/embeddings", json={"model": "emb-perf", "input": ["a", "b"]})
        assert emb.status_code == 200, emb.text
        assert [len(d["embedding"]) for d in emb.json()["data"]] == [768, 768]


def test_no_telemetry_and_no_internet_fetch_at_start(first_deploy):
    environment = helpers.ssh(GATEWAY, f"systemctl show -p Environment --value {UNIT}").split()
    assert "LITELLM_LOCAL_MODEL_COST_MAP=True" in environment
    assert "LITELLM_TELEMETRY_DISABLED=True" in environment
    assert host_yaml("c['litellm_settings']") == {
        "telemetry": False,
        "drop_params": True,
        "callbacks": ["hx_auth.request_fixes", "hx_auth.failover"],
        "enable_post_custom_auth_checks": True,  # client keys' `expires` (README "Clients and keys")
    }
    invocation = helpers.ssh(GATEWAY, f"systemctl show -p InvocationID --value {UNIT}").strip()
    log = helpers.ssh(GATEWAY, f"journalctl _SYSTEMD_INVOCATION_ID={invocation} -o cat --no-pager")
    assert "Application startup complete" in log  # this is the journal of a whole start
    for marker in INTERNET_MARKERS:
        assert marker not in log, f"the gateway tried the internet at start-up: {marker!r} in its journal"


def test_master_key_appears_nowhere_but_its_file(first_deploy, tmp_path):
    key = helpers.master_key(GATEWAY)
    assert helpers.ssh(GATEWAY, f"stat -c '%U:%G %a' {ENV_FILE}").strip() == "root:hx-gateway 640"
    # Deploys that handle the key, as verbose as pyinfra gets: with MASTER_KEY, and without it
    # (the validation then reads the key from the host). Their reports go where we can read them.
    # (The key's upload itself, at -vvv --debug --diff, is in the rotation test below.)
    report = tmp_path / "report-{host}.json"
    verbose = ("-vvv", "--debug", "--diff", "--limit", GATEWAY, "--data", f"validation_report={report}")
    with_key = helpers.pyinfra(*verbose, env={"MASTER_KEY": key})
    assert with_key.returncode == 0, with_key.output[-3000:]
    without_key = helpers.pyinfra(*verbose)
    assert without_key.returncode == 0, without_key.output[-3000:]
    dry = helpers.pyinfra(
        "--dry", "--diff", "-v", "--limit", GATEWAY, env={"MASTER_KEY": key}, json_output=False
    )
    assert dry.returncode == 0, dry.output[-3000:]
    scripts = helpers.ssh(
        GATEWAY,
        f"cd {SCRIPTS} && ./status.sh 2>&1; ./stop.sh 2>&1; ./start.sh 2>&1; ./status.sh 2>&1",
        timeout=240,
    )
    assert "OK: hx-litellm-gateway.service is ready" in scripts, scripts[-2000:]
    places = {
        "config.yaml": helpers.ssh(GATEWAY, f"cat {CONFIG}"),
        "the unit": helpers.ssh(GATEWAY, f"cat {UNIT_FILE}"),
        "process arguments": helpers.ssh(GATEWAY, "ps -eo args"),
        "the journal": helpers.ssh(GATEWAY, "journalctl --no-pager -o cat", timeout=60),
        "pyinfra -vvv --debug --diff with MASTER_KEY": with_key.output,
        "pyinfra -vvv --debug --diff without MASTER_KEY": without_key.output,
        "pyinfra --dry --diff -v": dry.output,
        "the service scripts": scripts,
        "the validation report": (tmp_path / f"report-{GATEWAY}.json").read_text(),
    }
    assert "master_key: os.environ/LITELLM_MASTER_KEY" in places["config.yaml"]
    assert json.loads(places["the validation report"])["checks"]  # a real report was written
    leaks = [where for where, text in places.items() if key in text]
    assert leaks == [], f"the master key appears in: {', '.join(leaks)}"
    tracked = subprocess.run(["git", "grep", "-F", "-q", "-e", key], cwd=helpers.REPO)
    assert tracked.returncode == 1, "the master key is in a file tracked by git"


def files_holding_the_key_on_the_host() -> list[str]:
    """Every file on the gateway's disk holding the key (binary journals included), found with
    a pattern file made on the host from the env file: the key is never on a command line."""
    pattern = "/run/hx-key-pattern"
    found = helpers.ssh(
        GATEWAY,
        f"umask 077; sed -n 's/^LITELLM_MASTER_KEY=//p' {ENV_FILE} > {pattern}; "
        f"test -s {pattern} || echo 'no key line'; "
        f"grep -rlaF -f {pattern} / --exclude-dir=proc --exclude-dir=sys --exclude-dir=dev 2>/dev/null; "
        f"rm -f {pattern}",
        timeout=120,
    )
    return sorted(line for line in found.splitlines() if line != pattern)


def test_master_key_on_the_host_only_in_its_file_and_the_root_only_rollback_copy(first_deploy):
    saved = f"{helpers.LAST_GOOD}/gateway.env"
    assert files_holding_the_key_on_the_host() == sorted([ENV_FILE, saved])
    assert helpers.stats(GATEWAY, f"{BASE}/releases", helpers.LAST_GOOD, saved) == {
        f"{BASE}/releases": "root:root 700",
        helpers.LAST_GOOD: "root:root 700",
        saved: "root:root 600",
    }


def test_master_key_appears_in_no_report_and_no_rollout_log(first_deploy):
    """A rollout with MASTER_KEY writes its pyinfra logs under reports/rollout-<time>/; neither
    they nor any other report on the control machine hold the key."""
    key = helpers.master_key(GATEWAY)
    env = {k: v for k, v in os.environ.items() if k not in ("MASTER_KEY", "FORCE")}
    proc = subprocess.run(
        [sys.executable, "-m", "rollout", helpers.INVENTORY, "--limit", GATEWAY],
        cwd=helpers.REPO,
        env={**env, "MASTER_KEY": key},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    log_dir = re.search(r"logs in (\S+)", proc.stdout)
    assert log_dir, proc.stdout[-2000:]
    logs = list((helpers.REPO / log_dir.group(1)).glob("*.log"))
    assert len(logs) >= 2, logs  # the plan and the canary's deploy, at least
    assert key not in proc.stdout + proc.stderr
    reports = [p for p in (helpers.REPO / "reports").rglob("*") if p.is_file()]
    assert set(logs) <= set(reports)
    holding = [str(p) for p in reports if key.encode() in p.read_bytes()]
    assert holding == [], f"the master key is in {holding}"


def test_key_rotation_restarts_once_and_only_the_new_key_works(restore_gateway):
    original = helpers.master_key(GATEWAY)
    rotated = new_key()
    env_before = helpers.ssh(GATEWAY, f"sha256sum {ENV_FILE}")
    pid, started = helpers.main_pid(GATEWAY), helpers.starts(GATEWAY)
    # --dry --diff shows that the key changes, never a key, and changes nothing.
    dry = helpers.pyinfra(
        "--dry", "--diff", "--limit", GATEWAY, env={"MASTER_KEY": rotated}, json_output=False
    )
    assert dry.returncode == 0, dry.output[-3000:]
    assert f"Will replace {ENV_FILE} with the master key from MASTER_KEY (value not shown)" in dry.output
    assert rotated not in dry.output and original not in dry.output
    assert helpers.ssh(GATEWAY, f"sha256sum {ENV_FILE}") == env_before
    # The upload, as verbose as pyinfra gets.
    result = helpers.pyinfra("-vvv", "--debug", "--diff", "--limit", GATEWAY, env={"MASTER_KEY": rotated})
    assert result.returncode == 0, result.output[-3000:]
    assert "tasks/config.py | Install the master key from MASTER_KEY (value not shown)" in changes(result)
    assert helpers.starts(GATEWAY) == started + 1  # exactly one restart
    assert helpers.main_pid(GATEWAY) != pid
    assert get("/v1/models", original).status_code == 401  # README: a wrong key gets exactly 401
    assert get("/v1/models", rotated).status_code == 200
    assert rotated not in result.output and original not in result.output
    # Without MASTER_KEY the host's key stays: nothing changes, nothing restarts.
    pid = helpers.main_pid(GATEWAY)
    again = helpers.pyinfra("--limit", GATEWAY)
    helpers.assert_noop(again, GATEWAY, ignore=("tasks/validate.py",))
    assert helpers.main_pid(GATEWAY) == pid
    assert helpers.master_key(GATEWAY) == rotated


@pytest.fixture
def dropped_by_hand(restore_gateway):
    """Files a person dropped into the tree; removed after the test."""
    paths = (f"{SCRIPTS}/dropped-by-hand", f"{LOGS}/note")
    yield paths
    helpers.ssh(GATEWAY, f"rm -f {' '.join(paths)}")


def test_permission_drift_is_repaired_on_the_next_run_without_a_restart(dropped_by_hand):
    pid = helpers.main_pid(GATEWAY)
    dropped, note = dropped_by_hand
    helpers.ssh(
        GATEWAY,
        f"chown -R nobody:nogroup {BASE} && chmod -R o+w {BASE}/config && "
        f"chmod g+w,o+w {BASE}/gateway/venv/bin/litellm && chmod 777 {LOGS} && "
        f"touch {dropped} {note} && chmod 666 {dropped} {note}",
    )
    result = helpers.pyinfra("--limit", GATEWAY)
    assert result.returncode == 0, result.output[-3000:]
    assert any(name.startswith("tasks/layout.py | Repair owner/mode drift") for name in changes(result))
    assert not any("Restart" in name for name in changes(result))
    assert helpers.main_pid(GATEWAY) == pid  # ownership and modes do not restart the service

    expected = {**helpers.LAYOUT_MODES, dropped: "root:root 644", note: "hx-gateway:hx-gateway 664"}
    assert helpers.stats(GATEWAY, *expected) == expected
    # The venv tree (and everything else outside config and logs): root's, not group/other-writable.
    outside = (
        f"find {BASE} \\( -path {CONFIG_DIR} -o -path {LOGS} \\) -prune -o "
        "\\( ! -user root -o ! -group root -o \\( ! -type l -perm /022 \\) \\) -print"
    )
    assert helpers.ssh(GATEWAY, outside) == ""
    assert helpers.ssh(GATEWAY, f"find {CONFIG_DIR} ! -user root -o ! -group hx-gateway -o -perm /027") == ""
    assert helpers.ssh(GATEWAY, f"find {BASE} -perm -o+w ! -type l -print") == ""
    assert get("/v1/models", helpers.master_key(GATEWAY)).status_code == 200
    # And the repaired host is a no-op again.
    helpers.assert_noop(helpers.pyinfra("--limit", GATEWAY), GATEWAY, ignore=("tasks/validate.py",))


def test_loopback_listen_host_works_on_the_host(restore_gateway):
    result = helpers.pyinfra("--limit", GATEWAY, "--data", "listen_host=127.0.0.1")
    assert result.returncode == 0, result.output[-3000:]
    assert "tasks/service.py | Restart the gateway and wait for readiness" in result.changed(GATEWAY)
    # Nothing but the host reaches the API, the control machine included: not validated from here.
    assert "listen_host is 127.0.0.1: the API answers only on the host itself" in result.output
    listeners = helpers.ssh(GATEWAY, "ss -ltnH 'sport = :4000'")
    assert "127.0.0.1:4000" in listeners and "0.0.0.0:4000" not in listeners, listeners
    assert "OK: hx-litellm-gateway.service is ready" in helpers.ssh(GATEWAY, f"{SCRIPTS}/start.sh")
    status = helpers.ssh(GATEWAY, f"{SCRIPTS}/status.sh")
    assert "OK  /health/readiness" in status and "BAD" not in status, status
    with pytest.raises(httpx.ConnectError):
        get("/health/liveliness", None)


def test_hostile_description_reaches_the_host_literally(restore_gateway, tmp_path):
    folder = helpers.group_data(
        tmp_path / "group_data",
        f"""
        models = copy.deepcopy(_base.models)
        models[3]["description"] = {HOSTILE!r}
        """,
    )
    result = helpers.pyinfra("--group-data", folder, "--limit", GATEWAY)
    assert result.returncode == 0, result.output[-3000:]
    assert "tasks/config.py | Render config.yaml" in result.changed(GATEWAY)
    found = host_yaml(
        "[e.get('model_info', {}).get('description') for e in c['model_list'] "
        "if e['model_name'] == 'llm01-llama3.2-3b']"
    )
    assert found == [HOSTILE]
    key = helpers.master_key(GATEWAY)
    assert get("/v1/models", key).status_code == 200
    info = get("/model/info", key)
    assert info.status_code == 200, info.text
    entry = next(e for e in info.json()["data"] if e["model_name"] == "llm01-llama3.2-3b")
    assert entry["model_info"]["description"] == HOSTILE


def test_a_bad_value_stops_the_deploy_and_changes_nothing_on_the_host(first_deploy):
    before = helpers.ssh(GATEWAY, f"sha256sum {CONFIG} {ENV_FILE} {UNIT_FILE}")
    pid = helpers.main_pid(GATEWAY)
    result = helpers.pyinfra("--limit", GATEWAY, "--data", "port=70000", json_output=False)
    assert result.returncode != 0
    assert "settings: port 70000 is out of range; it must be from 1 to 65535" in result.output
    assert "nothing was changed on any host" in result.output
    assert "Starting operation" not in result.output
    assert helpers.ssh(GATEWAY, f"sha256sum {CONFIG} {ENV_FILE} {UNIT_FILE}") == before
    assert helpers.main_pid(GATEWAY) == pid
