"""The window of uploads in flight: grows while the server keeps up, halves on a throttle,
never past 16, fixed by --jobs."""

from __future__ import annotations

import threading

from hypothesis import given
from hypothesis import strategies as st

from oort_lib.run.window import HIGH, START, Window


def test_slow_start_doubles_each_round_then_stops_at_the_ceiling():
    window = Window()
    sizes = []
    for _round in range(8):
        size = window.size
        for _ in range(size):
            assert window.acquire(timeout=0)
        assert not window.acquire(timeout=0)  # the window is full
        for _ in range(size):
            window.release()
        sizes.append(window.size)
    assert sizes[:3] == [2 * START, 4 * START, 8 * START] == [4, 8, HIGH]
    assert sizes[-1] == HIGH
    assert window.shape().peak == HIGH


def test_a_throttle_halves_once_per_round_and_growth_resumes_slowly():
    window = Window()
    while window.size < HIGH:
        assert window.acquire(timeout=0)
        window.release()
    for _ in range(HIGH):
        assert window.acquire(timeout=0)
    for _ in range(5):  # a burst of 429s from the uploads already in flight
        window.throttled()
    assert window.size == HIGH // 2
    assert window.shape().halved == 1
    for _ in range(HIGH):
        window.release(succeeded=False)
    # Past the threshold: one more per round of `size` successes, not per success.
    for _ in range(HIGH // 2):
        assert window.acquire(timeout=0)
        window.release()
    assert window.size == HIGH // 2 + 1
    window.throttled()
    assert window.size == (HIGH // 2 + 1) // 2
    assert window.shape().halved == 2


def test_it_never_goes_below_one():
    window = Window()
    for _ in range(10):
        window.throttled()
        assert window.acquire(timeout=0)
        window.release(succeeded=False)
    assert window.size == 1
    assert window.acquire(timeout=0)


def test_jobs_pins_the_size():
    window = Window(pinned=3)
    for _ in range(50):
        assert window.acquire(timeout=0)
        window.release()
    window.throttled()
    assert window.size == 3 and window.capacity == 3
    assert window.shape().describe() == "Uploads in flight: 3 (fixed by --jobs or `jobs`)."


def test_describe_says_what_the_window_did():
    window = Window()
    while window.size < 6:
        assert window.acquire(timeout=0)
        window.release()
    assert window.shape().describe() == (
        f"Uploads in flight: up to 6 (adaptive, at most {HIGH}).")
    window.throttled()
    assert window.shape().describe() == (
        f"Uploads in flight: up to 6 (adaptive, at most {HIGH}, halved 1 time by the "
        "server's 429/503, 3 at the end).")


@given(st.lists(st.sampled_from(["ok", "fail", "throttle"]), max_size=300))
def test_in_flight_never_exceeds_the_size_nor_the_ceiling(events):
    window = Window()
    held = 0
    for event in events:
        while window.acquire(timeout=0):
            held += 1
            assert held <= window.size
        assert held <= HIGH
        if event == "throttle":
            window.throttled()
        elif held:
            held -= 1
            window.release(succeeded=event == "ok")
        assert 1 <= window.size <= HIGH


def test_threads_wait_for_room():
    window = Window(pinned=2)
    inside, peak, lock = [0], [0], threading.Lock()

    def upload():
        window.acquire()
        with lock:
            inside[0] += 1
            peak[0] = max(peak[0], inside[0])
        with lock:
            inside[0] -= 1
        window.release()

    threads = [threading.Thread(target=upload) for _ in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert peak[0] <= 2 and not any(thread.is_alive() for thread in threads)
