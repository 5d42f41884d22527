"""One master key per fleet, on the rollout fleet (three gateways behind hx-lb, deployed the
README's way: `pyinfra inventory.py deploy.py`, no MASTER_KEY; tests/e2e/conftest.py)."""

from __future__ import annotations

import hashlib

import pytest
from openai import OpenAI

from hxops import fleet_key, secret_store
from testbed.fleet_layout import NET
from tests.e2e import helpers, rollout_support
from tests.e2e.rollout_support import LB

REQUESTS = 60  # through hx-lb: 20 per gateway


@pytest.fixture
def odd_key(healthy):
    """The last gateway's env file holds a key the fleet does not (the running gateway keeps the
    fleet's): a fleet that disagrees on disk. Put back afterwards."""
    with rollout_support.odd_key_on_last_gateway(healthy) as odd:
        yield odd


def test_a_plain_deploy_leaves_one_key_and_the_sdk_through_hx_lb_never_gets_401(healthy):
    held = helpers.key_fingerprints(*healthy.gateways)
    kept = secret_store.secret_path(f"testbed-net{NET}", fleet_key.KEPT_NAME)
    assert set(held.values()) == {hashlib.sha256(healthy.key.encode()).hexdigest()}, held
    assert oct(kept.stat().st_mode & 0o777) == "0o600"
    assert helpers.kept_master_key() == healthy.key  # what `make master-key` prints

    client = OpenAI(base_url=f"{helpers.url(LB)}/v1", api_key=healthy.key)  # the SDK's defaults
    failures = []
    for n in range(REQUESTS):
        try:
            if n % 3:
                assert client.models.list().data
            else:
                chat = client.chat.completions.create(
                    model="hx-chat", messages=[{"role": "user", "content": helpers.HX_OK}]
                )
                assert chat.choices[0].message.content == "HX-OK"
        except Exception as error:  # noqa: BLE001 - every failure is counted and shown
            failures.append(f"{n}: {type(error).__name__}: {error}")
    assert failures == [], failures


def test_a_fleet_that_disagrees_is_refused_before_any_change(healthy, odd_key):
    odd, other = odd_key
    watched = (helpers.ENV_FILE, helpers.CONFIG, helpers.UNIT_FILE)
    before = {n: (helpers.main_pid(n), helpers.sha256(n, *watched)) for n in healthy.gateways}
    reloads = rollout_support.haproxy_reloads()

    limits = [arg for name in [*healthy.gateways, LB] for arg in ("--limit", name)]
    refused = helpers.pyinfra(*limits)  # the README's plain deploy
    assert refused.returncode == 1, refused.output[-3000:]
    ours, theirs = (fleet_key.short(fleet_key.fingerprint(k)) for k in (healthy.key, other))
    assert "the gateways of this fleet hold different master keys" in refused.output
    assert f"key {ours}: {', '.join(healthy.gateways[:-1])}" in refused.output
    assert f"key {theirs}: {odd}" in refused.output
    assert "MASTER_KEY=<that key> pyinfra INVENTORY deploy.py" in refused.output
    assert "Nothing was changed on any host." in refused.output
    assert healthy.key not in refused.output and other not in refused.output
    after = {n: (helpers.main_pid(n), helpers.sha256(n, *watched)) for n in healthy.gateways}
    assert after == before
    assert rollout_support.haproxy_reloads() == reloads
