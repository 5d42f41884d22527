"""The clients' keys, kept on the control machine only: `make client-key NAME=app`
(`python -m hxops.client_keys app`) makes the client's key once and prints it for the operator to
hand over; run again, it prints the same key. The gateways get only each key's sha256.

Why sha256 and not a password hash (bcrypt, scrypt): a key is 32 random bytes (256 bits) from
`secrets`, so nobody can guess one from its hash, fast or slow; a slow hash only protects
low-entropy secrets people choose, and would cost every request its time.

Store: one file per client, `~/.config/hx-gateway/client-keys/<name>.keys` (directory 700, files
600; HX_SECRETS_DIR moves the root, HX_CLIENT_KEYS_DIR the directory itself), one key a line:
`<key>`, or `<key> until=<ISO time>` for a key that stops then (the old key of a rotation).
Revoking one key is removing its line, then `make rollout`; revoking the client is removing it
from group data `clients`, then `make rollout`.

Rotation: `make client-key NAME=app ROTATE=1 [OLD_UNTIL=2026-12-31T12:00:00+00:00]` adds a new key
and gives the current one an end (default 24 h from now); after `make rollout` both work until
then, so the client switches to the new key without a failed request.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import os
import secrets
import sys
from pathlib import Path

from hxgw.catalogue_entries import NAME_RE
from hxgw.clients import expiry_time

KEY_PREFIX = "sk-hx-"
DEFAULT_OVERLAP = dt.timedelta(hours=24)


def store_dir() -> Path:
    """Beside the control machine's other secrets (the same root as i22-key's
    hxops/secret_store.py: HX_SECRETS_DIR, default ~/.config/hx-gateway)."""
    explicit = os.environ.get("HX_CLIENT_KEYS_DIR")
    if explicit:
        return Path(explicit).expanduser()
    return Path(os.environ.get("HX_SECRETS_DIR") or "~/.config/hx-gateway").expanduser() / "client-keys"


def key_file(name: str) -> Path:
    if not NAME_RE.fullmatch(name):
        raise ValueError(f"{name!r} is not a client name (letters, digits, '.', '_', ':' or '-')")
    return store_dir() / f"{name}.keys"


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def read_keys(name: str) -> list[tuple[str, str | None]]:
    """(key, until or None) for each line of the client's file; [] when it has none."""
    path = key_file(name)
    if not path.exists():
        return []
    keys = []
    for line in path.read_text().splitlines():
        parts = line.split()
        if not parts or parts[0].startswith("#"):
            continue
        until = next((p.removeprefix("until=") for p in parts[1:] if p.startswith("until=")), None)
        keys.append((parts[0], until))
    return keys


def hashes(names) -> dict[str, list[tuple[str, str | None]]]:
    """Per client name: (sha256 of each key, until) — what the gateways may hold."""
    return {name: [(digest(key), until) for key, until in read_keys(name)] for name in names}


def _write(name: str, keys: list[tuple[str, str | None]]) -> None:
    path = key_file(name)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    new = path.with_suffix(".new")
    fd = os.open(new, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.writelines(f"{key} until={until}\n" if until else f"{key}\n" for key, until in keys)
    os.replace(new, path)


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def ensure_key(name: str) -> str:
    """The client's current key (the newest line without an end), made the first time."""
    keys = read_keys(name)
    current = [key for key, until in keys if until is None]
    if current:
        return current[-1]
    key = new_key()
    _write(name, [*keys, (key, None)])
    return key


def rotate(name: str, old_until: dt.datetime) -> str:
    """A new key; every key without an end so far ends at `old_until`."""
    end = old_until.astimezone(dt.UTC).isoformat(timespec="seconds")
    keys = [(key, until or end) for key, until in read_keys(name)]
    key = new_key()
    _write(name, [*keys, (key, None)])
    return key


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="make client-key", description=__doc__.split("\n\n")[0])
    parser.add_argument("name")
    parser.add_argument(
        "--rotate", action="store_true", help="add a new key; the current one ends at --old-until"
    )
    parser.add_argument("--old-until", help="when the old key stops (ISO time with zone; default: in 24 h)")
    args = parser.parse_args(argv)
    try:
        key_file(args.name)
        if args.rotate:
            until = (
                expiry_time(args.old_until) if args.old_until else dt.datetime.now(dt.UTC) + DEFAULT_OVERLAP
            )
            key = rotate(args.name, until)
        else:
            key = ensure_key(args.name)
    except ValueError as error:
        print(f"client-key: {error}", file=sys.stderr)
        return 2
    print(key)
    print(
        f"client-key: {args.name}'s key is above (kept in {key_file(args.name)}); hand it over, then "
        "`make rollout` (or a deploy) so the gateways know it.",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
