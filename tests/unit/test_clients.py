"""Clients as data (hxgw.clients), their keys on the control machine (hxops.client_keys) and what
the gateways get (hashes only): README "Clients and keys"."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import stat

import pytest

from hxgw.clients import gateway_table, parse_clients
from hxgw.errors import ConfigError
from hxops import client_keys
from tests.unit.helpers import render
from tests.unit.test_client_checks import hx_auth  # noqa: F401 - the fixture

NAMES = ["hx-chat", "hx-chat-fast", "emb-perf", "llm01-llama3.2-3b"]
NOW = dt.datetime(2026, 12, 7, 12, tzinfo=dt.UTC)
GOOD = {
    "name": "app",
    "models": ["hx-chat", "emb-perf"],
    "rpm": 60,
    "tpm": 1000,
    "max_parallel": 4,
    "expires": "2027-06-30",
}


def problems(raw) -> list[str]:
    with pytest.raises(ConfigError) as error:
        parse_clients(raw, NAMES, now=NOW)
    return error.value.problems


def test_a_full_entry_is_read_with_its_limits_and_the_end_of_its_expiry_day():
    (client,), warnings = parse_clients([GOOD], NAMES, now=NOW)
    assert (client.name, client.models, client.rpm, client.tpm, client.max_parallel) == (
        "app",
        ("hx-chat", "emb-perf"),
        60,
        1000,
        4,
    )
    assert client.expires_at == dt.datetime(2027, 7, 1, tzinfo=dt.UTC) and warnings == []


def test_only_name_and_models_are_required_and_no_clients_is_none():
    (client,), _ = parse_clients([{"name": "wide", "models": ["*"]}], NAMES, now=NOW)
    assert client.all_models and client.rpm is None and client.expires_at is None
    assert parse_clients(None, NAMES) == ([], []) and parse_clients([], NAMES) == ([], [])


@pytest.mark.parametrize(
    ("entry", "wanted"),
    [
        (
            {"name": "app", "models": ["hx-chta"]},
            ["client 'app' models: unknown model 'hx-chta' (did you mean 'hx-chat'?)", "model_groups"],
        ),
        (
            {"name": "app", "models": ["hx-chat"], "rmp": 5},
            ["unknown key 'rmp' in client 'app' (did you mean 'rpm'?)", "rename it to 'rpm'"],
        ),
        ({"name": "app", "models": []}, ["client 'app' models must be a non-empty list", "['*']"]),
        ({"name": "app"}, ["client 'app' is missing required key 'models'"]),
        ({"name": "app", "models": "hx-chat"}, ["models must be a non-empty list of model names, got str"]),
        ({"name": "app", "models": ["*", "hx-chat"]}, ["'*' already means every model"]),
        ({"name": "app", "models": ["hx-chat", "hx-chat"]}, ["names a model twice"]),
        (
            {"name": "app", "models": ["hx-chat"], "rpm": 0},
            ["client 'app' rpm must be a whole number from 1 to 1000000, got int 0"],
        ),
        ({"name": "app", "models": ["hx-chat"], "rpm": -5}, ["rpm must be a whole number", "got int -5"]),
        ({"name": "app", "models": ["hx-chat"], "tpm": 1.5}, ["tpm must be a whole number", "got float 1.5"]),
        (
            {"name": "app", "models": ["hx-chat"], "max_parallel": True},
            ["max_parallel must be a whole number", "got bool True"],
        ),
        ({"name": "app", "models": ["hx-chat"], "rpm": "60"}, ["rpm must be a whole number", "got str '60'"]),
        (
            {"name": "app", "models": ["hx-chat"], "expires": "30/06/2027"},
            ["expires must be 'YYYY-MM-DD'", "e.g. expires = '2027-06-30'"],
        ),
        (
            {"name": "app", "models": ["hx-chat"], "expires": "2027-06-30T12:00:00"},
            ["expires must be 'YYYY-MM-DD' or an ISO time with a zone"],
        ),
        ({"name": "my app", "models": ["hx-chat"]}, ["name 'my app' is not a valid name"]),
        ("app", ["clients[0] must be a dict, got str 'app'"]),
    ],
)
def test_a_bad_entry_is_refused_naming_the_client_and_the_fix(entry, wanted):
    found = problems([entry])
    assert any(all(part in line for part in wanted) for line in found), found


def test_a_name_defined_twice_is_refused():
    found = problems([GOOD, {"name": "app", "models": ["*"]}])
    assert any("client 'app' is defined twice (clients[0] and clients[1])" in line for line in found), found


def test_clients_must_be_a_list():
    assert problems({"name": "app"}) == [
        "clients must be a list of dicts, got dict {'name': 'app'}; write clients = [{...}]"
    ]


def test_an_expiry_already_past_is_a_warning_not_a_refusal():
    (client,), warnings = parse_clients([dict(GOOD, expires="2026-12-06")], NAMES, now=NOW)
    assert client.name == "app"
    assert warnings == [
        "client 'app' expired on 2026-12-06: its keys get 401; remove the client (and its keys) or set a later expires"
    ]


def test_the_key_is_made_once_kept_600_and_printed_the_same_again(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HX_CLIENT_KEYS_DIR", str(tmp_path / "keys"))
    assert client_keys.main(["app"]) == 0
    key = capsys.readouterr().out.strip()
    assert key.startswith("sk-hx-") and len(key) > 40
    assert client_keys.main(["app"]) == 0 and capsys.readouterr().out.strip() == key
    path = tmp_path / "keys" / "app.keys"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert client_keys.main(["../etc"]) == 2 and not (tmp_path / "etc.keys").exists()


def test_a_rotation_keeps_the_old_key_until_its_end_and_adds_a_new_one(tmp_path, monkeypatch):
    monkeypatch.setenv("HX_CLIENT_KEYS_DIR", str(tmp_path))
    old = client_keys.ensure_key("app")
    new = client_keys.rotate("app", dt.datetime(2026, 12, 8, 12, tzinfo=dt.UTC))
    assert client_keys.read_keys("app") == [(old, "2026-12-08T12:00:00+00:00"), (new, None)]
    assert client_keys.ensure_key("app") == new


def test_the_gateways_get_hashes_and_each_keys_earliest_end_never_a_key(tmp_path, monkeypatch):
    monkeypatch.setenv("HX_CLIENT_KEYS_DIR", str(tmp_path))
    old = client_keys.ensure_key("app")
    new = client_keys.rotate("app", dt.datetime(2027, 12, 8, tzinfo=dt.UTC))
    (client,), _ = parse_clients([GOOD], NAMES, now=NOW)
    table = gateway_table([client], client_keys.hashes(["app"]))
    assert table == [
        {
            "name": "app",
            "models": ["hx-chat", "emb-perf"],
            "rpm": 60,
            "tpm": 1000,
            "max_parallel": 4,
            "keys": [
                # the client's own end (2027-07-01) comes before the old key's (2027-12-08)
                {"sha256": hashlib.sha256(old.encode()).hexdigest(), "expires": "2027-07-01T00:00:00+00:00"},
                {"sha256": hashlib.sha256(new.encode()).hexdigest(), "expires": "2027-07-01T00:00:00+00:00"},
            ],
        }
    ]
    rendered = render("clients.json.j2", clients=table, master_key_models=False)
    assert json.loads(rendered) == {"master_key_models": False, "clients": table}
    assert old not in rendered and new not in rendered


def test_every_model_is_an_empty_list_for_litellm():
    (client,), _ = parse_clients([{"name": "wide", "models": ["*"]}], NAMES, now=NOW)
    assert gateway_table([client], {"wide": []})[0]["models"] == []


def test_a_client_without_a_key_is_refused_with_the_command_that_makes_one(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from hxops.plan import _clients

    monkeypatch.setenv("HX_CLIENT_KEYS_DIR", str(tmp_path))
    host, found = SimpleNamespace(name="gw", data={"clients": [GOOD]}), []
    _clients(host, NAMES, found)
    assert found == [
        f"client 'app' has no key on this control machine ({tmp_path}/app.keys); "
        "make one with `make client-key NAME=app` and hand it over"
    ]
    client_keys.ensure_key("app")
    found.clear()
    (entry,) = _clients(host, NAMES, found)
    assert found == [] and entry["name"] == "app" and len(entry["keys"]) == 1


def test_the_gateway_reads_its_clients_file_again_when_it_changes(hx_auth, tmp_path, monkeypatch):  # noqa: F811
    """templates/hx_auth.py: a client key passes the gate by its sha256; a new clients.json is
    read at the next request (no restart); a half-written one keeps the table read before."""
    from tests.unit.test_client_checks import call

    module, app = hx_auth
    table = tmp_path / "clients.json"
    monkeypatch.setattr(module, "CLIENTS_FILE", str(table))
    first, second = client_keys.new_key(), client_keys.new_key()

    def write(*keys):
        entry = {
            "name": "app",
            "models": [],
            "keys": [{"sha256": client_keys.digest(k), "expires": None} for k in keys],
        }
        new = tmp_path / "clients.json.new"  # replaced whole, as an upload does: a new inode
        new.write_text(json.dumps({"master_key_models": True, "clients": [entry]}))
        new.replace(table)

    write(first)
    assert module._client_of(first)[0]["name"] == "app" and module._client_of(second) is None
    assert call(app, "/v1/models", [("authorization", f"Bearer {first}")]) == (200, b"litellm")
    assert call(app, "/v1/models", [("authorization", f"Bearer {second}")])[0] == 401
    write(second)  # a rotation's end: the first key's line removed
    assert module._client_of(first) is None and module._client_of(second)[0]["name"] == "app"
    table.write_text('{"clients": [')  # caught halfway through an upload
    assert module._client_of(second)[0]["name"] == "app"
