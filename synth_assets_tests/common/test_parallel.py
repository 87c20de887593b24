import sys
import threading
import time

import pytest

from synth_assets.common.parallel import available_cores, ordered_map, resolved_jobs


def test_results_come_in_the_items_order_whatever_ends_first():
    # the first item ends last: a map that returned results as they end would reverse them
    durations = [0.3, 0.2, 0.1, 0.0]

    def slow(i: int) -> int:
        time.sleep(durations[i])
        return i * 10

    assert ordered_map(slow, range(4), n_jobs=4) == [0, 10, 20, 30]


def test_pieces_run_at_the_same_time_on_n_jobs_threads():
    # two pieces that each wait for the other: only two threads at once let both pass the barrier
    barrier = threading.Barrier(2, timeout=10)
    names: list[str] = []

    def meet(i: int) -> int:
        names.append(threading.current_thread().name)
        barrier.wait()
        return i

    assert ordered_map(meet, [0, 1], n_jobs=2, name="meet") == [0, 1]
    assert all(name.startswith("meet") for name in names)


def test_one_job_runs_in_the_calling_thread():
    caller = threading.current_thread()
    seen = ordered_map(lambda _: threading.current_thread(), range(3), n_jobs=1)
    assert seen == [caller] * 3
    assert ordered_map(lambda _: threading.current_thread(), range(3), n_jobs=None) == [caller] * 3


def test_an_exception_in_a_piece_is_raised():
    def fail_on_two(i: int) -> int:
        if i == 2:
            raise KeyError("piece 2")
        return i

    with pytest.raises(KeyError, match="piece 2"):
        ordered_map(fail_on_two, range(4), n_jobs=2)


def test_jobs_follow_scikit_learn_s_convention():
    assert resolved_jobs(None) == 1
    assert resolved_jobs(3) == 3
    assert resolved_jobs(-1) == available_cores() >= 1
    with pytest.raises(ValueError, match="got 0"):
        resolved_jobs(0)
    with pytest.raises(ValueError, match="got -2"):
        resolved_jobs(-2)



# --------------------------------------------------------------------------- forked_imap

def test_forked_pieces_run_in_children_that_see_the_parent_s_memory_and_come_back_in_order():
    import os

    from synth_assets.common.parallel import forked_imap

    shared = {"table": list(range(100))}  # set before the fork: a child reads it without a pickle
    durations = [0.4, 0.2, 0.0]

    def piece(i: int) -> tuple[int, int, int]:
        time.sleep(durations[i])
        return i, os.getpid(), sum(shared["table"]) + i

    results = list(forked_imap(piece, range(3), processes=2))
    assert [r[0] for r in results] == [0, 1, 2]
    assert [r[2] for r in results] == [4950, 4951, 4952]
    pids = {r[1] for r in results}
    assert os.getpid() not in pids and len(pids) == 3  # one child per piece


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the kernel's high-water mark: /proc")
def test_each_child_s_own_peak_is_heard_as_its_result_arrives():
    import mmap

    from synth_assets.common.parallel import forked_imap

    def piece(megabytes: int) -> int:
        # new pages, written: resident in the child alone (a malloc'd block may reuse heap pages the
        # parent left resident, whose copy-on-write keeps the resident set as it was)
        block = mmap.mmap(-1, megabytes * 2**20)
        for start in range(0, len(block), mmap.PAGESIZE):
            block[start] = 1
        return block[-mmap.PAGESIZE]

    peaks: dict[int, int | None] = {}
    assert list(forked_imap(piece, [1, 300], processes=2, on_peak=peaks.__setitem__)) == [1, 1]
    assert set(peaks) == {0, 1}
    # from the fork on: the large piece's child rose by its block, the small one's did not
    assert peaks[1] is not None and peaks[0] is not None
    assert peaks[1] - peaks[0] > 250 * 2**20


def test_forked_pieces_run_at_the_same_time():
    import multiprocessing

    from synth_assets.common.parallel import forked_imap

    # two pieces that each wait for the other: they pass only if both children run at once
    barrier = multiprocessing.get_context("fork").Barrier(2, timeout=20)

    def meet(i: int) -> int:
        barrier.wait()
        return i

    assert list(forked_imap(meet, [0, 1], processes=2)) == [0, 1]


