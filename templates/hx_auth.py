"""The HX gateway's key check, loaded by LiteLLM (`general_settings.custom_auth:
hx_auth.user_api_key_auth`) from beside config.yaml. Managed by the HX gateway deploy.

Why it exists: without a database LiteLLM 1.108.7 answers a wrong key with HTTP 400
"No connected db." (BerriAI/litellm#12273, open), where OpenAI answers 401 and clients raise
AuthenticationError. Here every request that does not carry the master key gets 401 with
OpenAI's error shape, whatever is wrong with its Authorization header. The master key itself is
handed back to LiteLLM, whose own master-key path then runs exactly as without this hook.

The master key is read only from LITELLM_MASTER_KEY, which systemd sets from the unit's
EnvironmentFile; it is compared in constant time, and neither it nor the caller's key is ever
logged or put in an answer.

At load it puts a key gate in front of LiteLLM: LiteLLM 1.108.7 answers dozens of routes without
any key (OAuth and UI metadata under /.well-known, /public/*, /get/ui_theme_settings, ...; some
crash into a 500 with a traceback, e.g. /langfuse/...). The gate answers 401 to any HTTP request
without the master key, except OPEN_PATHS (the load balancer's probes) and, when the deploy turns
them on, the admin UI's and the API docs' routes. It also takes down the UI's static files unless
the deploy turned the UI on:
DISABLE_ADMIN_UI only gates the login routes, the /ui files stay served to anyone (the fix,
BerriAI/litellm PR #26725, was closed unmerged). Likewise the Swagger assets when the docs are off.

Client keys (README "Clients and keys"): clients.json beside this file holds, per client, the
sha256 of each key (never a key), its models, limits and expiry; it is re-read whenever it
changes, so a rollout that adds, rotates or revokes a key restarts nothing. A client key becomes
LiteLLM's `UserAPIKeyAuth` (the custom-auth contract, proxy/auth/user_api_key_auth.py
`_user_api_key_auth_builder`): `rpm_limit`, `tpm_limit`, `max_parallel_requests` are enforced by
LiteLLM's own limiter with no flag (proxy/hooks/parallel_request_limiter_v3.py, keyed by
`api_key`, counted in the coordination Redis when config.yaml names one), `expires` by
`enable_post_custom_auth_checks` (`_run_post_custom_auth_checks`), and `models` filters
/v1/models. The model allow-list is checked here with LiteLLM's own `can_key_call_model`
(proxy/auth/auth_checks.py) rather than through `custom_auth_run_common_checks`, whose refusal
is 403 `key_model_access_denied`: OpenAI answers a model the key cannot use with 404
`model_not_found` "The model `x` does not exist or you do not have access to it.", and clients
handle it as NotFoundError.
"""

import hashlib
import hmac
import json
import math
import os
import re

from litellm.integrations.custom_logger import CustomLogger
from litellm.proxy._types import ProxyErrorTypes, ProxyException

# What answers without a key: the load balancer's probes (README "Routes without a key").
OPEN_PATHS = ("/health/liveliness", "/health/liveness", "/health/readiness")
# Opened only with the admin_ui setting: the UI's files and the routes its login page calls.
UI_PREFIXES = ("/ui", "/_next", "/litellm-asset-prefix")
UI_PATHS = (
    "/.well-known/litellm-ui-config",
    "/login",
    "/v2/login",
    "/fallback/login",
    "/sso",
    "/get_logo_url",
)
UI_PATHS += ("/get_image", "/get_favicon", "/get/ui_theme_settings")
# Opened only with the api_docs setting.
DOCS_PREFIXES = ("/swagger",)
DOCS_PATHS = ("/", "/redoc", "/openapi.json", "/docs/oauth2-redirect")
# LiteLLM's Prometheus metrics (with a `monitoring` group): the metrics token or the master key.
METRICS_PATH = "/metrics"
# The headers LiteLLM takes a key from (OpenAI and most clients: Authorization: Bearer).
KEY_HEADERS = (b"authorization", b"api-key", b"x-api-key", b"x-goog-api-key", b"x-litellm-api-key")
REFUSED = "Invalid or missing API key. Pass the gateway key as 'Authorization: Bearer <key>'."
REFUSAL_BODY = json.dumps({"error": {"message": REFUSED, "type": "auth_error", "param": None, "code": "401"}})


