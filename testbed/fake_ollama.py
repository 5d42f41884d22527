"""Fake Ollama server for testing the LiteLLM proxy without GPUs (Python 3.11 stdlib only).

It speaks the subset of the real Ollama HTTP API that LiteLLM uses: /api/chat, /api/generate
(both stream NDJSON unless "stream": false, as Ollama does), /api/embed, /api/embeddings,
/api/tags, /api/show, /api/ps, /api/version, and GET/HEAD /.

    python3 testbed/fake_ollama.py --host 198.18.0.29 --port 11434 --name llm-01 \
        --models llama3.2:3b,qwen3:1.7b,mistral-small3.2:latest,mxbai-embed-large
Prints "fake-ollama NAME listening on http://HOST:PORT" on stdout once bound (--port 0
picks a free port). Other flags: --latency-ms, --error-rate, --wrong-models a,b, --quiet.

Answers are deterministic. If the last user message (or the prompt) contains
"Return exactly the text: X", the answer is X (rest of that line, stripped); otherwise it is
"[<model>@<name>] echo: <first 60 chars of input>", so load-balancing tests can see which
backend answered. options.num_predict > 0 truncates the answer to num_predict*4 characters
(done_reason "length"). Models whose name starts with "qwen3" also return message.thinking
in chat unless the request says "think": false. Embeddings are sha256-derived, L2-normalised
and stable per (model, text): mxbai-embed-large 1024, nomic-embed-text 768, all-minilm 384
dimensions (recognised as embedding models automatically); "--models name=embed:DIM" declares
another; an embed request to a chat model returns 4096-dim vectors, as real Ollama also answers.

Model names follow Ollama's tag rule: "phi3" and "phi3:latest" are the same model.

Fault knobs (CLI flags at start, or at run time via POST /_fault, which real Ollama lacks):
  latency_ms    sleep this long before answering chat/generate/embed/embeddings (not tags,
                show, version or /, so health probes stay fast).
  error_rate    fraction (0..1) of those model requests answered 500 {"error":"injected fault"}.
                Deterministic, not random: request n (counted from the last knob change) fails
                iff floor(n*rate) > floor((n-1)*rate), e.g. 0.5 fails every 2nd, 1.0 all.
  wrong_models  list of models that answer "WRONG-ANSWER" in chat and generate.
  reset         true: back to no faults (applied before the other keys of the same body).
POST /_fault changes only the keys given and answers the resulting knobs, 400 on a bad
key or value. GET /_fault returns the knobs; GET /_stats returns request counts per path, model and status
(admin paths are not counted); DELETE /_stats zeroes them.

SIGTERM exits 0 at once. One log line per request goes to stderr (flushed) unless --quiet.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import re
import signal
import socketserver
import struct
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

OLLAMA_VERSION = "0.9.0"
MODIFIED_AT = "2025-06-01T12:00:00.000000000Z"
# base name -> (dimensions, family, parameter size) of the well-known embedding models
KNOWN_EMBED = {
    "mxbai-embed-large": (1024, "bert", "335M"),
    "nomic-embed-text": (768, "nomic-bert", "137M"),
    "all-minilm": (384, "bert", "23M"),
}
CHAT_EMBED_DIM = 4096
NO_FAULTS = {"latency_ms": 0, "error_rate": 0.0, "wrong_models": []}
FAULT_CHECKS = {
    "latency_ms": (lambda v: type(v) is int and v >= 0, "an integer >= 0"),
    "error_rate": (lambda v: type(v) in (int, float) and 0 <= v <= 1, "a number in 0..1"),
    "wrong_models": (lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
                     "a list of model names"),
}  # fmt: skip
EXACT_RE = re.compile(r"Return exactly the text:[ \t]*([^\r\n]*)")


class HTTPError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def norm(name: str) -> str:
    """Ollama's tag rule: a name without a tag means ':latest' (a registry port is no tag)."""
    name = name.strip()
    return name if ":" in name.rsplit("/", 1)[-1] else name + ":latest"