def test_forked_items_are_taken_only_as_a_child_is_free(tmp_path):
    from synth_assets.common.parallel import forked_imap

    finished_when_taken: dict[int, int] = {}

    def piece(i: int) -> int:
        (tmp_path / f"done-{i}").touch()  # its child's work is over
        return i * 2

    def items():
        for i in range(6):
            finished_when_taken[i] = len(list(tmp_path.glob("done-*")))
            yield i

    assert list(forked_imap(piece, items(), processes=2)) == [0, 2, 4, 6, 8, 10]
    # two children at a time: item i is taken only once i - 1 pieces are over (however many of them
    # ended together before the parent looked)
    assert all(finished_when_taken[i] >= i - 1 for i in range(2, 6)), finished_when_taken


def test_a_child_s_log_records_are_logged_again_in_the_parent(caplog):
    import logging

    from synth_assets.common.parallel import forked_imap

    def noisy(i: int) -> int:
        logging.getLogger("synth_assets.test").info("piece %d drawn", i)
        return i

    with caplog.at_level(logging.INFO, logger="synth_assets"):
        assert list(forked_imap(noisy, range(2), processes=2)) == [0, 1]
    assert sorted(r.getMessage() for r in caplog.records if r.name == "synth_assets.test") == [
        "piece 0 drawn", "piece 1 drawn"]


def test_a_child_s_exception_is_raised_in_the_parent_with_its_traceback():
    from synth_assets.common.parallel import forked_imap

    def fail_on_one(i: int) -> int:
        if i == 1:
            raise ValueError("replicate 1: no household")
        time.sleep(0.2)
        return i

    with pytest.raises(ValueError, match="replicate 1: no household") as raised:
        list(forked_imap(fail_on_one, range(3), processes=2))
    assert "fail_on_one" in str(raised.value.__cause__)  # the child's traceback, as text


def test_a_child_that_dies_without_a_result_is_named():
    import os
    import signal

    from synth_assets.common.parallel import forked_imap

    def killed(i: int) -> int:
        if i == 1:
            os.kill(os.getpid(), signal.SIGKILL)  # as the kernel's out-of-memory killer would
        return i

    with pytest.raises(ChildProcessError, match="item 1 ended with exit code -9"):
        list(forked_imap(killed, range(2), processes=2))


def test_one_process_runs_the_pieces_here():
    import os

    from synth_assets.common.parallel import forked_imap

    assert list(forked_imap(lambda _: os.getpid(), range(3), processes=1)) == [os.getpid()] * 3


def test_torch_works_in_a_child_after_the_parent_used_its_threads():
    torch = pytest.importorskip("torch")
    from synth_assets.common.parallel import forked_imap

    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        x = torch.randn(512, 512)
        (x @ x).sum()  # the parent's OpenMP pool started

        def multiply(i: int) -> float:
            y = torch.ones(256, 256) * i
            return float((y @ y).sum())

        assert list(forked_imap(multiply, range(2), processes=2)) == [0.0, 256.0 ** 3]
        assert torch.get_num_threads() == 2  # the child's one thread is the child's own
    finally:
        torch.set_num_threads(threads)


def test_available_cores_follow_joblib_s_count_not_the_machine_s(monkeypatch):
    # joblib counts the affinity, a container's CPU quota and its own cap; the cap stands in for
    # a pod's quota here (a test cannot set a cgroup's)
    monkeypatch.setenv("LOKY_MAX_CPU_COUNT", "1")
    assert available_cores() == 1
    assert resolved_jobs(-1) == 1


def test_a_child_s_info_records_reach_on_log_whatever_the_python_loggers_level():
    import logging

    from synth_assets.common.parallel import forked_imap

    logger = logging.getLogger("synth_assets.test")
    package = logging.getLogger("synth_assets")
    level = package.level
    package.setLevel(logging.WARNING)  # as where no instance setting manages the package's logger
    received: list[tuple[str, int, str]] = []
    try:
        def noisy(i: int) -> int:
            logger.info("piece %d drawn", i)
            logger.debug("not kept")
            return i

        assert list(forked_imap(noisy, range(2), processes=2, on_log=lambda *r: received.append(r))) == [0, 1]
    finally:
        package.setLevel(level)
    assert sorted(received) == [("synth_assets.test", logging.INFO, "piece 0 drawn"),
                                ("synth_assets.test", logging.INFO, "piece 1 drawn")]
