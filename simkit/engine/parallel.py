"""simkit's one parallel machinery: keyed chunks of work mapped in order, in this process, in threads or in
worker processes that never outlive the run that started them.

:func:`choose` decides, in one place, where a job runs: in this process when it is small or one worker is
asked for, in threads when its work releases the GIL (compiled numba code), else in processes (not from
inside a daemonic process such as a dask worker, which may not start children). :class:`KeyedPool` then
sends the job's state to each worker once (a process's initializer; threads share it), runs
``task(state, key)`` for each key and gives the results back in the order of the keys. Keys are logical
positions (a block of replicates, a range of null draws, a replicate): the task derives its random
streams from its key alone, so a result never depends on the number of workers or on where a key ran.

The engine's blocks, the forensic simulated nulls and calibration's replicates run on it. Every process
pool is made by :func:`process_pool`. Its workers die with their parent whatever kills it:

- on Linux the kernel sends them SIGKILL when the parent dies (``prctl(PR_SET_PDEATHSIG)``, set in the
  worker's initializer through ctypes);
- everywhere, a daemon thread in each worker checks every :data:`WATCH_INTERVAL` seconds that its parent
  is still the process that started it (``os.getppid()``; an orphan is re-parented) and exits otherwise.

:func:`stop_pool` ends a pool without waiting for its running tasks (used when a run fails or is
interrupted), so a terminated parent does not sit waiting for its workers to finish.
"""
from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor, wait
from typing import Any, Callable, Generic, Iterable, Iterator, Literal, TypeVar

#: seconds between a worker's checks that its parent is alive (the fallback where PR_SET_PDEATHSIG is missing)
WATCH_INTERVAL = 0.5
_PR_SET_PDEATHSIG = 1  #: from <linux/prctl.h>


def process_context() -> multiprocessing.context.BaseContext:
    """fork where the platform has it (workers inherit the parent's state, compiled kernels included), else
    spawn. simkit compiles no ``parallel=True`` numba function: numba's OpenMP layer is not fork-safe, and a
    child forked after it has run aborts."""
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")


def _watch_parent(parent_pid: int) -> None:
    while True:
        time.sleep(WATCH_INTERVAL)
        if os.getppid() != parent_pid:
            os._exit(1)


def die_with_parent(parent_pid: int) -> None:
    """Make this process exit when the process ``parent_pid`` (its parent) dies: the parent-death signal on
    Linux, and a watchdog thread everywhere. Exits at once when the parent is already gone."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):  # no libc prctl: the watchdog alone
            pass
    if os.getppid() != parent_pid:  # the parent died before the signal was armed
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent_pid,), name="simkit-parent-watch", daemon=True).start()


def _start_worker(parent_pid: int, initializer: Callable | None, initargs: tuple) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a forked worker must not inherit the parent's handler
    die_with_parent(parent_pid)
    if initializer is not None:
        initializer(*initargs)


def process_pool(workers: int, initializer: Callable | None = None, initargs: tuple = ()) -> ProcessPoolExecutor:
    """A ``ProcessPoolExecutor`` of ``workers`` processes (:func:`process_context`) whose workers die with this
    process, each running ``initializer(*initargs)`` once at its start."""
    return ProcessPoolExecutor(max_workers=workers, mp_context=process_context(), initializer=_start_worker,
                               initargs=(os.getpid(), initializer, initargs))


def stop_pool(pool: Any, wait: bool) -> None:
    """Shut ``pool`` (an executor) down. ``wait``: let running tasks finish (a normal end); else cancel the
    pending tasks and terminate the worker processes at once (a failed or interrupted run)."""
    if wait:
        pool.shutdown(wait=True)
        return
    processes = list((getattr(pool, "_processes", None) or {}).values())
    manager = getattr(pool, "_executor_manager_thread", None)
    results = getattr(pool, "_result_queue", None)
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join(timeout=5)
    _release_manager(manager, results)


def _release_manager(manager: threading.Thread | None, results: Any) -> None:
    """A worker terminated while sending a result leaves the pool's manager thread reading half a message
    forever, and the interpreter joins that thread at exit (a SIGTERMed run would never end): closing this
    process's end of the result pipe, the last writer once the workers are gone, gives it end-of-file."""
    if manager is None or results is None:
        return
    manager.join(timeout=1)
    if manager.is_alive():
        results._writer.close()
        manager.join(timeout=5)


#: where a job runs: in this process, in threads of this process, or in worker processes
Where = Literal["serial", "threads", "processes"]
State = TypeVar("State")
Key = TypeVar("Key")
Result = TypeVar("Result")


