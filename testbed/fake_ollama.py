"""Fake Ollama server for testing the LiteLLM proxy without GPUs (Python 3.11 stdlib only).

It speaks the part of Ollama's HTTP API that LiteLLM and clients use, as strictly as Ollama
0.12.10 (testbed/README.md tabulates each behaviour with the Ollama source it follows):
/api/chat and /api/generate (NDJSON streams unless "stream": false), /api/embed (with
`dimensions`), /api/embeddings, /api/tags, /api/show, /api/ps, /api/version, GET/HEAD /.

    python3 testbed/fake_ollama.py --host 198.18.0.29 --port 11434 --name llm-01 \
        --models llama3.2:3b=tools,qwen3:1.7b=tools+thinking,mxbai-embed-large
A model is NAME (completion only), NAME=tools+thinking+vision, or NAME=embed[:DIM]
(mxbai-embed-large, nomic-embed-text and all-minilm are embedding models by name). Prints
"fake-ollama NAME listening on http://HOST:PORT" once bound (--port 0 picks a free port).

Answers are deterministic: "Return exactly the text: X" in the last user message (or the prompt)
answers X, anything else "[<model>@<name>] echo: <first 60 chars>". Thinking models think about
60 tokens first, which count against num_predict and in eval_count; --version picks where the
thinking goes (0.12.4+: message.thinking by default; older: inline <think> in content).
With `tools`, a tools-capable model calls the first tool (arguments from its schema); others
answer 400 "<full name> does not support tools". `stop`, `format`, option types, keep_alive,
per-model parallelism and the queue behave as in Ollama (ollama_contract.py, ollama_load.py,
ollama_request.py).

Knobs (CLI flags at start, or at run time via POST /_fault, which real Ollama lacks):
  latency_ms, error_rate (request n fails 500 iff floor(n*rate) > floor((n-1)*rate), counted
  from the last change), wrong_models (answer "WRONG-ANSWER"), stream_error_after (N: a stream
  sends N chunks then an {"error"} line, as Ollama reports a failure mid-stream; -1 off),
  no_usage (the done chunk carries no counts); and Ollama's own settings num_parallel (1),
  max_queue (512), keep_alive_s (300), load_ms (cold-load time, 0). reset: faults off, settings
  back to the start values. GET /_fault shows them; GET /_stats counts requests per path, model
  and status once answered, `received` per path as they arrive, the scheduler's running,
  waiting and pending requests; DELETE /_stats zeroes counts.
SIGTERM exits 0 at once. One log line per request goes to stderr unless --quiet.
"""

from __future__ import annotations