def make_model(spec: str) -> dict:
    """'name' or 'name=embed[:DIM]' -> the record behind tags, show and the endpoints."""
    name, _, kind = spec.partition("=")
    name = norm(name)
    base = name.rsplit(":", 1)[0].rsplit("/", 1)[-1]
    known = KNOWN_EMBED.get(base)
    dim = known[0] if known else 0
    if kind.startswith("embed"):
        dim = int(kind.partition(":")[2] or dim or 768)
    hit = re.search(r"(\d+(?:\.\d+)?)([bm])\b", name.lower())  # "3b" in "llama3.2:3b"
    psize = known[2] if known else (hit.group(1) + hit.group(2).upper() if hit else "7B")
    params = int(float(psize[:-1]) * (1e9 if psize.endswith("B") else 1e6))
    family = known[1] if known else (re.match(r"[a-z]*", base).group() or "llama")
    details = {"parent_model": "", "format": "gguf", "family": family, "families": [family],
               "parameter_size": psize, "quantization_level": "F16" if dim else "Q4_K_M"}  # fmt: skip
    size = int(params * (2 if dim else 0.6))  # F16 is 2 bytes per parameter, Q4_K_M about 0.6
    return {"name": name, "base": base, "dim": dim, "params": params, "size": size,
            "digest": hashlib.sha256(name.encode()).hexdigest(), "details": details}  # fmt: skip


