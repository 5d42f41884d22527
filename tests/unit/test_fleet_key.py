"""One master key per fleet (hxops/fleet_key.py): the decision table on sha256 digests, then the
same cases planned by pyinfra on a fleet of three @fake gateways (no host is ever contacted)."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from hxops.fleet_key import SplitFleet, decide, fingerprint, short
from tests.unit.helpers import PYINFRA, REPO, healthy_responses

A, B = fingerprint("sk-" + "a1" * 20), fingerprint("sk-" + "b2" * 20)


# --- the decision table ---------------------------------------------------------------------------


def test_no_gateway_holds_a_key_and_none_is_kept_generates_one():
    assert decide({"gw1": None, "gw2": None}, kept=None, given=None).source == "generated"


def test_no_gateway_holds_a_key_the_kept_one_is_used():
    decision = decide({"gw1": None, "gw2": None}, kept=A, given=None)
    assert (decision.source, decision.digest) == ("kept", A)


def test_some_gateways_hold_the_same_key_it_is_read_from_one_of_them():
    decision = decide({"gw1": None, "gw2": A, "gw3": A}, kept=None, given=None)
    assert (decision.source, decision.digest, decision.read_from) == ("gateways", A, "gw2")
    assert decision.warnings == []


def test_the_gateways_key_that_is_also_kept_needs_no_read():
    decision = decide({"gw1": A, "gw2": None}, kept=A, given=None)
    assert (decision.source, decision.read_from) == ("kept", None)


def test_gateways_that_agree_on_another_key_than_the_kept_one_win_with_a_warning():
    decision = decide({"gw1": B, "gw2": B}, kept=A, given=None)
    assert (decision.source, decision.digest) == ("gateways", B)
    assert decision.warnings == [
        f"the control machine kept key {short(A)} for this fleet, but every gateway asked holds "
        f"{short(B)} (gw1, gw2): the fleet keeps the gateways' key, and so does the control machine "
        "from now on"
    ]


def test_gateways_that_disagree_are_refused_naming_who_holds_which_and_the_fix():
    with pytest.raises(SplitFleet) as refused:
        decide({"gw1": A, "gw2": B, "gw3": A, "gw4": None}, kept=B, given=None)
    message = str(refused.value)
    assert f"key {short(A)}: gw1, gw3" in message
    assert f"key {short(B)}: gw2" in message
    assert "no key yet: gw4" in message
    assert f"the control machine keeps key {short(B)} (`make master-key` prints it)" in message
    assert "MASTER_KEY=<that key> pyinfra INVENTORY deploy.py" in message
    assert A not in message and B not in message  # only the short fingerprints


def test_master_key_given_wins_over_a_split_fleet():
    given = fingerprint("sk-" + "c3" * 20)
    decision = decide({"gw1": A, "gw2": B}, kept=A, given=given)
    assert (decision.source, decision.digest) == ("given", given)


# --- planned by pyinfra on three @fake gateways ---------------------------------------------------

GATEWAYS = {"gw1": "192.168.10.39", "gw2": "192.168.10.40", "gw3": "192.168.10.41"}
KEY_A = "sk-" + "Qx7_pL2-vR9zK4mN8bT1cY6wJ3hF5dS0aE" * 1
FINGERPRINT_COMMAND = "s/^LITELLM_MASTER_KEY=//p"


def fleet_inventory(tmp_path: Path, held: dict[str, str | None], fleet_name: str = "prod") -> Path:
    """Three @fake gateways; each answers the fingerprint fact with its key's sha256 (None: none)."""
    hosts = []
    for name, address in GATEWAYS.items():
        digest = held.get(name)
        responses = {**healthy_responses(address), FINGERPRINT_COMMAND: f"{digest}  -" if digest else "none"}
        data = {"gateway_ip": address, "fleet_name": fleet_name, "fake_delay": 0, "fake_delay_jitter": 0}
        hosts.append((f"@fake/{name}", {**data, "fake_responses": responses}))
    path = tmp_path / "fleet_inventory.py"
    path.write_text(f"gateways = {hosts!r}\n")
    return path