import argparse
import json
import select
import signal
import socket
import socketserver
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script or imported
import ollama_contract as oc  # noqa: E402
import ollama_request as orq  # noqa: E402
from ollama_load import Knobs, Scheduler  # noqa: E402


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class State:
    """Models, knobs, the scheduler and counters shared by all handler threads."""

    def __init__(self, args: argparse.Namespace):
        self.name, self.quiet = args.name, args.quiet
        self.ollama = oc.Behaviour(args.version)
        self.models = {m["name"]: m for m in map(oc.make_model, filter(None, args.models.split(",")))}
        start = {k: getattr(args, k) for k in ("latency_ms", "error_rate", "num_parallel", "max_queue",
                                               "keep_alive_s", "load_ms", "stream_error_after")}  # fmt: skip
        start["wrong_models"] = [w for w in args.wrong_models.split(",") if w]
        self.knobs = Knobs(start)
        self.sched = Scheduler(self.knobs)
        self.lock = threading.Lock()
        # paths/models/statuses count answered requests; received counts them as they arrive
        self.stats = {"paths": Counter(), "models": Counter(), "statuses": Counter(), "received": Counter()}

    def count(self, path: str, model: str | None, status: int) -> None:
        with self.lock:
            self.stats["paths"][path] += 1
            self.stats["statuses"][str(status)] += 1
            if model:
                self.stats["models"][oc.norm(model)] += 1


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as httpx/aiohttp in LiteLLM expect
    disable_nagle_algorithm = True  # else headers+body in 2 writes cost a 40 ms delayed ACK
    st: State

    def version_string(self) -> str:
        return "fake-ollama"

    def log_message(self, *args) -> None:
        pass  # replaced by the one-line-per-request log in dispatch()

    def do_GET(self) -> None:
        self.dispatch()

    do_HEAD = do_POST = do_DELETE = do_GET

    def dispatch(self) -> None:
        t0, self.model, self.status = time.monotonic(), None, 0
        path = self.path.split("?", 1)[0]
        try:
            # Always consume the body so the next request on this connection parses cleanly.
            length = int(self.headers.get("Content-Length") or 0)
            self.body = self.rfile.read(length) if length else b""
            if path in MODEL_PATHS:
                with self.st.lock:
                    self.st.stats["received"][path] += 1
            route = ROUTES.get(("GET" if self.command == "HEAD" else self.command, path))
            if route is None:
                self.send(404, b"404 page not found", "text/plain")
            else:
                route(self)
        except oc.OllamaError as e:
            self.send_json(e.status, {"error": str(e)})
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as e:  # noqa: BLE001 - odd input or a bug: answer, don't hang up
            self.send_json(500, {"error": f"{type(e).__name__}: {e}"})
        finally:
            if not path.startswith("/_"):
                self.st.count(path, self.model, self.status)
            if not self.st.quiet:
                ms = (time.monotonic() - t0) * 1000
                sys.stderr.write(
                    f"{now()} {self.st.name} {self.command} {path} model={self.model or '-'}"
                    f" status={self.status} {ms:.1f}ms\n"
                )
                sys.stderr.flush()

    # --- response helpers -------------------------------------------------------------------
    def send(self, status: int, data: bytes, ctype: str) -> None:
        self.status = status
        self.send_response(status)
        self.send_header("Content-Type", f"{ctype}; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def send_json(self, status: int, obj) -> None:
        self.send(status, json.dumps(obj, separators=(",", ":")).encode(), "application/json")

    def write_line(self, obj) -> None:
        """One NDJSON line as one HTTP chunk, flushed so clients see tokens as they come."""
        data = json.dumps(obj, separators=(",", ":")).encode() + b"\n"
        self.wfile.write(b"%X\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def json_body(self) -> dict:
        if not self.body:
            raise oc.OllamaError(400, "missing request body")
        try:
            body = json.loads(self.body)
        except ValueError as e:
            raise oc.OllamaError(400, f"invalid JSON: {e}") from None
        if not isinstance(body, dict):
            raise oc.OllamaError(400, "request body must be a JSON object")
        return body

    def lookup(self, body: dict) -> dict:
        self.model = body.get("model") or body.get("name")
        if not self.model or not isinstance(self.model, str):
            raise oc.OllamaError(400, "model is required")
        m = self.st.models.get(oc.norm(self.model))
        if m is None:
            raise oc.OllamaError(404, f"model '{self.model}' not found")
        return {**m, "requested": self.model}

    def model_request(self, struct: str | None = None) -> tuple[dict, dict, float | None, object]:
        """Common start of the inference endpoints: parse, the error knob, the JSON binding's
        refusals (keep_alive, think: ollama_request.py), then find the model. Returns the body,
        the model, keep_alive in seconds (None: unset) and the bound think (chat, generate)."""
        body = self.json_body()
        self.model = body.get("model") if isinstance(body.get("model"), str) else None
        if self.st.knobs.should_fail():
            raise oc.OllamaError(500, "injected fault")
        keep = orq.keep_alive_seconds(body.get("keep_alive"))
        think = orq.think_value(body.get("think"), self.st.ollama.release, struct) if struct else None
        return body, self.lookup(body), keep, think

    def scheduled(self, body: dict, m: dict, keep: float | None):
        """server/routes.go scheduleRunner: options checked, then a slot (maybe a cold load)."""
        oc.check_options(body.get("options"))
        return self.st.sched.slot(m["name"], keep, self.client_gone)

    def unloaded(self, m: dict, head: dict) -> None:
        """routes.go: nothing to run and keep_alive 0 expires the runner, done_reason "unload"."""
        self.st.sched.unload(m["name"])
        self.send_json(200, {"model": self.model, "created_at": now(), **head, "done": True,
                             "done_reason": "unload"})  # fmt: skip

    def generated(self, m: dict, text: str, body: dict, mode: str) -> tuple[str, str, str, int]:
        """(thinking, content, done_reason, eval_count) for one answer."""
        opts = body.get("options") or {}
        if m["name"] in self.st.knobs["wrong_models"]:
            ans = "WRONG-ANSWER"
        else:
            echo = f"[{self.model}@{self.st.name}] echo: {' '.join(text.split())[:60]}"
            ans = oc.exact_answer(text) or echo
        content = oc.formatted(ans, body.get("format"))
        thinking = oc.THINKING if mode == "field" else ""
        if mode == "inline":
            content = f"<think>\n{oc.THINKING}\n</think>\n\n{content}"
        content, stopped = oc.apply_stop(content, opts.get("stop"))
        thinking, content, reason, n = oc.budget(thinking, content, opts.get("num_predict"))
        return thinking, content, "stop" if stopped else reason, n

    def completion(self, body: dict, chat: bool, gen: tuple, plen: int, load_ns: int, calls=None):
        thinking, content, reason, n = gen

        def part(text: str, think: str = "", tools=None) -> dict:
            if not chat:
                return {"response": text, **({"thinking": think} if think else {})}
            msg = {"role": "assistant", "content": text}
            return {"message": {**msg, **({"thinking": think} if think else {}),
                                **({"tool_calls": tools} if tools else {})}}  # fmt: skip

        counts = {"total_duration": load_ns + plen * 100_000 + n * 10_000_000,
                  "load_duration": load_ns, "prompt_eval_count": plen,
                  "prompt_eval_duration": plen * 100_000, "eval_count": n,
                  "eval_duration": n * 10_000_000}  # fmt: skip
        if self.st.knobs["no_usage"]:
            counts = {"total_duration": counts["total_duration"], "load_duration": load_ns}
        final = {"done": True, "done_reason": reason, **counts}
        head = {"model": self.model, "created_at": now()}
        fail_after = self.st.knobs["stream_error_after"]
        if body.get("stream", True) is False:  # Ollama streams unless told not to
            if fail_after >= 0:
                raise oc.OllamaError(500, oc.MID_STREAM_ERROR)
            self.send_json(200, {**head, **part(content, thinking, calls), **final})
            return
        parts = [part("", t) for t in oc.chunks(thinking)] + [part(c) for c in oc.chunks(content)]
        parts += [part("", tools=calls)] if calls else []
        if fail_after == 0:
            raise oc.OllamaError(500, oc.MID_STREAM_ERROR)  # routes.go streamResponse: nothing written yet
        self.status = 200
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for i, p in enumerate(parts):
            if i == fail_after:
                self.write_line({"error": oc.MID_STREAM_ERROR})  # HTTP 200 already sent
                break
            self.write_line({"model": self.model, "created_at": now(), **p, "done": False})
        else:
            self.write_line({"model": self.model, "created_at": now(), **part(""), **final})
        self.wfile.write(b"0\r\n\r\n")

    def client_gone(self) -> bool:
        """The client closed its connection (a timeout on its side): EOF is readable."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            return bool(readable) and self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def pace(self) -> None:
        """latency_ms: time spent generating, holding the model's slot. Ollama stops a generation
        whose client has gone (the request's context is cancelled: llm/server.go Completion
        returns, the slot is released); so does the fake, answering 499 as handleScheduleError
        does for context.Canceled (server/routes.go line 2302)."""
        end = time.monotonic() + self.st.knobs["latency_ms"] / 1000
        while (left := end - time.monotonic()) > 0:
            if self.client_gone():
                raise oc.OllamaError(499, "request canceled")
            time.sleep(min(left, 0.05))

    # --- routes -----------------------------------------------------------------------------
    def api_chat(self) -> None:
        """server/routes.go ChatHandler (v0.12.10 lines 1825-2053), in its order: binding,
        model, unload, thinking, scheduleRunner (chat, tools, options), load, think level."""
        body, m, keep, think = self.model_request("ChatRequest")
        msgs = [x for x in body.get("messages") or [] if isinstance(x, dict)]
        empty = {"message": {"role": "assistant", "content": ""}}
        if not msgs and keep == 0:
            return self.unloaded(m, empty)
        mode = self.st.ollama.thinking_mode(think, m)
        if m["dim"]:  # scheduleRunner's errCapabilityCompletion
            raise oc.OllamaError(400, f'"{self.model}" does not support chat')
        tools = body.get("tools") or []
        if tools and "tools" not in m["caps"]:  # scheduleRunner -> CheckCapabilities
            raise oc.OllamaError(400, f"{oc.full_name(m['name'])} does not support tools")
        oc.check_format(body.get("format"))
        with self.scheduled(body, m, keep) as load_ns:
            if not msgs:  # routes.go: no messages only loads the model
                self.send_json(200, {"model": self.model, "created_at": now(), **empty,
                                     "done": True, "done_reason": "load"})  # fmt: skip
                return
            orq.think_string_refused(think, m, self.st.ollama.release)
            self.pace()
            users = [oc.text_of(x.get("content")) for x in msgs if x.get("role") == "user"]
            last = users[-1] if users else ""
            gen = self.generated(m, last, body, mode)
            calls = None
            if tools and msgs[-1].get("role") == "user":  # the model calls a tool instead of answering
                calls = oc.tool_calls(tools, last, self.st.ollama.tool_call_ids, oc.tool_call_id)
                gen = (gen[0], "", "stop", oc.tokens(gen[0]) + oc.tokens(json.dumps(calls)))
            plen = sum(oc.tokens(oc.text_of(x.get("content"))) or 1 for x in msgs)
            self.completion(body, True, gen, plen, load_ns, calls)

    def api_generate(self) -> None:
        """server/routes.go GenerateHandler (v0.12.10 lines 175-380): binding, model, unload,
        think level, thinking, scheduleRunner, an empty prompt only loads."""
        body, m, keep, think = self.model_request("GenerateRequest")
        prompt = body.get("prompt") if isinstance(body.get("prompt"), str) else ""
        if not prompt and keep == 0:
            return self.unloaded(m, {"response": ""})
        orq.think_string_refused(think, m, self.st.ollama.release)
        mode = self.st.ollama.thinking_mode(think, m)
        if m["dim"]:
            raise oc.OllamaError(400, f'"{self.model}" does not support generate')
        oc.check_format(body.get("format"))
        with self.scheduled(body, m, keep) as load_ns:
            if not prompt:
                self.send_json(200, {"model": self.model, "created_at": now(), "response": "",
                                     "done": True, "done_reason": "load"})  # fmt: skip
                return
            self.pace()
            gen = self.generated(m, prompt, body, mode)
            self.completion(body, False, gen, oc.tokens(prompt) or 1, load_ns)

    def api_embed(self) -> None:
        """server/routes.go EmbedHandler (v0.12.10 lines 620-680): the input's type before the
        model; an empty input ("" or []) is scheduled (loads the model) and answers no vectors."""
        body = self.json_body()
        inp = body.get("input")
        texts = ([inp] if inp else []) if isinstance(inp, str) else [] if inp is None else inp
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            raise oc.OllamaError(400, "invalid input type")
        dims = body.get("dimensions", 0)
        if type(dims) is not int:
            raise oc.OllamaError(400, "json: cannot unmarshal dimensions into Go struct field of type int")
        _, m, keep, _ = self.model_request()
        with self.scheduled(body, m, keep) as load_ns:
            if not texts:
                self.send_json(200, {"model": self.model, "embeddings": []})
                return
            self.pace()
            vecs = [oc.vector(m["name"], t, m["dim"] or oc.CHAT_EMBED_DIM) for t in texts]
            if 0 < dims < len(vecs[0]):  # routes.go EmbedHandler: truncate, renormalise
                vecs = [oc.normalise(v[:dims]) for v in vecs]
            count = sum(oc.tokens(t) or 1 for t in texts)
            self.send_json(200, {"model": self.model, "embeddings": vecs, "load_duration": load_ns,
                                 "total_duration": load_ns + count * 100_000,
                                 "prompt_eval_count": count})  # fmt: skip

    def api_embeddings(self) -> None:  # legacy single-prompt endpoint
        body, m, keep, _ = self.model_request()
        prompt = body.get("prompt") if isinstance(body.get("prompt"), str) else ""
        with self.scheduled(body, m, keep):
            self.pace()
            vec = oc.vector(m["name"], prompt, m["dim"] or oc.CHAT_EMBED_DIM) if prompt else []
        self.send_json(200, {"embedding": vec})

    def api_tags(self) -> None:
        self.send_json(200, {"models": [oc.summary(m) for m in self.st.models.values()]})

    def api_ps(self) -> None:
        loaded = self.st.sched.loaded()
        models = []
        for name, left in loaded.items():
            m = self.st.models[name]
            expires = "2318-01-01T00:00:00Z" if left == float("inf") else datetime.fromtimestamp(
                time.time() + left, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")  # fmt: skip
            models.append({**oc.summary(m), "expires_at": expires, "size_vram": m["size"]})
        self.send_json(200, {"models": models})

    def api_show(self) -> None:
        self.send_json(200, oc.show(self.lookup(self.json_body()), self.st.ollama.think_field))

    def admin_fault(self) -> None:
        if self.command == "POST":
            self.send_json(200, self.st.knobs.update(self.json_body()))
        else:
            self.send_json(200, self.st.knobs.snapshot())

    def admin_stats(self) -> None:
        with self.st.lock:
            if self.command == "DELETE":
                for c in self.st.stats.values():
                    c.clear()
            s = {k: dict(v) for k, v in self.st.stats.items()}
        total = sum(s["paths"].values())
        self.send_json(200, {"name": self.st.name, "total": total, **s, **self.st.sched.snapshot()})


MODEL_PATHS = ("/api/chat", "/api/generate", "/api/embed", "/api/embeddings")
ROUTES = {
    ("GET", "/"): lambda h: h.send(200, b"Ollama is running", "text/plain"),
    ("GET", "/api/version"): lambda h: h.send_json(200, {"version": h.st.ollama.version}),
    ("GET", "/api/ps"): Handler.api_ps,
    ("GET", "/api/tags"): Handler.api_tags,
    ("POST", "/api/show"): Handler.api_show,
    ("POST", "/api/chat"): Handler.api_chat,
    ("POST", "/api/generate"): Handler.api_generate,
    ("POST", "/api/embed"): Handler.api_embed,
    ("POST", "/api/embeddings"): Handler.api_embeddings,
    ("GET", "/_fault"): Handler.admin_fault,
    ("POST", "/_fault"): Handler.admin_fault,
    ("GET", "/_stats"): Handler.admin_stats,
    ("DELETE", "/_stats"): Handler.admin_stats,
}


class Server(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's listen backlog of 5 overflowed under 16 concurrent keep-alive clients
    # (connections reset: httpx.ReadError); Go's net/http listens with the kernel's somaxconn.
    request_queue_size = 1024

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls getfqdn(), a reverse DNS lookup that can stall for
        # seconds in a network namespace without DNS; skip it to start fast.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Fake Ollama server for tests.")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=11434, help="0 picks a free port (printed)")
    p.add_argument("--name", default="fake-ollama", help="backend name, shown in logs/answers")
    p.add_argument("--models", default="llama3.2:3b=tools", help="comma list, see the docstring")
    p.add_argument("--version", default=oc.DEFAULT_VERSION, help="the Ollama release imitated")
    p.add_argument("--latency-ms", type=int, default=0)
    p.add_argument("--error-rate", type=float, default=0.0)
    p.add_argument("--wrong-models", default="", help="comma list of models answering wrong")
    p.add_argument("--stream-error-after", type=int, default=-1)
    p.add_argument("--num-parallel", type=int, default=1, help="OLLAMA_NUM_PARALLEL")
    p.add_argument("--max-queue", type=int, default=512, help="OLLAMA_MAX_QUEUE")
    p.add_argument("--keep-alive-s", type=float, default=300.0, help="OLLAMA_KEEP_ALIVE in seconds")
    p.add_argument("--load-ms", type=int, default=0, help="cold-load time of a model")
    p.add_argument("--quiet", action="store_true", help="no per-request log lines")
    args = p.parse_args(argv)
    # The test harness kills and restarts backends: exit at once and with status 0.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        Handler.st = State(args)
    except (oc.OllamaError, ValueError) as e:
        p.error(str(e))
    server = Server((args.host, args.port), Handler)
    host, port = server.server_address[:2]
    print(f"fake-ollama {args.name} listening on http://{host}:{port}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
