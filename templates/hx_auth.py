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

At load it also takes down LiteLLM's admin UI static files unless the deploy turned the UI on:
DISABLE_ADMIN_UI only gates the login routes, the /ui files stay served to anyone (the fix,
BerriAI/litellm PR #26725, was closed unmerged). Likewise the Swagger assets when the docs are off.
"""

import hmac
import os

from litellm.proxy._types import ProxyErrorTypes, ProxyException

UI_PREFIXES = ("/ui", "/_next", "/litellm-asset-prefix")
DOCS_PREFIXES = ("/swagger",)
REFUSED = "Invalid or missing API key. Pass the gateway key as 'Authorization: Bearer <key>'."


def _is_master_key(api_key) -> bool:
    expected = os.environ.get("LITELLM_MASTER_KEY", "")
    if not expected or not isinstance(api_key, str) or not api_key:
        return False
    return hmac.compare_digest(api_key.encode(), expected.encode())


async def user_api_key_auth(request, api_key):
    """LiteLLM calls this first on every authenticated route, with the key it took from the
    request's headers (the Bearer prefix already removed)."""
    if _is_master_key(api_key):
        # A str hands the key back to LiteLLM's own checks (litellm_enterprise's custom-auth
        # wrapper, part of litellm[proxy]): the master key is then handled as it always was.
        return api_key
    raise ProxyException(
        message=REFUSED,
        type=ProxyErrorTypes.auth_error,
        param=None,
        code=401,
    )


def _switched_off(variable: str) -> bool:
    return os.environ.get(variable, "").lower() == "true"


def _remove_static_files() -> None:
    prefixes = UI_PREFIXES * _switched_off("DISABLE_ADMIN_UI") + DOCS_PREFIXES * _switched_off("NO_DOCS")
    if not prefixes:
        return
    from litellm.proxy.proxy_server import app

    app.router.routes[:] = [
        route for route in app.router.routes if not getattr(route, "path", "").startswith(prefixes)
    ]


_remove_static_files()
