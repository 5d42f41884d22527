"""One master key per fleet: which key every gateway of the `gateways` group gets.

Decided once per pyinfra run, at plan time, before any host changes (hxops.plan.gateway_plan):

| MASTER_KEY | the gateways hold          | kept on the control machine | the fleet's key                 |
| ---------- | -------------------------- | --------------------------- | ------------------------------- |
| given      | anything                   | anything                    | MASTER_KEY (kept once deployed) |
| -          | no key                     | none                        | generated, kept                 |
| -          | no key                     | K                           | K                               |
| -          | one key K (some or all)    | none, or K                  | K (read from a gateway, kept)   |
| -          | one key K                  | another                     | K, with a warning (kept)        |
| -          | two keys or more           | anything                    | refused: who holds which        |

Keys are compared by their sha256 only: each gateway reports the sha256 of its key
(MasterKeyFingerprint), the value never leaves the host through a command. A key taken from a
gateway is read over SFTP into memory (hxops.validation_op.read_master_key). The kept key is in
the fleet's root-only secret store (hxops.secret_store, named by `fleet_name`).

The gateways asked are this run's; the whole `gateways` group (also hosts outside --limit) only
when this run's gateways cannot confirm the kept key: nothing kept yet, or a gateway of the run
holding another one. A gateway that cannot be reached then is named and left out.
"""

from __future__ import annotations

import hashlib
import io
import re
import shlex
from dataclasses import dataclass, field

from pyinfra import host, logger
from pyinfra.api import FactBase, FunctionCommand, operation
from pyinfra.api.exceptions import DeployError

from hxgw.secrets import generate_master_key
from hxops import secret_store
from hxops.security import KEY_VARIABLE

KEPT_NAME = "master-key"
NO_KEY = hashlib.sha256(b"").hexdigest()  # an env file without the key's line


