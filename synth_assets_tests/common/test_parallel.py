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