def vector(model: str, text: str, dim: int) -> list[float]:
    """sha256 in counter mode -> floats in [-1, 1], L2-normalised; stable per (model, text)."""
    seed = hashlib.sha256(f"{model}\0{text}".encode()).digest()
    blocks = (hashlib.sha256(seed + i.to_bytes(4, "big")).digest() for i in range(dim // 8 + 1))
    raw = b"".join(blocks)
    vals = [u / 2147483647.5 - 1.0 for u in struct.unpack(f">{dim}I", raw[: dim * 4])]
    length = math.sqrt(sum(v * v for v in vals)) or 1.0
    return [round(v / length, 7) for v in vals]


def text_of(content) -> str:
    """Message content is a string for Ollama, but tolerate OpenAI-style lists of parts."""
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return content if isinstance(content, str) else ""


def chunks(text: str) -> list[str]:
    return re.findall(r"\s*\S+\s*", text) or ([text] if text else [])


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def tokens(text: str) -> int:
    return max(1, len(text) // 4)


class State:
    """Models, fault knobs and counters shared by all handler threads."""

    def __init__(self, args: argparse.Namespace):
        self.name, self.quiet = args.name, args.quiet
        self.models = {m["name"]: m for m in map(make_model, filter(None, args.models.split(",")))}
        self.lock = threading.Lock()
        self.stats = {"paths": Counter(), "models": Counter(), "statuses": Counter()}
        self.faults, self.fault_n = dict(NO_FAULTS), 0
        wrong = [w for w in args.wrong_models.split(",") if w]
        self.set_faults({"latency_ms": args.latency_ms, "error_rate": args.error_rate})
        self.set_faults({"wrong_models": wrong})

    def set_faults(self, req) -> dict:
        if not isinstance(req, dict) or set(req) - {*NO_FAULTS, "reset"}:
            raise HTTPError(400, "knobs are latency_ms, error_rate, wrong_models, reset")
        new = dict(NO_FAULTS) if req.get("reset") else dict(self.faults)
        for key, (valid, what) in FAULT_CHECKS.items():
            if key in req:
                if not valid(req[key]):
                    raise HTTPError(400, f"{key} must be {what}")
                new[key] = req[key]
        new["error_rate"] = float(new["error_rate"])
        new["wrong_models"] = sorted({norm(x) for x in new["wrong_models"]})
        with self.lock:
            self.faults, self.fault_n = new, 0  # restart the error counter: predictable tests
            return dict(new)

    def should_fail(self) -> bool:
        with self.lock:
            self.fault_n += 1
            n, rate = self.fault_n, self.faults["error_rate"]
        return math.floor(n * rate + 1e-9) > math.floor((n - 1) * rate + 1e-9)

    def count(self, path: str, model: str | None, status: int) -> None:
        with self.lock:
            self.stats["paths"][path] += 1
            self.stats["statuses"][str(status)] += 1
            if model:
                self.stats["models"][norm(model)] += 1


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
            route = ROUTES.get(("GET" if self.command == "HEAD" else self.command, path))
            if route is None:
                self.send(404, b"404 page not found", "text/plain")
            else:
                route(self)
        except HTTPError as e:
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
            raise HTTPError(400, "missing request body")
        try:
            body = json.loads(self.body)
        except ValueError as e:
            raise HTTPError(400, f"invalid JSON: {e}") from None
        if not isinstance(body, dict):
            raise HTTPError(400, "request body must be a JSON object")
        return body

    def lookup(self, body: dict) -> dict:
        self.model = body.get("model") or body.get("name")
        if not self.model or not isinstance(self.model, str):
            raise HTTPError(400, "model is required")
        m = self.st.models.get(norm(self.model))
        if m is None:
            raise HTTPError(404, f"model '{self.model}' not found")
        return m

    def model_request(self) -> tuple[dict, dict]:
        """Common start of the inference endpoints: parse, then the latency and error knobs."""
        body = self.json_body()
        self.model = body.get("model") if isinstance(body.get("model"), str) else None
        faults = self.st.faults
        if faults["latency_ms"]:
            time.sleep(faults["latency_ms"] / 1000)
        if self.st.should_fail():
            raise HTTPError(500, "injected fault")
        return body, self.lookup(body)

    def answer(self, m: dict, text: str, body: dict) -> tuple[str, str]:
        if m["name"] in self.st.faults["wrong_models"]:
            ans = "WRONG-ANSWER"
        elif hit := EXACT_RE.search(text):
            ans = hit.group(1).strip()
        else:
            ans = f"[{self.model}@{self.st.name}] echo: {' '.join(text.split())[:60]}"
        limit = int((body.get("options") or {}).get("num_predict") or 0) * 4
        return (ans[:limit], "length") if 0 < limit < len(ans) else (ans, "stop")

    def completion(self, body: dict, chat: bool, ans: str, reason: str, plen: int, think: str):
        def part(content: str, thinking: str = "") -> dict:
            if not chat:
                return {"response": content}
            msg = {"role": "assistant", "content": content}
            return {"message": {**msg, "thinking": thinking} if thinking else msg}

        n = tokens(ans)  # fake timings: 0.1 ms per prompt token, 10 ms per generated token
        counts = {"total_duration": 1_000_000 + plen * 100_000 + n * 10_000_000,
                  "load_duration": 1_000_000, "prompt_eval_count": plen,
                  "prompt_eval_duration": plen * 100_000, "eval_count": n,
                  "eval_duration": n * 10_000_000}  # fmt: skip
        final = {"done": True, "done_reason": reason, **counts}
        if body.get("stream", True) is False:  # Ollama streams unless told not to
            self.send_json(200, {"model": self.model, "created_at": now(), **part(ans, think), **final})
            return
        self.status = 200
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        parts = [part("", t) for t in chunks(think)] + [part(c) for c in chunks(ans)]
        for p in parts:
            self.write_line({"model": self.model, "created_at": now(), **p, "done": False})
        self.write_line({"model": self.model, "created_at": now(), **part(""), **final})
        self.wfile.write(b"0\r\n\r\n")

    # --- routes -----------------------------------------------------------------------------
    def api_chat(self) -> None:
        body, m = self.model_request()
        if m["dim"]:
            raise HTTPError(400, f'"{self.model}" does not support chat')
        msgs = [x for x in body.get("messages") or [] if isinstance(x, dict)]
        users = [text_of(x.get("content")) for x in msgs if x.get("role") == "user"]
        ans, reason = self.answer(m, users[-1] if users else "", body)
        think = ""
        if m["base"].startswith("qwen3") and body.get("think") is not False:
            think = "The user wants a short, direct reply. I will answer without extra words."
        plen = sum(tokens(text_of(x.get("content"))) for x in msgs)
        self.completion(body, True, ans, reason, plen, think)

    def api_generate(self) -> None:
        body, m = self.model_request()
        if m["dim"]:
            raise HTTPError(400, f'"{self.model}" does not support generate')
        prompt = body.get("prompt") if isinstance(body.get("prompt"), str) else ""
        ans, reason = self.answer(m, prompt, body)
        self.completion(body, False, ans, reason, tokens(prompt), "")

    def api_embed(self) -> None:
        body, m = self.model_request()
        inp = body.get("input", [])
        texts = [inp] if isinstance(inp, str) else inp
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            raise HTTPError(400, "invalid input type")
        dim = m["dim"] or CHAT_EMBED_DIM
        vecs = [vector(m["name"], t, dim) for t in texts]
        count = sum(tokens(t) for t in texts)
        self.send_json(200, {"model": self.model, "embeddings": vecs, "load_duration": 1_000_000,
                             "total_duration": 1_000_000 + count * 100_000,
                             "prompt_eval_count": count})  # fmt: skip

    def api_embeddings(self) -> None:  # legacy single-prompt endpoint
        body, m = self.model_request()
        prompt = body.get("prompt") if isinstance(body.get("prompt"), str) else ""
        vec = vector(m["name"], prompt, m["dim"] or CHAT_EMBED_DIM) if prompt else []
        self.send_json(200, {"embedding": vec})

    def api_tags(self) -> None:
        models = [
            {"name": m["name"], "model": m["name"], "modified_at": MODIFIED_AT, "size": m["size"],
             "digest": m["digest"], "details": m["details"]}
            for m in self.st.models.values()
        ]  # fmt: skip
        self.send_json(200, {"models": models})

    def api_show(self) -> None:
        m = self.lookup(self.json_body())
        fam, dim = m["details"]["family"], m["dim"]
        caps = ["embedding"] if dim else ["completion"]
        if m["base"].startswith("qwen3"):
            caps.append("thinking")
        info = {
            "general.architecture": fam,
            "general.basename": m["base"],
            "general.parameter_count": m["params"],
            f"{fam}.context_length": 512 if dim else 8192,  # LiteLLM reads *.context_length
            f"{fam}.embedding_length": dim or CHAT_EMBED_DIM,
        }
        modelfile = f"# Modelfile generated by fake_ollama\nFROM {m['name']}\n"
        params = "" if dim else "temperature 0.7\nnum_ctx 8192"
        self.send_json(200, {"license": "", "modelfile": modelfile, "parameters": params,
                             "template": "{{ .Prompt }}", "details": m["details"],
                             "model_info": info, "capabilities": caps,
                             "modified_at": MODIFIED_AT})  # fmt: skip

    def admin_fault(self) -> None:
        if self.command == "POST":
            self.send_json(200, self.st.set_faults(self.json_body()))
        else:
            self.send_json(200, dict(self.st.faults))

    def admin_stats(self) -> None:
        with self.st.lock:
            if self.command == "DELETE":
                for c in self.st.stats.values():
                    c.clear()
            s = {k: dict(v) for k, v in self.st.stats.items()}
        self.send_json(200, {"name": self.st.name, "total": sum(s["paths"].values()), **s})


ROUTES = {
    ("GET", "/"): lambda h: h.send(200, b"Ollama is running", "text/plain"),
    ("GET", "/api/version"): lambda h: h.send_json(200, {"version": OLLAMA_VERSION}),
    ("GET", "/api/ps"): lambda h: h.send_json(200, {"models": []}),
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
    p.add_argument("--models", default="llama3.2:3b", help="comma list; NAME or NAME=embed:DIM")
    p.add_argument("--latency-ms", type=int, default=0)
    p.add_argument("--error-rate", type=float, default=0.0)
    p.add_argument("--wrong-models", default="", help="comma list of models answering wrong")
    p.add_argument("--quiet", action="store_true", help="no per-request log lines")
    args = p.parse_args(argv)
    # The test harness kills and restarts backends: exit at once and with status 0.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        Handler.st = State(args)
    except HTTPError as e:
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