def fingerprint(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def short(digest: str) -> str:
    """What messages show of a key: the first 12 hex digits of its sha256."""
    return digest[:12]


class MasterKeyFingerprint(FactBase):
    """The sha256 of the master key in the gateway's env file, or None when it holds none."""

    def command(self, env_file: str) -> str:
        env = shlex.quote(env_file)
        return (
            f"if test -s {env}; then sed -n 's/^{KEY_VARIABLE}=//p' {env} | head -n 1 | tr -d '\\r\\n' "
            "| sha256sum; else echo none; fi"
        )

    def process(self, output):
        word = output[0].split()[0] if output and output[0].split() else ""
        return word if re.fullmatch(r"[0-9a-f]{64}", word) and word != NO_KEY else None


class MasterKeyUnavailable(Exception):
    """The key could not be read; the message says where and why, never a part of the key."""


def read_master_key(env_file: str, target=None) -> str:
    """LITELLM_MASTER_KEY from a gateway's env file (`target`, default the host being planned),
    downloaded into memory over SFTP: never through a command or a fact pyinfra could print."""
    target = target if target is not None else host
    buffer = io.BytesIO()
    try:
        target.get_file(env_file, buffer)
    except Exception as error:  # noqa: BLE001 - SFTP/SSH errors of any kind; keep only the reason
        reason = getattr(error, "strerror", None) or type(error).__name__
        raise MasterKeyUnavailable(
            f"{target.name}: cannot read the master key from {env_file}: {reason} "
            "(set MASTER_KEY on the control machine, or deploy first)"
        ) from None
    for line in buffer.getvalue().decode("utf-8", "replace").splitlines():
        name, sep, value = line.strip().partition("=")
        if sep and name.strip() == KEY_VARIABLE:
            value = value.strip().strip("'\"")
            if value:
                return value
    raise MasterKeyUnavailable(f"{target.name}: {env_file} has no {KEY_VARIABLE}=... line")


class SplitFleet(Exception):
    """The gateways hold different keys: the message names who holds which and the fix."""


@dataclass(frozen=True)
class Decision:
    source: str  # "given", "kept", "gateways" or "generated"
    digest: str | None = None  # the chosen key's sha256 (None: generated)
    read_from: str | None = None  # "gateways": a host that holds it
    warnings: list[str] = field(default_factory=list)


def decide(held: dict[str, str | None], kept: str | None, given: str | None) -> Decision:
    """The decision table above on sha256 digests: `held` host -> its key's (None: no key),
    `kept` the control machine's, `given` MASTER_KEY's. Raises SplitFleet."""
    if given is not None:
        return Decision("given", given)
    holders: dict[str, list[str]] = {}
    for name, digest in held.items():
        if digest is not None:
            holders.setdefault(digest, []).append(name)
    if len(holders) > 1:
        raise SplitFleet(split_message(held, kept))
    if not holders:
        return Decision("kept", kept) if kept else Decision("generated")
    ((digest, names),) = holders.items()
    if digest == kept:
        return Decision("kept", kept)
    warnings = []
    if kept is not None:
        warnings.append(
            f"the control machine kept key {short(kept)} for this fleet, but every gateway asked holds "
            f"{short(digest)} ({', '.join(names)}): the fleet keeps the gateways' key, and so does the "
            "control machine from now on"
        )
    return Decision("gateways", digest, names[0], warnings)


def split_message(held: dict[str, str | None], kept: str | None) -> str:
    by_key: dict[str | None, list[str]] = {}
    for name, digest in held.items():
        by_key.setdefault(digest, []).append(name)
    ordered = sorted(by_key.items(), key=lambda item: str(item[0]))
    lines = [f"key {short(d)}: {', '.join(names)}" for d, names in ordered if d]
    if None in by_key:
        lines.append(f"no key yet: {', '.join(by_key[None])}")
    if kept:
        lines.append(f"the control machine keeps key {short(kept)} (`make master-key` prints it)")
    return (
        "the gateways of this fleet hold different master keys (sha256 shown), so clients of one key get "
        "401 from the other gateways (through a load balancer, on some of their requests):\n    "
        + "\n    ".join(lines)
        + "\n  Choose the key the fleet keeps and deploy it to every gateway at once: "
        "MASTER_KEY=<that key> pyinfra INVENTORY deploy.py (a gateway's key is the "
        f"{KEY_VARIABLE}= line of config/api-gateway/gateway.env under its base_dir). Clients of the "
        "other keys must then switch to it."
    )


def _fleet_hosts(host) -> list:
    """The `gateways` group (the host alone when it is not in one), as pyinfra's Host objects."""
    gateways = list(host.inventory.get_group("gateways", default=[]))
    names = [h.name for h in gateways]
    return gateways if host.name in names else [host.inventory.get_host(host.name)]


def _held(hosts, settings_of) -> tuple[dict[str, str | None], list[str]]:
    """Each reachable host's key digest; and the hosts that could not be asked."""
    held, unasked = {}, []
    for gateway in hosts:
        settings = settings_of(gateway)
        if settings is None:  # data its own plan refuses
            unasked.append(gateway.name)
            continue
        try:
            held[gateway.name] = gateway.get_fact(MasterKeyFingerprint, env_file=settings.env_file)
        except Exception:  # noqa: BLE001 - unreachable (connect error) or failing: named, left out
            unasked.append(gateway.name)
    return held, unasked


# One decision per run (pyinfra plans every host in one process): keyed by the run's State, which
# is held too, so its id cannot be reused by another run's in the same process.
_DECIDED: dict[int, tuple[object, str]] = {}


def fleet_master_key(host, fleet_name: str, given: str | None, settings_of, generate: bool = True) -> str:
    """The key every gateway of `host`'s fleet gets in this run (see the module's table).

    `settings_of(host)`: a gateway's Settings (None if its data is bad); `generate` False (the
    validation alone): no key anywhere is an error, not a new key. Raises DeployError (nothing
    changed anywhere) for a split fleet, or a `gateways` group whose hosts name different fleets."""
    state = host.state
    if id(state) in _DECIDED:
        return _DECIDED[id(state)][1]
    fleet = _fleet_hosts(host)
    names = {h.name: s.fleet_name for h in fleet if (s := settings_of(h)) is not None}
    if len(set(names.values())) > 1:
        listed = ", ".join(f"{name}: {value!r}" for name, value in sorted(names.items()))
        raise DeployError(
            f"the `gateways` group is one fleet behind one front door, but its hosts name different "
            f"fleet_name values ({listed}); set one fleet_name for the group. Nothing was changed on "
            "any host."
        )
    if given is not None:
        _DECIDED[id(state)] = (state, given)
        return given
    path = secret_store.secret_path(fleet_name, KEPT_NAME)
    kept_key = secret_store.read(path)
    kept = fingerprint(kept_key) if kept_key else None
    in_run = [h for h in fleet if state.is_host_in_limit(h) and h not in state.failed_hosts]
    held, unasked = _held(in_run, settings_of)
    if kept is None or any(d not in (None, kept) for d in held.values()):
        others, unasked_others = _held([h for h in fleet if h not in in_run], settings_of)
        held, unasked = {**held, **others}, unasked + unasked_others
    for name in unasked:
        logger.warning(f"fleet {fleet_name!r}: could not ask {name} which master key it holds; left out")
    try:
        decision = decide(held, kept, None)
    except SplitFleet as error:
        raise DeployError(f"fleet {fleet_name!r}: {error}\n  Nothing was changed on any host.") from None
    for warning in decision.warnings:
        logger.warning(f"fleet {fleet_name!r}: {warning}")
    if decision.source == "kept":
        key = kept_key
    elif decision.source == "generated":
        if not generate:
            raise DeployError(
                f"fleet {fleet_name!r}: no gateway holds a master key and the control machine keeps none "
                f"({path}): deploy first, or set MASTER_KEY"
            )
        key = secret_store.create(path, generate_master_key())
        logger.info(f"fleet {fleet_name!r}: generated the fleet's master key, kept in {path} (not shown)")
    else:
        source = host.inventory.get_host(decision.read_from)
        try:
            key = read_master_key(settings_of(source).env_file, source)
        except MasterKeyUnavailable as error:
            raise DeployError(f"fleet {fleet_name!r}: {error}") from None
        if fingerprint(key) != decision.digest:
            raise DeployError(f"fleet {fleet_name!r}: the key on {decision.read_from} changed while read")
        secret_store.replace(path, key)
        logger.info(
            f"fleet {fleet_name!r}: every gateway gets the key {decision.read_from} holds "
            f"({short(decision.digest)}), now kept in {path} (not shown)"
        )
    _DECIDED[id(state)] = (state, key)
    return key


def _keep(fleet_name: str, key_source) -> None:
    secret_store.replace(secret_store.secret_path(fleet_name, KEPT_NAME), key_source())


@operation()
def keep_given_key(fleet_name: str, key_source):
    """
    After a deploy of MASTER_KEY passed: the control machine keeps it as the fleet's key, in
    place of the one kept before (at run time only, so --dry keeps nothing).

    `key_source` returns the key: it is never an operation or command argument pyinfra prints.
    """
    path = secret_store.secret_path(fleet_name, KEPT_NAME)
    if secret_store.read(path) == key_source():
        host.noop(f"the control machine keeps this fleet's key in {path}")
        return
    yield FunctionCommand(_keep, (fleet_name, key_source), {})