# The routes a client key may call (OpenAI's API); anything else is the operator's.
CLIENT_ROUTES = {
    f"{prefix}/{route}"
    for prefix in ("", "/v1")
    for route in ("models", "chat/completions", "completions", "embeddings")
}
MODEL_ROUTES = CLIENT_ROUTES - {"/models", "/v1/models"}
# The deploy's validation speaks as a client with the master key and this header: the client's
# models and refusals, none of its limits (README "Clients and keys").
AS_CLIENT_HEADER = "x-hx-as-client"
VALIDATION_HEADER = "x-hx-validation"
CLIENTS_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "clients.json")
_clients = {"stamp": None, "by_digest": {}, "by_name": {}, "master_key_models": True}
NOT_FOR_CLIENTS = "This key may call only the OpenAI API routes (/v1/models, chat, completions, embeddings)."
OPERATOR_ONLY = (
    "The master key is the operator's; applications use a client key (ask the operator: make client-key)."
)


def _client_table() -> dict:
    """clients.json, read again when it changed (stat per request: a few microseconds). A file
    that cannot be read or parsed keeps the table read before (a half-written file, say)."""
    try:
        info = os.stat(CLIENTS_FILE)
    except OSError:
        return _clients
    stamp = (info.st_mtime_ns, info.st_size, info.st_ino)
    if stamp == _clients["stamp"]:
        return _clients
    try:
        with open(CLIENTS_FILE) as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return _clients
    by_digest = {}
    for client in data.get("clients", []):
        for key in client.get("keys", []):
            by_digest[key["sha256"]] = (client, key.get("expires"))
    _clients.update(
        stamp=stamp,
        by_digest=by_digest,
        by_name={c["name"]: c for c in data.get("clients", [])},
        master_key_models=data.get("master_key_models", True),
    )
    return _clients


def _client_of(api_key):
    """(client entry, this key's expiry) for a client key, else None."""
    if not isinstance(api_key, str) or not api_key:
        return None
    return _client_table()["by_digest"].get(hashlib.sha256(api_key.encode()).hexdigest())


def _is_master_key(api_key) -> bool:
    expected = os.environ.get("LITELLM_MASTER_KEY", "")
    if not expected or not isinstance(api_key, str) or not api_key:
        return False
    return hmac.compare_digest(api_key.encode(), expected.encode())


def _switched_off(variable: str) -> bool:
    return os.environ.get(variable, "").lower() == "true"


def _open_routes() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(exact paths, prefixes) that answer without a key."""
    paths, prefixes = OPEN_PATHS, ()
    if not _switched_off("DISABLE_ADMIN_UI"):
        paths, prefixes = paths + UI_PATHS, prefixes + UI_PREFIXES
    if not _switched_off("NO_DOCS"):
        paths, prefixes = paths + DOCS_PATHS, prefixes + DOCS_PREFIXES
    return paths, prefixes


def _carries(headers, is_it) -> bool:
    for name, value in headers:
        if name.lower() in KEY_HEADERS:
            text = value.decode("latin-1").strip()
            if text[:7].lower() == "bearer ":
                text = text[7:].strip()
            if is_it(text):
                return True
    return False


def _carries_master_key(headers) -> bool:
    return _carries(headers, _is_master_key)


def _carries_key(headers) -> bool:
    """The master key or a client's: what opens every route but /metrics."""
    return _carries(headers, lambda text: _is_master_key(text) or _client_of(text) is not None)


def _is_metrics_token(api_key) -> bool:
    """The monitoring host's scrape token (HX_METRICS_TOKEN, metrics.env): it opens /metrics only."""
    expected = os.environ.get("HX_METRICS_TOKEN", "")
    if not expected or not isinstance(api_key, str) or not api_key:
        return False
    return hmac.compare_digest(api_key.encode(), expected.encode())


def _is_metrics_path(path: str) -> bool:
    return path == METRICS_PATH or path.startswith(METRICS_PATH + "/")


class KeyGate:
    """ASGI wrapper around LiteLLM's whole middleware stack: 401 unless open or keyed (the master
    key or a client's)."""

    def __init__(self, app, paths: tuple[str, ...], prefixes: tuple[str, ...]) -> None:
        self.app, self.paths, self.prefixes = app, paths, prefixes

    def _open(self, path: str) -> bool:
        if path in self.paths or any(path == p or path.startswith(p + "/") for p in self.prefixes):
            return True
        return any(path.startswith(p + "/") for p in self.paths if p != "/")

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or self._open(scope["path"]):
            return await self.app(scope, receive, send)
        if _is_metrics_path(scope["path"]):
            # Every client's traffic is in the metrics: the master key or the scrape token, no client key.
            if _carries_master_key(scope["headers"]) or _carries(scope["headers"], _is_metrics_token):
                return await self.app(scope, receive, send)
        elif _carries_key(scope["headers"]):
            return await self.app(scope, receive, send)
        body = REFUSAL_BODY.encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        headers.append((b"www-authenticate", b"Bearer"))
        await send({"type": "http.response.start", "status": 401, "headers": headers})
        await send({"type": "http.response.body", "body": body})


