"""The one host of an optional role group (`caches`, `monitoring`) and its checked settings."""

from __future__ import annotations

from collections.abc import Callable

from pyinfra.api.exceptions import DeployError

from hxgw.errors import ConfigError


def only_host(
    inventory, group: str, one_because: str, what: str, parse: Callable
) -> tuple[str, object] | None:
    """(host name, parse(its data)) of the group's one host, None without the group; DeployError
    naming the fix for two hosts or bad data. `one_because` ends the two-hosts message."""
    hosts = list(inventory.get_group(group, default=[]))
    if not hosts:
        return None
    if len(hosts) > 1:
        raise DeployError(
            f"the `{group}` group has {len(hosts)} hosts ({', '.join(h.name for h in hosts)}); {one_because}"
        )
    try:
        return hosts[0].name, parse(hosts[0].data)
    except ConfigError as error:
        raise DeployError(
            f"{hosts[0].name}: the {what}'s data has {len(error.problems)} problem(s); nothing was "
            "changed on any host:\n  - " + "\n  - ".join(error.problems)
        ) from None
