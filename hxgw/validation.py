"""Post-deploy validation of one gateway: real API calls, one result record per check, a report.

Pure logic with httpx and no pyinfra: hxops/validation_op.py runs `validate()` on the control
machine while the deploy executes and turns failures into a failed host.

Checks, in order: readiness (polled up to a timeout; a gateway that does not answer stops the
run there), auth (no key, a non-Bearer header, an empty Bearer and a wrong key each get exactly
401 with OpenAI's error body on /v1/models, chat, completions, embeddings and /health; the master
key is accepted), open routes (only the load balancer's probes answer without a key), the
running LiteLLM version against the pin, /v1/models lists exactly the catalogue's names,
embeddings (one input as base64, a batch of 3 as float; decoded vector length = dims) for every
embedding model, a deterministic chat for every chat model and group, and one streamed chat.
Requests are shaped as the official SDKs send them (hxgw.client_checks): their default fields
and the parameters clients commonly set.

A failed check is `degraded` instead of `fail` when the model's backend (for a group: any
member's backend) was found unreachable by the connectivity step, unless `strict`. Checks of
the gateway itself (readiness, auth, models, version) always fail.

The master key goes only into Authorization headers: it is never stored in a record, and every
detail text is scrubbed of it before it is recorded, in case an error message echoes it.
"""

from __future__ import annotations

import time
from typing import Any

import httpx

from hxgw.catalogue import Catalogue
from hxgw.validation_calls import (  # noqa: F401 - callers import them from here
    EMBED_BATCH,
    EMBED_INPUT,
    GATEWAY_TIMEOUT,
    MAX_TOKENS,
    READY_ATTEMPT_TIMEOUT,
    READY_INTERVAL,
    READY_TIMEOUT,
)
from hxgw.validation_client_checks import ClientChecks
from hxgw.validation_gateway_checks import GatewayChecks
from hxgw.validation_judges import (  # noqa: F401 - callers and tests import them from here
    EXPECTED,
    PROMPT,
    StreamResult,
    assemble_sse,
    classify,
    describe_error,
    error_message,
    judge_chat,
    judge_embeddings,
    judge_models,
    judge_stream,
    members_of,
    quoted,
    unreachable_behind,
)
from hxgw.validation_model_checks import ModelChecks
from hxgw.validation_report import (  # noqa: F401
    DEGRADED,
    DETAIL_MAX,
    FAIL,
    FAILURES_IN_MESSAGE,
    PASS,
    CheckResult,
    Report,
    ValidationFailed,
    format_table,
    now_iso,
    shorten,
)


class Validator(GatewayChecks, ModelChecks, ClientChecks):
    """Runs every check against one gateway. Build it, call run(), get a Report."""

    def run(self) -> Report:
        started_at, started = now_iso(), time.perf_counter()
        # trust_env=False: talk to the gateway directly, never through a proxy from the environment.
        self._client = httpx.Client(base_url=self.url, transport=self._transport, trust_env=False)
        try:
            if self.check_readiness():
                self.check_auth()
                self.check_open_routes()
                self.check_models()
                for name in self.catalogue.model_names():
                    if self._mode(name) == "embedding":
                        self.check_embeddings(name, self._dims(name), self._timeout(name))
                for name in self.catalogue.model_names():
                    if self._mode(name) == "chat":
                        self.check_chat(name, self._timeout(name))
                        self.check_tools(name, self._timeout(name))
                streamed = self.stream_model()
                if streamed:
                    self.check_stream(streamed, self._timeout(streamed))
                self.check_clients()
                self.check_version()
        finally:
            self._client.close()
        return Report(
            gateway=self.gateway,
            url=self.url,
            litellm_version=self.version,
            started=started_at,
            finished=now_iso(),
            duration_s=round(time.perf_counter() - started, 3),
            strict=self.strict,
            unreachable_backends=dict(self.unreachable),
            checks=list(self.checks),
        )

    def stream_model(self) -> str | None:
        """The chat model for the stream check: the first on a reachable backend, else the first."""
        chat = [m for m in self.catalogue.models if m.mode == "chat"]
        reachable = [m for m in chat if m.backend not in self.unreachable]
        chosen = (reachable or chat or [None])[0]
        return chosen.name if chosen else None


def validate(gateway: str, url: str, catalogue: Catalogue, master_key: str, **options: Any) -> Report:
    """Run every check against one gateway and return its Report (see Validator for options)."""
    return Validator(gateway, url, catalogue, master_key, **options).run()
