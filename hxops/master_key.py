"""`make master-key` (`python -m hxops.master_key [INVENTORY] [--from HOST | --fingerprints]`):
the fleet's master key, for the operator who asks for it. The only place it is ever printed.

Without options: the key the control machine keeps for the inventory's fleet (`fleet_name`,
hxops/secret_store.py), on stdout alone, so `OPENAI_API_KEY=$(make -s master-key)` works.
`--from HOST`: the key HOST holds (read over SFTP, for choosing between keys of a split fleet).
`--fingerprints`: no key at all, only the sha256 (first 12 hex digits) each gateway holds and
the kept one's, as the deploy's messages show them. The inventory defaults to the local fleet's.
"""

from __future__ import annotations

import argparse
import sys

from hxgw.settings import Settings
from hxops import fleet_key, secret_store
from hxops.gateway_locks import REPO

DEFAULT_INVENTORY = "testbed/inventory.py"


def _fleet_name(host) -> str:
    return host.data.get("fleet_name") or Settings.model_fields["fleet_name"].default


def _env_file(host) -> str:
    return Settings.model_construct(base_dir=str(host.data.get("base_dir"))).env_file


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make master-key", description=__doc__.splitlines()[0])
    parser.add_argument("inventory", nargs="?", default=DEFAULT_INVENTORY, help="pyinfra inventory")
    choice = parser.add_mutually_exclusive_group()
    choice.add_argument("--from", dest="source", metavar="HOST", help="print the key this gateway holds")
    choice.add_argument("--fingerprints", action="store_true", help="each gateway's key sha256, no key")
    args = parser.parse_args(argv)

    from pyinfra.api import Config, State
    from pyinfra.context import ctx_host, ctx_state
    from pyinfra_cli.inventory import make_inventory

    state = State()
    with ctx_state.use(state):
        inventory = make_inventory(args.inventory, cwd=str(REPO))
        state.init(inventory, Config())
        gateways = list(inventory.get_group("gateways", default=[]))
        if not gateways:
            print(f"master-key: {args.inventory} has no `gateways` group", file=sys.stderr)
            return 1
        fleet = _fleet_name(gateways[0])
        kept_path = secret_store.secret_path(fleet, fleet_key.KEPT_NAME)
        kept = secret_store.read(kept_path)
        if args.source or args.fingerprints:
            chosen = [h for h in gateways if h.name == args.source] if args.source else gateways
            if not chosen:
                print(f"master-key: no gateway {args.source!r} in {args.inventory}", file=sys.stderr)
                return 1
            failed = False
            for host in chosen:
                with ctx_host.use(host):
                    host.connect(raise_exceptions=False)
                    if not host.connected:
                        print(f"master-key: cannot connect to {host.name}", file=sys.stderr)
                        failed = True
                        continue
                    try:
                        key = fleet_key.read_master_key(_env_file(host), host)
                    except fleet_key.MasterKeyUnavailable as error:
                        key, failed = None, True
                        print(f"master-key: {error}", file=sys.stderr)
                    host.disconnect()
                if args.source and key:
                    print(key)
                elif key:
                    print(f"{host.name}  {fleet_key.short(fleet_key.fingerprint(key))}")
            if args.fingerprints:
                shown = fleet_key.short(fleet_key.fingerprint(kept)) if kept else "none"
                print(f"kept for fleet {fleet!r} ({kept_path})  {shown}")
            return 1 if failed else 0
    if not kept:
        print(
            f"master-key: the control machine keeps no key for fleet {fleet!r} ({kept_path}): "
            "deploy first (`pyinfra INVENTORY deploy.py` keeps the fleet's key there)",
            file=sys.stderr,
        )
        return 1
    print(kept)
    return 0


if __name__ == "__main__":
    sys.exit(main())
