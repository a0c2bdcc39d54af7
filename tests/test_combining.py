"""Writes combined across threads (core/combining.py): requests that queue while one thread
is writing are written together by the next leader, and each gets its own answer."""

from __future__ import annotations

import threading
import time

import pytest

from flashfusion.core.access.combining import Combiner


class Recorder:
    """An ``apply`` that records each batch; the first batch waits until released."""

    def __init__(self, fail_on: str | None = None) -> None:
        self.batches: list[list[str]] = []
        self.release = threading.Event()
        self.entered = threading.Event()
        self.fail_on = fail_on

    def __call__(self, tickets) -> None:
        self.batches.append([t.request for t in tickets])
        if len(self.batches) == 1:
            self.entered.set()
            assert self.release.wait(10)
        if self.fail_on in (t.request for t in tickets):
            raise RuntimeError("database gone")
        for t in tickets:
            t.result = t.request.upper()


def _submit_all(combiner, names, results) -> list[threading.Thread]:
    def one(name):
        try:
            results[name] = combiner.submit(name)
        except RuntimeError as exc:
            results[name] = exc
    threads = [threading.Thread(target=one, args=(n,)) for n in names]
    for t in threads:
        t.start()
    return threads


def _wait_queued(combiner, count) -> None:
    deadline = time.monotonic() + 10
    while len(combiner._queue) < count:
        assert time.monotonic() < deadline, "requests did not queue"
        time.sleep(0.001)


def test_requests_queued_behind_a_write_share_the_next_one():
    recorder = Recorder()
    combiner = Combiner(recorder)
    results: dict = {}
    first = _submit_all(combiner, ["a"], results)
    assert recorder.entered.wait(10)
    rest = _submit_all(combiner, ["b", "c", "d"], results)
    _wait_queued(combiner, 3)
    recorder.release.set()
    for t in first + rest:
        t.join(10)
    assert results == {"a": "A", "b": "B", "c": "C", "d": "D"}
    assert recorder.batches[0] == ["a"]
    assert sorted(recorder.batches[1]) == ["b", "c", "d"] and len(recorder.batches) == 2  # 4 requests, 2 writes
    assert combiner.submit("e") == "E" and recorder.batches[-1] == ["e"]  # alone: a batch of one, no waiting


def test_a_failed_write_fails_its_own_batch_only():
    recorder = Recorder(fail_on="b")
    combiner = Combiner(recorder)
    results: dict = {}
    first = _submit_all(combiner, ["a"], results)
    assert recorder.entered.wait(10)
    rest = _submit_all(combiner, ["b", "c"], results)
    _wait_queued(combiner, 2)
    recorder.release.set()
    for t in first + rest:
        t.join(10)
    assert results["a"] == "A"
    assert isinstance(results["b"], RuntimeError) and isinstance(results["c"], RuntimeError)
    assert combiner.submit("d") == "D"  # the lead was handed on: nothing is stuck


def test_an_apply_that_forgets_a_ticket_is_a_bug_not_a_hang():
    combiner = Combiner(lambda tickets: None)
    with pytest.raises(RuntimeError, match="left a request undecided"):
        combiner.submit("x")
