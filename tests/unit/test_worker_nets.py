"""Each pytest-xdist worker gets a fleet net of its own (testbed/worker_nets.py)."""

from __future__ import annotations

import pytest

from testbed.worker_nets import WorkerNetError, worker_net


def test_workers_default_to_nets_ten_apart_from_the_chosen_one():
    assert [worker_net(w, {"HX_TESTBED_NET": "4"}) for w in ("gw0", "gw1", "gw2")] == [4, 14, 24]
    assert [worker_net(w, {}) for w in ("gw0", "gw1")] == [0, 10]


def test_listed_nets_are_taken_in_worker_order():
    env = {"HX_TESTBED_NET": "0", "HX_TESTBED_NETS": "4, 5"}
    assert [worker_net(w, env) for w in ("gw0", "gw1")] == [4, 5]


@pytest.mark.parametrize(
    ("worker", "env", "message"),
    [
        ("gw2", {"HX_TESTBED_NETS": "4,5"}, "names 2 net(s), none for worker gw2: name one net per worker"),
        ("gw0", {"HX_TESTBED_NETS": "4;5"}, "not a comma-separated list of nets: write it as 4,5"),
        ("gw1", {"HX_TESTBED_NET": "250"}, "would use fleet net 260: nets are 0..255"),
        ("master", {}, "'master' is not a pytest-xdist worker id"),
    ],
)
def test_a_worker_without_a_usable_net_is_refused_naming_the_fix(worker, env, message):
    with pytest.raises(WorkerNetError) as refused:
        worker_net(worker, env)
    assert message in str(refused.value)
