"""Validation checks of the gateway itself: readiness, auth, open routes, /v1/models, version.

A failure here is always `fail`, never `degraded`: no backend explains it.
"""

from __future__ import annotations

import time

from hxgw import client_checks
from hxgw.validation_calls import (
    EMBED_INPUT,
    GATEWAY_TIMEOUT,
    READY_ATTEMPT_TIMEOUT,
    READY_INTERVAL,
    GatewayCalls,
)
from hxgw.validation_judges import PROMPT, error_message, judge_models


class GatewayChecks(GatewayCalls):
    def check_readiness(self) -> bool:
        deadline = time.monotonic() + self.ready_timeout
        waited_from = time.monotonic()
        while True:
            remaining = max(0.5, deadline - time.monotonic())
            answer = self._call(
                "GET", "/health/readiness", key=None, timeout=min(READY_ATTEMPT_TIMEOUT, remaining)
            )
            if answer.status == 200:
                body = answer.json()
                if isinstance(body, dict) and body.get("litellm_version") and not self.version:
                    self.version = str(body["litellm_version"])
                waited = time.monotonic() - waited_from
                after = f" after waiting {waited:.1f} s" if waited > READY_INTERVAL * 2 else ""
                state = body.get("status", "ready") if isinstance(body, dict) else "ready"
                self._record(None, "readiness", True, f"{state}{after}", answer)
                return True
            if time.monotonic() >= deadline:
                if answer.response is None:
                    detail = f"gateway {self.url} is not answering: {answer.error}"
                else:
                    detail = f"gateway {self.url} is not ready: {error_message(answer.response)}"
                self._record(None, "readiness", False, f"{detail} (waited {self.ready_timeout:g} s)", answer)
                return False
            self._sleep(READY_INTERVAL)

    def _auth_probes(self) -> list[tuple[str, str, dict | None]]:
        """(method, path, body) of every route a client calls, each shaped as the SDK sends it."""
        chat = next((m.name for m in self.catalogue.models if m.mode == "chat"), None)
        embedding = next((m.name for m in self.catalogue.models if m.mode == "embedding"), None)
        probes: list[tuple[str, str, dict | None]] = [("GET", "/v1/models", None)]
        if chat:
            probes.append(("POST", "/v1/chat/completions", self._chat_body(chat)))
            probes.append(("POST", "/v1/completions", {"model": chat, "prompt": PROMPT, "max_tokens": 1}))
        if embedding:
            probes.append(
                (
                    "POST",
                    "/v1/embeddings",
                    {"model": embedding, "input": EMBED_INPUT, "encoding_format": "base64"},
                )
            )
        probes.append(("GET", "/health", None))  # with a key it would call every deployment
        return probes

    def check_auth(self) -> None:
        """Every way of not having the key (none, not Bearer, an empty Bearer, a wrong key) gets
        exactly 401 with OpenAI's error body on every route a client calls, as from OpenAI."""
        probes = self._auth_probes()
        for check, header in client_checks.BAD_AUTH.items():
            headers = {"Authorization": header.format(wrong=self._wrong_key)} if header else {}
            wrong, answers = [], []
            for method, path, body in probes:
                answer = self._call(
                    method, path, key=None, timeout=GATEWAY_TIMEOUT, body=body, headers=headers
                )
                answers.append(answer)
                if answer.response is None:
                    wrong.append(f"{method} {path}: {answer.error}")
                    continue
                ok, verdict = client_checks.judge_unauthorised(
                    answer.status, answer.json(), answer.response.text, self._key
                )
                if not ok:
                    wrong.append(f"{method} {path}: {verdict} ({error_message(answer.response)})")
            who = check.removeprefix("auth-").replace("-", " ")
            detail = (
                f"{who}: " + "; ".join(wrong)
                if wrong
                else f"{who}: 401 with an OpenAI error body on all {len(probes)} client routes"
            )
            latency = sum(a.latency_ms for a in answers)
            self._record(None, check, not wrong, detail, answers[-1], latency_ms=latency)

    def check_open_routes(self) -> None:
        """Only the load balancer's probes answer without a key (README "Routes without a key")."""
        statuses, latency = {}, 0.0
        for route in client_checks.OPEN_ROUTES + client_checks.CLOSED_ROUTES:
            answer = self._call("GET", route, key=None, timeout=GATEWAY_TIMEOUT)
            statuses[route], latency = answer.status, latency + answer.latency_ms
        ok, detail = client_checks.judge_open_routes(statuses, self.opened)
        self._record(None, "open-routes", ok, detail, latency_ms=latency)

    def check_models(self) -> None:
        answer = self._call("GET", "/v1/models", key=self._key, timeout=GATEWAY_TIMEOUT)
        body = answer.json()
        if answer.status is None or not 200 <= answer.status < 300:
            what = "GET /v1/models with the master key"
            self._record(None, "auth-key", False, self._failed_answer(what, answer), answer)
            self._record(None, "models", False, "cannot list the models: see auth-key", answer)
            return
        self._record(
            None, "auth-key", True, f"GET /v1/models with the master key: HTTP {answer.status}", answer
        )
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list):
            self._record(None, "models", False, "/v1/models answer has no data list", answer)
            return
        listed = [str(item.get("id")) for item in data if isinstance(item, dict)]
        ok, detail = judge_models(listed, self.catalogue.model_names())
        self._record(None, "models", ok, detail, answer)

    def check_version(self) -> None:
        if not (self.version and self.pinned_version):
            return
        ok = self.version == self.pinned_version
        detail = f"litellm {self.version}" + ("" if ok else f", but the deploy pins {self.pinned_version}")
        self._record(None, "version", ok, detail)
