"""Which fleet net each pytest-xdist worker drives, so parallel workers never share a fleet.

Worker gwI takes the I-th net of HX_TESTBED_NETS (e.g. "4,5"), else HX_TESTBED_NET + 10*I
(nets 0 and 10 for the default net 0). Kept apart from fleet_layout.py, which reads the net
once at import: tests/conftest.py sets HX_TESTBED_NET from this before anything imports it.
"""

from __future__ import annotations

from collections.abc import Mapping

STRIDE = 10  # between the default nets of two workers: clear of nets 1-9 handed out one per person


class WorkerNetError(ValueError):
    pass


def worker_net(worker: str, environ: Mapping[str, str]) -> int:
    """The fleet net of xdist worker `worker` ("gw0", "gw1", ...)."""
    if not worker.startswith("gw") or not worker[2:].isdigit():
        raise WorkerNetError(f"{worker!r} is not a pytest-xdist worker id (gw0, gw1, ...)")
    index = int(worker[2:])
    listed = environ.get("HX_TESTBED_NETS", "").strip()
    if listed:
        try:
            nets = [int(net) for net in listed.split(",")]
        except ValueError:
            raise WorkerNetError(
                f"HX_TESTBED_NETS={listed!r} is not a comma-separated list of nets: write it as 4,5"
            ) from None
        if index >= len(nets):
            raise WorkerNetError(
                f"HX_TESTBED_NETS={listed!r} names {len(nets)} net(s), none for worker {worker}: "
                "name one net per worker (-n)"
            )
        net = nets[index]
    else:
        net = int(environ.get("HX_TESTBED_NET", "0")) + STRIDE * index
    if not 0 <= net <= 255:
        raise WorkerNetError(
            f"worker {worker} would use fleet net {net}: nets are 0..255; set HX_TESTBED_NETS"
        )
    return net