async def user_api_key_auth(request, api_key):
    """LiteLLM calls this first on every authenticated route, with the key it took from the
    request's headers (the Bearer prefix already removed)."""
    path = request.url.path if request is not None else ""
    headers = request.headers if request is not None else {}
    if _is_master_key(api_key):
        as_client = headers.get(AS_CLIENT_HEADER)
        if as_client:
            client = _client_table()["by_name"].get(as_client)
            if client is None:
                _refuse(f"No client named {as_client!r} on this gateway.")
            return await _client_auth(request, client, None, limits=False)
        if (
            path in MODEL_ROUTES
            and not _client_table()["master_key_models"]
            and not headers.get(VALIDATION_HEADER)
        ):
            _refuse(OPERATOR_ONLY)
        # A str hands the key back to LiteLLM's own checks (litellm_enterprise's custom-auth
        # wrapper, part of litellm[proxy]): the master key is then handled as it always was.
        return api_key
    found = _client_of(api_key)
    if found is None:
        _refuse(REFUSED)
    if path not in CLIENT_ROUTES:
        _refuse(NOT_FOR_CLIENTS)
    return await _client_auth(request, *found, limits=True)


def _refuse(message: str):
    raise ProxyException(message=message, type=ProxyErrorTypes.auth_error, param=None, code=401)


class ModelNotFound(ProxyException):
    """OpenAI's answer for a model the key may not use: 404, code `model_not_found` (LiteLLM's
    ProxyException puts the status in `code`; OpenAI's body has the word)."""

    def __init__(self, model: str) -> None:
        message = f"The model `{model}` does not exist or you do not have access to it."
        super().__init__(message=message, type="invalid_request_error", param=None, code=404)

    def to_dict(self) -> dict:
        return {**super().to_dict(), "code": "model_not_found"}


async def _client_auth(request, client: dict, key_expires, limits: bool):
    """The client as LiteLLM's UserAPIKeyAuth. With `limits` False (the validation speaking as the
    client) its counters are not touched: another api_key and no limits."""
    from litellm.proxy._types import UserAPIKeyAuth
    from litellm.proxy.auth.auth_checks import can_key_call_model
    from litellm.proxy.auth.auth_utils import fallback_target_model_name, iter_request_fallback_targets
    from litellm.proxy.common_utils.http_parsing_utils import _read_request_body
    from litellm.proxy.proxy_server import llm_model_list, llm_router

    name = client["name"]
    auth = UserAPIKeyAuth(
        api_key=f"hx-client:{name}" if limits else f"hx-validation:{name}",
        key_alias=name,
        key_name=name,
        models=client.get("models") or [],
        rpm_limit=client.get("rpm") if limits else None,
        tpm_limit=client.get("tpm") if limits else None,
        max_parallel_requests=client.get("max_parallel") if limits else None,
        expires=key_expires,
    )
    if auth.models and request.url.path in MODEL_ROUTES:
        body = await _read_request_body(request)  # parsed once, cached on the request for LiteLLM
        body = body if isinstance(body, dict) else {}
        # The model and any fallbacks the request names, as LiteLLM's own key check reads them
        # (user_api_key_auth.py enforce_key_and_fallback_model_access).
        fallbacks = (fallback_target_model_name(t) for t in iter_request_fallback_targets(body))
        for model in dict.fromkeys([body.get("model"), *fallbacks]):
            if not isinstance(model, str):
                continue
            try:
                await can_key_call_model(
                    model=model, llm_model_list=llm_model_list, valid_token=auth, llm_router=llm_router
                )
            except ProxyException:
                raise ModelNotFound(model) from None
    return auth


class RequestFixes(CustomLogger):
    """Requests OpenAI takes, made ones Ollama takes (config.yaml: litellm_settings.callbacks).

    `stop` may be one string in OpenAI's API; Ollama's options take only a list (api/types.go
    Options.Stop []string) and answer a string with 500 'option "stop" must be of type array'.
    LiteLLM 1.108.7's ollama_chat passes `stop` on unchanged (llms/ollama/chat/transformation.py
    map_openai_params), and the 500 also counts towards cooling the deployment down."""

    async def async_pre_call_hook(self, user_api_key_dict, cache, data, call_type):
        if isinstance(data.get("stop"), str):
            data["stop"] = [data["stop"]]
        return data


request_fixes = RequestFixes()


def _router():
    from litellm.proxy import proxy_server

    return proxy_server.llm_router


def _retry_after(error) -> str:
    """Seconds until the router tries the backend again: the cooldown (left) or router's setting."""
    seconds = getattr(error, "cooldown_time", None) or getattr(_router(), "cooldown_time", None) or 5
    return str(max(1, math.ceil(seconds)))


