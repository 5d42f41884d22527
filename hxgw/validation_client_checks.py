"""Validation of each client's path (group data `clients`): with the master key and the
`x-hx-as-client` header the gateway answers as it would the client (its /v1/models, its allowed
and refused models) but counts none of the client's limits (templates/hx_auth.py), so a deploy
never spends an application's requests per minute. A failure is `fail`, or `degraded` when the
model tried sits on an unreachable backend.
"""

from __future__ import annotations

from hxgw.validation_calls import GATEWAY_TIMEOUT, MAX_TOKENS, GatewayCalls
from hxgw.validation_judges import PROMPT, error_message

AS_CLIENT_HEADER = "x-hx-as-client"  # templates/hx_auth.py
MODEL_NOT_FOUND = "model_not_found"


class ClientChecks(GatewayCalls):
    def check_clients(self) -> None:
        for client in self.clients:
            name, allowed = client["name"], client["models"] or self.catalogue.model_names()
            headers = {**self._headers(self._key), AS_CLIENT_HEADER: name}
            answer = self._call("GET", "/v1/models", key=self._key, timeout=GATEWAY_TIMEOUT, headers=headers)
            ids = sorted(
                m.get("id") for m in ((answer.json() or {}).get("data") or []) if isinstance(m, dict)
            )
            ok = answer.status == 200 and ids == sorted(allowed)
            self._record(
                None,
                f"client {name}: /v1/models",
                ok,
                f"lists {ids}"
                if ok
                else self._failed_answer(f"expected {sorted(allowed)}, got {ids}", answer),
                answer,
            )
            self._client_model(name, allowed[0], headers, expect_ok=True)
            refused = next((m for m in self.catalogue.model_names() if m not in allowed), None)
            if refused is not None:
                self._client_model(name, refused, headers, expect_ok=False)

    def _client_model(self, client: str, model: str, headers: dict, expect_ok: bool) -> None:
        if self._mode(model) == "embedding":
            path, body = "/v1/embeddings", {"model": model, "input": PROMPT}
        else:
            path = "/v1/chat/completions"
            body = {
                "model": model,
                "messages": [{"role": "user", "content": PROMPT}],
                "max_tokens": MAX_TOKENS,
            }
        answer = self._call(
            "POST", path, key=self._key, timeout=self._timeout(model), body=body, headers=headers
        )
        if expect_ok:
            ok = answer.status == 200
            detail = "answered" if ok else self._failed_answer(f"{model} is in its list but", answer)
            self._record(model, f"client {client}: allowed", ok, detail, answer)
            return
        error = ((answer.json() or {}).get("error") or {}) if isinstance(answer.json(), dict) else {}
        ok = answer.status == 404 and error.get("code") == MODEL_NOT_FOUND
        said = error_message(answer.response) if answer.response is not None else answer.error
        detail = "404 model_not_found" if ok else f"expected 404 model_not_found, got {answer.status}: {said}"
        self._record(None, f"client {client}: refused {model}", ok, detail, answer)
