"""Clients with keys of their own on the fleet (README "Clients and keys"), as their users see
them: `openai` clients through hx-lb, 3 gateways x 2 workers sharing hx-cache's Redis. The tests
are collected in test_failover_fleet.py, whose module fixture deploys that fleet with CLIENTS.

- Each client sees only its models; another model is 404 `model_not_found`, an unknown or
  expired key 401, an operator route 401 (SDK defaults: none of these is retried).
- A client's rpm is counted once for the fleet: exactly `rpm` requests pass across 6 workers,
  then 429 with Retry-After.
- A rotation under traffic fails no request, restarts nothing; revoking the old key is one line
  removed and a rollout; no key appears in pyinfra's output, the journal, the record or a report.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import threading
import time
from pathlib import Path

import openai
from openai import OpenAI

from hxops import client_keys
from testbed import fleet
from tests.e2e import helpers, rollout_support

RPM = 4
CLIENTS = [
    {"name": "app", "models": ["hx-chat", "emb-perf"]},
    {"name": "limited", "models": ["hx-chat"], "rpm": RPM},
    {"name": "rotating", "models": ["*"]},
]
GROUP_DATA = f"clients = {CLIENTS!r}"
PAST = "2026-01-01T00:00:00+00:00"
PROMPT = [{"role": "user", "content": helpers.HX_OK}]
CLIENTS_FILE = f"{helpers.BASE}/config/api-gateway/clients.json"


def make_keys() -> None:
    """One key per client; `app` also holds a key that ended at PAST (a finished rotation)."""
    for client in CLIENTS:
        client_keys.ensure_key(client["name"])
    if len(client_keys.read_keys("app")) == 1:
        current = client_keys.read_keys("app")[0]
        client_keys._write("app", [(client_keys.new_key(), PAST), current])


def key(name: str) -> str:
    return client_keys.ensure_key(name)


def lb(api_key: str, **options) -> OpenAI:
    return OpenAI(
        base_url=f"http://{fleet.find(rollout_support.LB).address}:4000/v1", api_key=api_key, **options
    )


def refusal(call) -> openai.APIStatusError:
    try:
        call()
    except openai.APIStatusError as error:
        return error
    raise AssertionError("the call was not refused")


def test_clients_see_their_models_and_openais_refusals(fleet_on_redis):
    rf, _, _ = fleet_on_redis
    app = lb(key("app"))  # the SDK's defaults, retries included
    assert sorted(m.id for m in app.models.list()) == ["emb-perf", "hx-chat"]
    chat = app.chat.completions.create(model="hx-chat", messages=PROMPT, temperature=0)
    assert chat.choices[0].message.content == "HX-OK"
    assert len(app.embeddings.create(model="emb-perf", input="hello").data[0].embedding) == 768

    denied = refusal(lambda: app.chat.completions.create(model="hx-chat-fast", messages=PROMPT))
    assert isinstance(denied, openai.NotFoundError) and denied.status_code == 404
    assert denied.body == {
        "message": "The model `hx-chat-fast` does not exist or you do not have access to it.",
        "type": "invalid_request_error",
        "param": None,
        "code": "model_not_found",
    }
    denied = refusal(lambda: app.embeddings.create(model="emb-light", input="hello"))
    assert isinstance(denied, openai.NotFoundError) and denied.body["code"] == "model_not_found"
    # A fallback the request names is a model it would call: the same refusal (LiteLLM's body field).
    sneaky = {"fallbacks": ["hx-chat-premium"]}
    denied = refusal(lambda: app.chat.completions.create(model="hx-chat", messages=PROMPT, extra_body=sneaky))
    assert isinstance(denied, openai.NotFoundError) and "`hx-chat-premium`" in denied.message

    unknown = refusal(lambda: lb("sk-hx-" + "x" * 43).models.list())
    assert isinstance(unknown, openai.AuthenticationError) and unknown.status_code == 401
    (old_key, until), _current = client_keys.read_keys("app")
    assert until == PAST
    expired = refusal(lambda: lb(old_key).chat.completions.create(model="hx-chat", messages=PROMPT))
    assert isinstance(expired, openai.AuthenticationError) and "Expired Key" in expired.message
    operator = refusal(lambda: app.get("/model/info", cast_to=object))  # an admin route of LiteLLM's
    assert isinstance(operator, openai.AuthenticationError), operator
    wide = lb(key("rotating"))
    assert {m.id for m in wide.models.list()} == set(rf_models(rf))


def rf_models(rf) -> list[str]:
    return [m.id for m in lb(rf.key).models.list()]


def test_a_clients_limit_is_counted_once_for_the_whole_fleet(fleet_on_redis):
    rf, cache_host, _ = fleet_on_redis
    from tests.e2e.test_failover_fleet import redis_cli

    redis_cli(cache_host, "CLI --scan --pattern '*hx-client:limited*' | xargs -r CLI del")
    workers = sum(helpers.workers_in_unit(name) for name in rf.gateways)
    client = lb(key("limited"), max_retries=0)  # the SDK would wait out Retry-After (60 s) and retry
    answers = []
    for _ in range(3 * RPM):
        try:
            client.chat.completions.create(model="hx-chat", messages=PROMPT, temperature=0)
            answers.append(200)
        except openai.RateLimitError as error:
            answers.append((429, error.response.headers.get("retry-after"), error.body["type"]))
    counted = redis_cli(cache_host, "CLI get '{api_key:hx-client:limited}:requests'").strip()
    print(
        f"rpm {RPM} over {len(rf.gateways)} gateways x {workers // len(rf.gateways)} workers: {answers}; Redis counted {counted}"
    )
    # Counted per worker, up to rpm x workers would pass; counted for the fleet, exactly rpm.
    assert workers >= 6 and answers == [200] * RPM + [(429, "60", "throttling_error")] * (2 * RPM), answers
    assert int(counted) >= RPM
    # Another client's limit is its own: `app` has none and is not held back by `limited`'s.
    assert lb(key("app"), max_retries=0).chat.completions.create(model="hx-chat", messages=PROMPT).choices


class KeyedTraffic:
    """`openai` clients (no retries) calling through hx-lb with whichever key `use` set last; a
    client is made per request, so a switched key is used from the next request on."""

    def __init__(self, api_key: str, clients: int = 2):
        self.api_key, self.ok, self.failures = api_key, 0, []
        self._done, self._lock = threading.Event(), threading.Lock()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(clients)]

    def __enter__(self):
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self._done.set()
        for thread in self._threads:
            thread.join(timeout=90)

    def use(self, api_key: str) -> None:
        self.api_key = api_key

    def wait_for(self, more: int, timeout: float = 60) -> None:
        target, deadline = self.ok + more, time.monotonic() + timeout
        while self.ok < target and not self.failures:
            assert time.monotonic() < deadline, f"fewer than {more} requests answered in {timeout} s"
            time.sleep(0.1)

    def _run(self) -> None:
        while not self._done.is_set():
            api_key = self.api_key
            try:
                answer = lb(api_key, max_retries=0, timeout=60).chat.completions.create(
                    model="llm01-llama3.2-3b", messages=PROMPT, temperature=0, max_tokens=5
                )
                ok, why = answer.choices[0].message.content == "HX-OK", answer.choices[0].message.content
            except openai.OpenAIError as error:
                ok, why = False, f"{type(error).__name__}: {error}"
            with self._lock:
                if ok:
                    self.ok += 1
                else:
                    self.failures.append(f"{time.strftime('%H:%M:%S')} {why}")
            self._done.wait(0.1)  # ~10 requests/s in all: traffic, not a load test, on 2 CPUs


def test_a_key_rotation_under_traffic_fails_no_request_and_revocation_is_one_line(fleet_on_redis, tmp_path):
    rf, _, short = fleet_on_redis
    limits = [arg for name in rf.gateways for arg in ("--limit", name)]
    env = {"MASTER_KEY": rf.key, **helpers.DEFAULT_SERVING}
    pids = {name: helpers.main_pid(name) for name in rf.gateways}
    old = key("rotating")
    outputs = []
    with KeyedTraffic(old) as traffic:
        traffic.wait_for(10)
        # 1. A new key; the old one works on until its end (an hour), on every gateway.
        new = client_keys.rotate("rotating", dt.datetime.now(dt.UTC) + dt.timedelta(hours=1))
        issued = helpers.pyinfra(*limits, "--group-data", short, env=env)
        outputs.append(issued.output)
        assert issued.returncode == 0, issued.output[-3000:]
        traffic.wait_for(10)
        # 2. The client switches to the new key.
        traffic.use(new)
        traffic.wait_for(20)
        # 3. Revocation: the old key's line removed from its file, then a rollout.
        path = client_keys.key_file("rotating")
        path.write_text(
            "".join(line + "\n" for line in path.read_text().splitlines() if not line.startswith(old))
        )
        # The rollout on this module's serving (2 workers), or it would restart onto 1 worker.
        revoked = subprocess.run(
            rollout_support.rollout_cmd(rf, "--group-data", short),
            cwd=helpers.REPO,
            env={**rollout_support.rollout_env(), **helpers.DEFAULT_SERVING},
            capture_output=True,
            text=True,
            timeout=900,
        )
        outputs.append(revoked.stdout + revoked.stderr)
        assert revoked.returncode == 0, outputs[-1][-3000:]
        traffic.wait_for(10)
    print(
        f"rotation under traffic: {traffic.ok} requests answered, {len(traffic.failures)} failed: {traffic.failures[:3]}"
    )
    assert traffic.failures == [] and traffic.ok >= 40
    assert isinstance(refusal(lambda: lb(old).models.list()), openai.AuthenticationError)
    assert lb(new).models.list().data
    assert {name: helpers.main_pid(name) for name in rf.gateways} == pids  # nothing restarted
    no_key_anywhere(rf.gateways, outputs)


def no_key_anywhere(gateways: list[str], outputs: list[str]) -> None:
    """No client key in pyinfra's output, a gateway's journal or files, its record, or a report."""
    keys = [k for c in CLIENTS for k, _ in client_keys.read_keys(c["name"])]
    assert keys
    places = {"pyinfra output": "\n".join(outputs)}
    for name in gateways:
        places[f"{name} journal"] = helpers.ssh(name, "journalctl --no-pager -o cat", timeout=60)
        places[f"{name} files"] = helpers.ssh(
            name,
            f"cat {helpers.BASE}/releases/deployments.jsonl {helpers.BASE}/config/api-gateway/*",
            timeout=60,
        )
    places["reports"] = "\n".join(
        p.read_text(errors="replace") for p in Path(helpers.REPO, "reports").rglob("*") if p.is_file()
    )
    leaks = [where for where, text in places.items() for k in keys if k in text]
    assert leaks == [], f"a client key appears in: {sorted(set(leaks))}"
    for name in gateways:  # the hashes: root and the service's group only, the same on every gateway
        assert helpers.ssh(name, f"stat -c '%U:%G %a' {CLIENTS_FILE}").strip() == "root:hx-gateway 640"
    assert len({helpers.sha256(name, CLIENTS_FILE)[CLIENTS_FILE] for name in gateways}) == 1


def test_the_master_key_can_be_the_operators_only(fleet_on_redis):
    rf, _, short = fleet_on_redis
    limits = [arg for name in rf.gateways for arg in ("--limit", name)]
    env = {"MASTER_KEY": rf.key, **helpers.DEFAULT_SERVING}
    # The deploy's own validation calls every model with the master key: it must still pass.
    off = helpers.pyinfra(*limits, "--group-data", short, "--data", "master_key_models=False", env=env)
    try:
        assert off.returncode == 0, off.output[-3000:]
        operator = lb(rf.key)
        refused = refusal(lambda: operator.chat.completions.create(model="hx-chat", messages=PROMPT))
        assert isinstance(refused, openai.AuthenticationError) and "make client-key" in refused.message
        assert "hx-chat" in {m.id for m in operator.models.list()}  # the operator still sees the fleet
        assert lb(key("app")).chat.completions.create(model="hx-chat", messages=PROMPT).choices
    finally:
        back = helpers.pyinfra(*limits, "--group-data", short, env=env)
        assert back.returncode == 0, back.output[-3000:]
    assert lb(rf.key).chat.completions.create(model="hx-chat", messages=PROMPT).choices
