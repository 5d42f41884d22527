"""testbed.rootfs.ensure_rootfs: processes asking at once build the tree once (make test's two
workers on a fresh cache key once ran debootstrap into the same directory and both failed)."""

from __future__ import annotations

import multiprocessing
import time

from testbed import rootfs


def _ask(cache_dir, results):
    rootfs.CACHE_DIR = cache_dir

    def build(target, log):
        (cache_dir / "builds").open("a").write("x")
        time.sleep(0.5)  # long enough for the other process to arrive while this one builds
        target.mkdir()
        (target / ".hx-complete").write_text("done\n")
        return target

    rootfs._build = build
    results.put(str(rootfs.ensure_rootfs(log=lambda *_: None)))


def test_two_processes_asking_at_once_build_the_tree_once(tmp_path):
    results = multiprocessing.Queue()
    procs = [multiprocessing.Process(target=_ask, args=(tmp_path, results)) for _ in range(2)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(30)
    assert [proc.exitcode for proc in procs] == [0, 0]
    assert (tmp_path / "builds").read_text() == "x"  # one build, the other waited and found it
    assert results.get(timeout=5) == results.get(timeout=5) == str(tmp_path / rootfs.rootfs_path().name)
