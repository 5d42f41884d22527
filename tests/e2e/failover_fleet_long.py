"""Issue 22, beyond `make test` (`make test-long`): on the failover fleet (3 gateways x 2 workers on
hx-cache's Redis, behind hx-lb), a client key's rotation under traffic and its revocation.

Out of `make test` for its time: a rollout of 2-worker gateways and the leak checks (81 s, 89 s
teardown).
"""

from __future__ import annotations

from tests.e2e.fleet_clients import (  # noqa: F401 - collected here, on this module's own fleet
    test_a_key_rotation_under_traffic_fails_no_request_and_revocation_is_one_line,
)
from tests.e2e.test_failover_fleet import fleet_on_redis  # noqa: F401 - the module's fleet fixture
