"""Validation checks of each model through the gateway: embeddings, chat, tools, one stream.

Requests are shaped as the official SDKs send them (hxgw.client_checks).
"""

from __future__ import annotations

import time

import httpx

from hxgw import client_checks
from hxgw.capability_checks import (
    THINKING_MAX_TOKENS,
    TOOL,
    TOOL_PROMPT,
    judge_plain_answer,
    judge_tool_call,
    tools_plan,
)
from hxgw.validation_calls import EMBED_BATCH, EMBED_INPUT, Answer, GatewayCalls
from hxgw.validation_judges import (
    assemble_sse,
    describe_error,
    judge_chat,
    judge_embeddings,
    judge_stream,
    members_of,
)


class ModelChecks(GatewayCalls):
    def check_embeddings(self, name: str, dims: int | None, timeout: float) -> None:
        for check, inputs in (("embed", EMBED_INPUT), ("embed-batch", list(EMBED_BATCH))):
            count = 1 if isinstance(inputs, str) else len(inputs)
            # As the openai SDK sends it: encoding_format always (base64 unless the caller asks for
            # float); a base64 answer is decoded, so a shrunk vector fails (BerriAI/litellm#42426).
            body = {"model": name, "input": inputs, "encoding_format": client_checks.ENCODING[check]}
            answer = self._call("POST", "/v1/embeddings", key=self._key, timeout=timeout, body=body)
            if answer.status is None or not 200 <= answer.status < 300:
                self._record(name, check, False, self._failed_answer(check.replace("-", " "), answer), answer)
                continue
            ok, detail = judge_embeddings(client_checks.decoded_embeddings(answer.json()), count, dims)
            self._record(name, check, ok, detail, answer)

    def check_tools(self, name: str, timeout: float) -> None:
        """A tools request: tools-capable models answer with a tool call; a group whose members
        differ answers in plain text on every member (one request per member: any refusal shows)."""
        models = members_of(self.catalogue, name)
        plan = tools_plan(models)
        if plan is None:
            return
        body = {**self._chat_body(name), "tools": [TOOL], "max_tokens": THINKING_MAX_TOKENS}
        body["messages"] = [{"role": "user", "content": TOOL_PROMPT}]
        for _ in range(1 if plan == "call" else len(models)):
            answer = self._call("POST", "/v1/chat/completions", key=self._key, timeout=timeout, body=body)
            if answer.status is None or not 200 <= answer.status < 300:
                self._record(name, "tools", False, self._failed_answer("tools request", answer), answer)
                return
            ok, detail = (judge_tool_call if plan == "call" else judge_plain_answer)(answer.json())
            if not ok:
                self._record(name, "tools", False, detail + self._served_by(answer), answer)
                return
        self._record(name, "tools", True, detail + self._served_by(answer), answer)

    def check_chat(self, name: str, timeout: float) -> None:
        answer = self._call(
            "POST", "/v1/chat/completions", key=self._key, timeout=timeout, body=self._chat_body(name)
        )
        if answer.status is None or not 200 <= answer.status < 300:
            self._record(name, "chat", False, self._failed_answer("chat", answer), answer)
            return
        ok, detail = judge_chat(answer.json())
        self._record(name, "chat", ok, detail + self._served_by(answer), answer)

    def check_stream(self, name: str, timeout: float) -> None:
        started = time.perf_counter()
        headers = self._headers(self._key)
        try:
            with self._client.stream(
                "POST",
                "/v1/chat/completions",
                headers=headers,
                json=self._chat_body(name, True),
                timeout=timeout,
            ) as response:
                self._note_version(response)
                if not 200 <= response.status_code < 300:
                    response.read()
                    answer = Answer(response, (time.perf_counter() - started) * 1000, None)
                    self._record(name, "stream", False, self._failed_answer("stream", answer), answer)
                    return
                result = assemble_sse(response.iter_lines())
                answer = Answer(response, (time.perf_counter() - started) * 1000, None)
        except httpx.HTTPError as error:
            answer = Answer(None, (time.perf_counter() - started) * 1000, describe_error(error, timeout))
            self._record(name, "stream", False, f"stream failed: {answer.error}", answer)
            return
        ok, detail = judge_stream(result)
        self._record(name, "stream", ok, detail + self._served_by(answer), answer)