def choose(workers: int | None, work: int, min_work: int, releases_gil: bool = False) -> tuple[Where, int]:
    """Where a job of ``work`` units (station-draws, say) runs, and on how many workers: ``workers`` (None:
    every core). In this process (``serial``, 1) when one worker is asked for or ``work < min_work`` (starting
    workers would cost more than it saves); in threads when the work ``releases_gil`` (numba's compiled
    kernels); else in processes, unless this process is itself a worker (of a pool of ours, or of dask):
    its job is one of many that already share the cores, so it runs in this process."""
    workers = workers or os.cpu_count() or 1
    if workers == 1 or work < min_work:
        return "serial", 1
    if releases_gil:
        return "threads", workers
    if multiprocessing.parent_process() is not None or multiprocessing.current_process().daemon:
        return "serial", 1
    return "processes", workers


#: (task, state) of the pool this worker process belongs to. A process pool's initializer can hand the
#: state to its worker only through the worker's module namespace: it is set once at the worker's start,
#: and every task of that worker reads it (a worker belongs to one pool, so one slot suffices).
_worker_job: tuple[Callable, Any] | None = None


def _hold_job(task: Callable, state: Any) -> None:
    global _worker_job
    _worker_job = (task, state)


def _run_held(key: Any) -> Any:
    task, state = _worker_job
    return task(state, key)


class KeyedPool(Generic[State, Key, Result]):
    """Runs ``task(state, key)`` for keys, in this process, in threads or in processes (``where``, ``workers``:
    see :func:`choose`); ``state`` reaches each worker once. ``task`` must be a module-level function for
    processes. Use as a context manager: the workers stop on exit, at once when an error or an interruption
    unwinds (:func:`stop_pool`)."""

    def __init__(self, task: Callable[[State, Key], Result], state: State, where: Where, workers: int = 1):
        self.task, self.state, self.where = task, state, where
        self._executor: Executor | None = None
        if where == "threads":
            self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="simkit-worker")
        elif where == "processes":
            self._executor = process_pool(workers, _hold_job, (task, state))
        self.workers = workers if self._executor is not None else 1

    def submit(self, key: Key) -> Future:
        """A future of ``task(state, key)``; in this process it is computed now."""
        if self._executor is None:
            done: Future = Future()
            done.set_result(self.task(self.state, key))
            return done
        if self.where == "processes":
            return self._executor.submit(_run_held, key)
        return self._executor.submit(self.task, self.state, key)

    def map(self, keys: Iterable[Key], in_flight: int | None = None) -> Iterator[Result]:
        """The results of ``keys``, in their order, with at most ``in_flight`` (default ``2 × workers + 1``)
        submitted and not yet given back. In this process each is computed when asked for."""
        if self._executor is None:
            yield from (self.task(self.state, key) for key in keys)
            return
        limit = in_flight or 2 * self.workers + 1
        pending: deque[Future] = deque()
        for key in keys:
            pending.append(self.submit(key))
            if len(pending) >= limit:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()

    def map_unordered(self, keys: Iterable[Key]) -> Iterator[tuple[Key, Result]]:
        """``(key, result)`` of each of ``keys`` as soon as any finishes (so that none waits behind a slow one),
        with at most ``2 × workers + 1`` submitted and not yet given back; ``keys`` is read
        only as room frees up. In this process each is computed, in order, when asked for."""
        if self._executor is None:
            yield from ((key, self.task(self.state, key)) for key in keys)
            return
        limit = 2 * self.workers + 1
        pending: dict[Future, Key] = {}
        for key in keys:
            if len(pending) >= limit:
                yield from self._finished(pending)
            pending[self.submit(key)] = key
        while pending:
            yield from self._finished(pending)

    @staticmethod
    def _finished(pending: dict[Future, Key]) -> Iterator[tuple[Key, Result]]:
        """Wait for any of ``pending`` (future -> key) to finish; give back and remove every finished one."""
        for future in wait(pending, return_when=FIRST_COMPLETED).done:
            yield pending.pop(future), future.result()

    def close(self, wait: bool = True) -> None:
        """Stop the workers. ``wait``: cancel the keys not yet started and let those under way finish (a normal
        end); else terminate everything at once (:func:`stop_pool`: an error or an interruption)."""
        executor, self._executor = self._executor, None
        if executor is None:
            return
        if wait:
            executor.shutdown(wait=True, cancel_futures=True)
        elif isinstance(executor, ProcessPoolExecutor):
            stop_pool(executor, wait=False)
        else:  # a thread cannot be stopped: it is left to end, unwaited for
            executor.shutdown(wait=False, cancel_futures=True)

    def __enter__(self) -> KeyedPool:
        return self

    def __exit__(self, exc_type, *exc) -> None:
        self.close(wait=exc_type is None)


def chunks(n: int, size: int) -> list[range]:
    """``range(n)`` cut into consecutive ranges of ``size`` (the last may be shorter)."""
    if size < 1:
        raise ValueError(f"size must be at least 1, got {size}")
    return [range(start, min(start + size, n)) for start in range(0, n, size)]
