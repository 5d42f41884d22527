"""The production fleet as data: every gateway deploy reads these names (host data may override).

Adding a model is one entry in `models`; adding a backend is one entry in `backends`; a
load-balanced name is one entry in `model_groups`. `hxgw.catalogue` and `hxgw.settings` check all of
it before any host is touched.
"""

# Only what this fleet chooses: every other setting takes the default declared once in
# hxgw/settings.py (service_user, listen_host, port, num_workers, install_source, installer, the
# strict switches, ...; the README lists them all). Host data in inventory.py may override any.

# Layout on the gateway host (the seed's path).
base_dir = "/opt/HX-Infrastructure-/api-gateway"

# Exact pin; it must match the lock (requirements/gateway.lock), which the venv installs from.
# `make lock LITELLM=X.Y.Z` sets both.
litellm_version = "1.108.7"

backends = [
    {"name": "llm-01", "url": "http://192.168.10.29:11434"},
    {"name": "llm-02", "url": "http://192.168.10.28:11434"},
    {"name": "orc", "url": "http://192.168.10.31:11434"},
]

models = [
    # Embeddings (orc)
    {
        "name": "emb-premium",
        "backend": "orc",
        "model": "mxbai-embed-large",
        "mode": "embedding",
        "dims": 1024,
    },
    {"name": "emb-perf", "backend": "orc", "model": "nomic-embed-text", "mode": "embedding", "dims": 768},
    {"name": "emb-light", "backend": "orc", "model": "all-minilm", "mode": "embedding", "dims": 384},
    # Chat models declare what Ollama's library lists for them (ollama.com/library/<model>; `ollama
    # show <model>` prints the same) beside plain chat: "tools", "thinking", "vision", and their
    # context length. The deploy renders them as LiteLLM model_info flags (hxgw/capabilities.py).
    # Chat (llm-01)
    {
        "name": "llm01-llama3.2-3b",
        "backend": "llm-01",
        "model": "llama3.2:3b",
        "mode": "chat",
        "capabilities": ["tools"],
        "context_length": 131072,
    },
    {
        "name": "llm01-qwen3-1.7b",
        "backend": "llm-01",
        "model": "qwen3:1.7b",
        "mode": "chat",
        "capabilities": ["tools", "thinking"],
        "context_length": 40960,
    },
    {
        "name": "llm01-mistral-small3.2",
        "backend": "llm-01",
        "model": "mistral-small3.2:latest",
        "mode": "chat",
        "timeout": 300,
        "capabilities": ["tools", "vision"],
        "context_length": 131072,
    },
    # Chat (llm-02): neither model was trained for tool use, so Ollama answers 400 to a request
    # with tools for them ("... does not support tools").
    {
        "name": "llm02-phi3",
        "backend": "llm-02",
        "model": "phi3:latest",
        "mode": "chat",
        "capabilities": [],
        "context_length": 4096,
    },
    {
        "name": "llm02-gemma2-2b",
        "backend": "llm-02",
        "model": "gemma2:2b",
        "mode": "chat",
        "capabilities": [],
        "context_length": 8192,
    },
]

# A group is one model name load-balanced over its members (in LiteLLM: model_list entries that
# share a model_name). The seed's `router_settings.model_group` does not exist in LiteLLM.
# hx-chat is plain chat: only llm01-llama3.2-3b of its members has tools, and LiteLLM neither
# routes by capability nor retries a 400 on another member, so a tools request would fail on 2
# of 3 members at random. The deploy drops `tools` on every member of such a group: hx-chat
# answers every request in plain text. Tool-calling clients use hx-chat-fast (qwen3, which also
# thinks), hx-chat-premium (mistral-small3.2) or llm01-llama3.2-3b, whose members all have tools.
model_groups = [
    {"name": "hx-chat", "members": ["llm01-llama3.2-3b", "llm02-phi3", "llm02-gemma2-2b"]},
    {"name": "hx-chat-fast", "members": ["llm01-qwen3-1.7b"]},
    {"name": "hx-chat-premium", "members": ["llm01-mistral-small3.2"]},
]

# LiteLLM router settings: Router() arguments the proxy passes on, checked by hxgw.router_settings
# (unknown keys, wrong types, fallbacks naming no model are refused: LiteLLM would drop or die on them).
# Together they make a group serve while any member lives, and a name whose only backend is down
# fail fast (README "Failover" has the measured figures; read in LiteLLM 1.108.7's router.py).
router_settings = {
    # Random member per request, weighted equally: the only strategy weighted failover works with.
    "routing_strategy": "simple-shuffle",
    # A failed member is not picked again for that request: the router re-picks among the group's
    # other members (those not cooling down), up to max_fallbacks (5) times. Without it a retry
    # picks at random again, and a group with 2 of 3 members on a dead backend failed 1 in 3.
    "enable_weighted_failover": True,
    # Retries on the SAME pick, per error: none for an unreachable backend (DefaultRetries covers
    # APIConnectionError: the failover moves on at once, and a name with one member fails in well
    # under 2 s instead of backing off 1.5 s) nor for a timeout (the member is slow: waiting for
    # it again doubles the wait); 2 for a backend's 500/503 or 429, which are often momentary;
    # none for the client's own mistakes (400, 401, 404), which no retry changes.
    "retry_policy": {
        "DefaultRetries": 0,
        "TimeoutErrorRetries": 0,
        "InternalServerErrorRetries": 2,
        "ServiceUnavailableErrorRetries": 2,
        "RateLimitErrorRetries": 2,
        "BadRequestErrorRetries": 0,
        "AuthenticationErrorRetries": 0,
        "NotFoundErrorRetries": 0,
        "ContentPolicyViolationErrorRetries": 0,
    },
    # Used when a retry_policy entry does not decide (e.g. LiteLLM's own router errors).
    "num_retries": 2,
    # The whole request's ceiling; each model's own `timeout` (60 s chat, 30 s embeddings by
    # default) is what moves a request off a slow member.
    "timeout": 300,
    # A member that failed more than 3 times (per cooldown window, counted fleet-wide with Redis)
    # rests for 30 s: no request is sent to it, then it gets traffic again by itself. Refused
    # connections count too (hx_auth.py Failover: LiteLLM skips them, BerriAI/litellm#27362).
    # allowed_fails alone does nothing here: 3 is LiteLLM's default, and the router counts a
    # value equal to its default as unset (cooldown_handlers.py _is_allowed_fails_set_on_router)
    # and falls back to "more than half of this minute's requests failed, with at least 5".
    # allowed_fails_policy makes the count per error the rule.
    "allowed_fails": 3,
    "allowed_fails_policy": {
        "InternalServerErrorAllowedFails": 3,
        "ServiceUnavailableErrorAllowedFails": 3,
        "BadGatewayErrorAllowedFails": 3,
        "TimeoutErrorAllowedFails": 3,
        "RateLimitErrorAllowedFails": 3,
    },
    "cooldown_time": 30,
}

# Applications with keys of their own (README "Clients and keys"): which models each may call and
# its limits, counted fleet-wide (in Redis with a `caches` group). `make client-key NAME=app` makes
# the key on the control machine; the gateways hold only its sha256. For example:
#   {"name": "app", "models": ["hx-chat", "emb-perf"], "rpm": 60, "max_parallel": 4, "expires": "2027-06-30"}
clients = []
