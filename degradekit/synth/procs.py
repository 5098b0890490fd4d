"""Worker processes that never outlive their parent, and SIGTERM handled like Ctrl-C.

Used by `degradekit synth` (forkserver workers) and `degradekit pool build` (spawn workers).
"""
from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time

__all__ = ["Terminated", "worker_init", "sigterm_as_interrupt", "interrupt_exit_code", "stop_processes"]


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread like Ctrl-C's KeyboardInterrupt (same clean-up paths)."""

    signum = signal.SIGTERM


def _set_pdeathsig(sig: int) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(1, int(sig), 0, 0, 0) == 0  # PR_SET_PDEATHSIG = 1
    except (OSError, AttributeError):  # pragma: no cover - no libc prctl
        return False


def _watch_parent(ppid: int, sentinel, every: float) -> None:
    # The multiprocessing parent sentinel (a pipe from the parent process itself, also for forkserver workers,
    # whose OS parent is the forkserver) reaches EOF when the parent ends; re-parenting is the fallback.
    from multiprocessing.connection import wait

    while True:
        if sentinel is not None and wait([sentinel], timeout=every):
            os._exit(1)
        if sentinel is None:
            time.sleep(every)
        if os.getppid() != ppid:
            os._exit(1)


def worker_init(every: float = 0.5) -> None:
    """Call first in a worker process: it ends (exit 1 / SIGKILL) when its parent process ends, however it ends.

    Three guards: a thread waiting on multiprocessing's parent sentinel (EOF when the process that started
    the worker dies); Linux ``prctl(PR_SET_PDEATHSIG, SIGKILL)`` (fires when the OS parent dies: the main process
    for spawn workers, the forkserver for forkserver workers); and for forkserver workers, closing the
    inherited write end of the forkserver's "alive" pipe, so that the forkserver too exits with the main
    process (every client holding that pipe would otherwise keep it, and it them, alive)."""
    import multiprocessing as mp

    ppid = os.getppid()
    # Ctrl-C reaches the whole process group: the parent handles it (stops the workers, removes temporaries);
    # a worker would only print a traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _set_pdeathsig(signal.SIGKILL)
    try:
        from multiprocessing import forkserver

        fs = forkserver._forkserver
        if fs._forkserver_alive_fd is not None and mp.current_process().name.startswith("ForkServer"):
            os.close(fs._forkserver_alive_fd)
            fs._forkserver_alive_fd = None
    except (ImportError, AttributeError, OSError):  # pragma: no cover - other Pythons
        pass
    parent = mp.parent_process()
    sentinel = getattr(parent, "sentinel", None)
    if os.getppid() != ppid or ppid == 1 or (parent is not None and not parent.is_alive()):
        os._exit(1)  # the parent is already gone
    threading.Thread(target=_watch_parent, args=(ppid, sentinel, every), daemon=True,
                     name="parent-watch").start()


def _raise_terminated(signum, frame):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM must not interrupt the clean-up
    raise Terminated()


@contextlib.contextmanager
def sigterm_as_interrupt():
    """Inside: SIGTERM raises :class:`Terminated` in the main thread (no-op off the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def interrupt_exit_code(exc: BaseException) -> int:
    """128 + the signal number: 143 for SIGTERM, 130 for Ctrl-C."""
    return 128 + int(getattr(exc, "signum", signal.SIGINT))


def stop_processes(procs, timeout: float = 5.0) -> None:
    """Terminate worker processes (multiprocessing.Process) and wait for them; kill those that linger."""
    procs = [p for p in procs if p is not None]
    for p in procs:
        try:
            p.terminate()
        except Exception:
            pass
    deadline = time.monotonic() + timeout
    for p in procs:
        try:
            p.join(max(0.0, deadline - time.monotonic()))
            if p.is_alive():
                p.kill()
                p.join(1.0)
        except Exception:
            pass
