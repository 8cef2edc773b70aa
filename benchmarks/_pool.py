"""The parent's side of the workers: one process per implementation, and interleaved timing.

Only one worker runs at a time (the parent waits for each reply), and the workers take turns
within every repeat, so a change in the machine's load falls on all implementations alike;
the result of an entry is the median of its repeats.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from typing import Any

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_worker.py")
ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


class WorkerError(RuntimeError):
    pass


class Worker:
    """A long-lived ``_worker.py IMPL`` process; ``call`` sends one request, waits for its
    reply."""

    def __init__(self, impl: str) -> None:
        self.impl = impl
        # its stderr, shown when it fails; closed in close()
        self.log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115
        self.proc = subprocess.Popen([sys.executable, WORKER, impl], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.log, text=True,
                                     env={**os.environ, **ONE_THREAD}, bufsize=1)

    def send(self, req: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()

    def receive(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            self.log.seek(0)
            raise WorkerError(f"worker {self.impl} exited: {self.log.read()[-2000:]}")
        reply = json.loads(line)
        if not reply.get("ok"):
            raise WorkerError(reply.get("error", "failed"))
        return reply

    def call(self, req: dict[str, Any]) -> dict[str, Any]:
        self.send(req)
        return self.receive()

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.send({"op": "quit"})
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
        self.log.close()


@dataclass
class Pool:
    """The workers by implementation name; ``missing`` holds those not started, with why."""

    impls: list[str]
    missing: dict[str, str] = field(default_factory=dict)
    workers: dict[str, Worker] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for impl in self.impls:            # all start at once; their imports overlap
            if impl not in self.missing:
                self.workers[impl] = Worker(impl)

    def close(self) -> None:
        for w in self.workers.values():
            w.close()


@dataclass
class Result:
    """Median seconds per call of one entry (None where it failed, with the error)."""

    median: float | None
    times: list[float] = field(default_factory=list)
    error: str | None = None


@dataclass
class Plan:
    reps: int                              # interleaved repeats (medians over these)
    target_s: float                        # aimed length of one repeat of one entry
    warmup: int = 2                        # calls after building, not in the medians (the
                                           # first traces compiled steps, fills caches)
    max_k: int = 2000


def paired_ratio(a: Result, b: Result) -> float | None:
    """a / b as the median over repeats of a's time over b's in the same repeat (the two ran
    next to each other, so a load change lasting a repeat cancels); None if either failed."""
    if a.median is None or b.median is None or len(a.times) != len(b.times):
        return None
    return statistics.median(x / y for x, y in zip(a.times, b.times))


def measure(pool: Pool, entries: list[tuple[str, dict]], plan: Plan) -> list[Result]:
    """Time every (impl, spec) entry: set all up, then ``plan.reps`` rounds in which each entry
    runs k calls (k from its warm-up estimate, so a repeat lasts about ``plan.target_s``),
    the order rotating every round. Returns one Result per entry, in order."""
    results = [Result(None) for _ in entries]
    live: list[tuple[int, Worker, str, int]] = []
    for i, (impl, spec) in enumerate(entries):
        w = pool.workers.get(impl)
        if w is None:
            results[i].error = pool.missing.get(impl, "not started")
            continue
        eid = f"e{i}"
        try:
            est = w.call({"op": "setup", "id": eid, "spec": spec, "warmup": plan.warmup})["est"]
        except WorkerError as e:
            results[i].error = str(e)
            continue
        k = max(1, min(plan.max_k, round(plan.target_s / max(est, 1e-9))))
        live.append((i, w, eid, k))
    for r in range(plan.reps):
        shift = r % max(1, len(live))
        for i, w, eid, k in live[shift:] + live[:shift]:
            try:
                results[i].times.append(w.call({"op": "time", "id": eid, "k": k})["s"])
            except WorkerError as e:
                results[i].error = str(e)
    for i, w, eid, _ in live:
        try:
            w.call({"op": "drop", "id": eid})
        except WorkerError:                # a worker that died already said why
            pass
        if results[i].times and results[i].error is None:
            results[i].median = statistics.median(results[i].times)
    return results