def plan_fleet(tmp_path: Path, inventory: Path, master_key: str | None = None, *args: str) -> tuple[str, int]:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "HX_SECRETS_DIR": str(tmp_path / "secrets")}
    if master_key:
        env["MASTER_KEY"] = master_key
    proc = subprocess.run(
        [PYINFRA, "--dry", *args, str(inventory), "deploy.py"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    return proc.stdout + proc.stderr, proc.returncode


def kept(tmp_path: Path, fleet_name: str = "prod") -> Path:
    return tmp_path / "secrets" / "fleets" / fleet_name / "master-key"


def planned_on_every_gateway(output: str, operation: str) -> bool:
    """--dry's table: the operation will change all three gateways."""
    line = next(line for line in output.splitlines() if operation in line)
    return "3 (@fake/gw1, @fake/gw2, @fake/gw3)" in line


def test_plan_none_hold_a_key_one_key_is_generated_kept_root_only_and_planned_on_every_gateway(tmp_path):
    output, rc = plan_fleet(tmp_path, fleet_inventory(tmp_path, {}))
    assert rc == 0, output[-3000:]
    path = kept(tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    key = path.read_text().strip()
    assert key.startswith("sk-") and len(key) >= 32
    assert key not in output  # generated, kept, never printed
    assert f"fleet 'prod': generated the fleet's master key, kept in {path} (not shown)" in output
    assert planned_on_every_gateway(output, "Install the master key of the fleet (value not shown)")
    again, rc = plan_fleet(tmp_path, fleet_inventory(tmp_path, {}))
    assert rc == 0 and path.read_text().strip() == key  # the next run keeps the same key
    assert "generated" not in again


def test_plan_some_hold_the_kept_key_the_others_get_it(tmp_path):
    path = kept(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text(KEY_A + "\n")
    held = {"gw1": fingerprint(KEY_A), "gw2": fingerprint(KEY_A)}
    output, rc = plan_fleet(tmp_path, fleet_inventory(tmp_path, held))
    assert rc == 0, output[-3000:]
    assert path.read_text().strip() == KEY_A
    assert "generated" not in output and "different master keys" not in output
    assert KEY_A not in output


def test_plan_gateways_that_disagree_stop_the_run_before_any_host_is_touched(tmp_path):
    other = "sk-" + "Zy8_wQ3-nB6vC1xM4kL7jH2gF9dS5aP0oI"
    held = {"gw1": fingerprint(KEY_A), "gw2": fingerprint(other), "gw3": fingerprint(KEY_A)}
    output, rc = plan_fleet(tmp_path, fleet_inventory(tmp_path, held))
    assert rc == 1, output[-3000:]
    assert f"key {short(fingerprint(KEY_A))}: @fake/gw1, @fake/gw3" in output
    assert f"key {short(fingerprint(other))}: @fake/gw2" in output
    assert "Nothing was changed on any host." in output
    assert "Detected changes" not in output and "tasks/layout.py" not in output
    assert not kept(tmp_path).exists()


def test_plan_a_limited_first_run_asks_the_gateways_outside_the_limit_and_finds_them_split(tmp_path):
    other = "sk-" + "Zy8_wQ3-nB6vC1xM4kL7jH2gF9dS5aP0oI"
    held = {"gw2": fingerprint(KEY_A), "gw3": fingerprint(other)}  # gw1, the one deployed, has none
    output, rc = plan_fleet(tmp_path, fleet_inventory(tmp_path, held), None, "--limit", "@fake/gw1")
    assert rc == 1, output[-3000:]
    assert f"key {short(fingerprint(KEY_A))}: @fake/gw2" in output
    assert f"key {short(fingerprint(other))}: @fake/gw3" in output
    assert "no key yet: @fake/gw1" in output
    assert not kept(tmp_path).exists()


def test_plan_a_limited_run_that_confirms_the_kept_key_asks_nobody_else(tmp_path):
    path = kept(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text(KEY_A + "\n")
    other = "sk-" + "Zy8_wQ3-nB6vC1xM4kL7jH2gF9dS5aP0oI"
    held = {"gw1": fingerprint(KEY_A), "gw3": fingerprint(other)}  # gw3 is outside the limit
    output, rc = plan_fleet(tmp_path, fleet_inventory(tmp_path, held), None, "--limit", "@fake/gw1")
    assert rc == 0, output[-3000:]
    assert "[@fake/gw3]" not in output  # never connected to


def test_plan_master_key_given_goes_to_every_gateway_of_a_split_fleet_and_dry_keeps_nothing(tmp_path):
    other = "sk-" + "Zy8_wQ3-nB6vC1xM4kL7jH2gF9dS5aP0oI"
    held = {"gw1": fingerprint(KEY_A), "gw2": fingerprint(other)}
    output, rc = plan_fleet(tmp_path, fleet_inventory(tmp_path, held), master_key=KEY_A)
    assert rc == 0, output[-3000:]
    assert planned_on_every_gateway(output, "Install the master key from MASTER_KEY (value not shown)")
    assert "The control machine keeps MASTER_KEY as the fleet's key" in output
    assert not kept(tmp_path).exists()  # kept at run time, once deployed: --dry keeps nothing
    assert KEY_A not in output


def test_two_fleets_keep_two_keys(tmp_path):
    for name in ("testbed-net3", "testbed-net4"):
        output, rc = plan_fleet(tmp_path, fleet_inventory(tmp_path, {}, fleet_name=name))
        assert rc == 0, output[-3000:]
    assert kept(tmp_path, "testbed-net3").read_text() != kept(tmp_path, "testbed-net4").read_text()


def test_gateways_naming_different_fleets_are_refused(tmp_path):
    inventory = fleet_inventory(tmp_path, {})
    text = inventory.read_text().replace("'fleet_name': 'prod'", "'fleet_name': 'other'", 1)
    inventory.write_text(text)
    output, rc = plan_fleet(tmp_path, inventory)
    assert rc == 1
    assert "its hosts name different fleet_name values" in output
    assert "@fake/gw1: 'other', @fake/gw2: 'prod', @fake/gw3: 'prod'" in output


def test_the_store_is_created_root_only_even_with_a_permissive_umask(tmp_path, monkeypatch):
    from hxops import secret_store

    monkeypatch.setenv("HX_SECRETS_DIR", str(tmp_path / "s"))
    old = os.umask(0)
    try:
        path = secret_store.secret_path("f", "master-key")
        assert secret_store.create(path, "one") == "one"
        assert secret_store.create(path, "two") == "one"  # the first one stays
        assert secret_store.replace(path, "three") == "three"
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for directory in (path.parent, path.parent.parent, path.parent.parent.parent):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700, directory
    assert path.read_text() == "three\n"
    assert [p.name for p in path.parent.iterdir()] == ["master-key"]  # no temporary left
