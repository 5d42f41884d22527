"""`--test-order`: run the collected tests in file order (default), reversed, or shuffled
(`random:SEED`), to show that no test depends on another's leftovers."""

from __future__ import annotations

import random


def pytest_addoption(parser):
    parser.addoption(
        "--test-order",
        default="file",
        help="file (default), reverse, or random:SEED: the order the collected tests run in",
    )


def pytest_collection_modifyitems(config, items):
    order = config.getoption("--test-order")
    if order == "reverse":
        items.reverse()
    elif order.startswith("random:"):
        random.Random(order.split(":", 1)[1]).shuffle(items)
    elif order != "file":
        raise ValueError(f"--test-order {order!r}: use file, reverse or random:SEED")
