"""Worker processes that never outlive the run that started them.

Every process pool of simkit (the engine's blocks, the forensic simulated nulls, the inference's
simulations) is made by :func:`process_pool`. Its workers die with their parent whatever kills it:

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
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Callable

#: seconds between a worker's checks that its parent is alive (the fallback where PR_SET_PDEATHSIG is missing)
WATCH_INTERVAL = 0.5
_PR_SET_PDEATHSIG = 1  #: from <linux/prctl.h>


def process_context() -> multiprocessing.context.BaseContext:
    """fork where the platform has it (workers inherit the parent's state, compiled kernels included),
    else spawn."""
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