def _backend_said(text: str) -> str:
    """Ollama's own error text, from the `{"error": "..."}` body LiteLLM quotes in its message."""
    found = re.search(r'\{"error":\s*("(?:[^"\\]|\\.)*")\}', text)
    if not found:
        return ""
    try:
        return str(json.loads(found.group(1)))[:300]
    except ValueError:
        return ""


class Failover(CustomLogger):
    """A group keeps serving while any member lives; a name with no live member fails fast and
    clearly (config.yaml: litellm_settings.callbacks; README "Failover").

    Cooldown on a refused connection: LiteLLM 1.108.7 never cools a deployment down for an
    APIConnectionError (router_utils/cooldown_handlers.py `_is_cooldown_required` skips any error
    whose text holds "APIConnectionError"; BerriAI/litellm#27362, closed without a merged fix:
    PRs #27423, #27610). So every request keeps trying a dead backend first. Here such a failure
    is counted with LiteLLM's own allowed_fails counter and, past allowed_fails, the deployment
    goes into LiteLLM's own cooldown cache (both in Redis when router_settings name one, so the
    whole fleet shares them). Single-deployment names are left as LiteLLM leaves them.

    The answer: after the router gave up, an unreachable, timed-out or failing backend reaches
    the client as LiteLLM's text (the backend's address, the HTTP library's internals) with 500.
    It is rewritten (the proxy takes an HTTPException from async_post_call_failure_hook:
    proxy/utils.py post_call_failure_hook) as OpenAI's error shape with 503 + Retry-After (no
    member reachable, or all cooling down) or 504 (timed out), naming only the model; a backend's
    own 500 becomes 502 with the backend's words only. What a backend answered itself otherwise (a
    4xx, Ollama's 503 "server busy") passes unchanged."""

    # LiteLLM's modules are imported when first needed, as the proxy loads this file early.
    async def async_log_failure_event(self, kwargs, response_obj, start_time, end_time):
        import litellm
        from litellm.router_utils.cooldown_handlers import should_cooldown_based_on_allowed_fails_policy

        error = kwargs.get("exception")
        deployment = ((kwargs.get("litellm_params") or {}).get("model_info") or {}).get("id")
        router = _router()
        if not isinstance(error, litellm.APIConnectionError) or not deployment or router is None:
            return
        group = router.get_model_group(id=deployment) or []
        if len(group) > 1 and should_cooldown_based_on_allowed_fails_policy(router, deployment, error):
            router.cooldown_cache.add_deployment_to_cooldown(
                model_id=deployment, original_exception=error, exception_status=503, cooldown_time=None
            )

    async def async_post_call_failure_hook(self, request_data, original_exception, user_api_key_dict, **_):
        import litellm
        from fastapi import HTTPException
        from litellm.types.router import RouterRateLimitError, RouterRateLimitErrorBasic

        error, model = original_exception, request_data.get("model") or "the requested model"
        if isinstance(error, (RouterRateLimitError, RouterRateLimitErrorBasic)):
            status, why = 503, f"every backend serving model '{model}' failed and is cooling down"
        elif isinstance(error, litellm.Timeout):
            status, why = 504, f"the backend serving model '{model}' did not answer in time"
        elif isinstance(error, litellm.APIConnectionError):
            status, why = 503, f"no backend serving model '{model}' can be reached"
        elif isinstance(error, litellm.InternalServerError):
            # The backend answered 500 itself (Ollama: a model that failed to load, say): 502, with
            # its own words but not LiteLLM's exception names and "model group" notes around them.
            said = _backend_said(str(getattr(error, "message", "") or error))
            status, why = 502, f"the backend serving model '{model}' failed" + (f" ({said})" if said else "")
        else:  # the backend's own answer (4xx, or Ollama's 503 "server busy") passes on
            return None
        headers = {"Retry-After": _retry_after(error)} if status == 503 else {}
        return HTTPException(status_code=status, detail=f"{why}; retry later", headers=headers)


failover = Failover()


def _install() -> None:
    """Runs when LiteLLM loads this module, during its start-up: Starlette has built the app's
    middleware stack by then (it runs the lifespan through it), so the gate wraps that stack."""
    from litellm.proxy.proxy_server import app

    closed = UI_PREFIXES * _switched_off("DISABLE_ADMIN_UI") + DOCS_PREFIXES * _switched_off("NO_DOCS")
    if closed:
        app.router.routes[:] = [r for r in app.router.routes if not getattr(r, "path", "").startswith(closed)]
    if app.middleware_stack is None:
        app.middleware_stack = app.build_middleware_stack()
    if not isinstance(app.middleware_stack, KeyGate):  # LiteLLM may load the config again
        app.middleware_stack = KeyGate(app.middleware_stack, *_open_routes())


_install()
