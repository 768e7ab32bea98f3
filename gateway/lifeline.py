"""Dying with the parent: no child of `gateway serve` outlives the process that started it.

A parent killed with SIGKILL (the OOM killer, a supervisor giving up) runs no cleanup, so
its children must notice by themselves, or they live on beside the next `serve`, filing and
delivering with the old settings. `die_with_parent` is how each child notices; both the
worker (`gateway.serving`) and its parser child (`gateway.parse_ahead`) call it first thing.

It uses two signs, because each covers a case the other misses:

- a **lifeline**: the read end of a pipe whose write end only the parent holds. The kernel
  closes that end when the parent dies, however it dies and whichever of its threads
  started the child, so end of file on it means the parent is gone (or has let go of this
  child: closed its end on purpose). It works through an intermediary too: a worker's
  parent in the process tree is multiprocessing's fork server, not `serve`, and the
  lifeline is the one multiprocessing itself gives each child (`parent_process().sentinel`,
  a pipe from `serve`). A thread waits on it, so it needs the child's interpreter to run.
- the kernel's **parent-death signal** (Linux `prctl(PR_SET_PDEATHSIG)`): SIGKILL, sent by
  the kernel however busy or stuck the child is. But only for the parent in the process
  tree (useless for the worker, whose tree parent is the fork server: see above), and it
  fires when the parent *thread* that started the child ends, not the process; so it is
  set only when the expected parent is the tree parent, and the child must be started from
  a thread that lives as long as its parent does (the parser child is started from the
  worker's main thread). Between the fork and the `prctl` the parent may already have
  died, so the parent's pid is checked again once the signal is set.

What `multiprocessing` starts for the workers ends by itself once they have: the fork server
exits when no process holds its "alive" pipe any more (`serve` and each worker hold one),
and the resource tracker when no process holds its pipe (the same ones).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1
# How long a child whose parent is gone may take to stop by itself before it is ended.
GRACE_SECONDS = 1.0


def die_with_parent(
    parent_pid: int,
    lifeline: int,
    stop: Callable[[], None] | None = None,
    grace: float = GRACE_SECONDS,
) -> None:
    """From now on, end this process soon after the process `parent_pid` ends.

    `lifeline` is a pipe end whose other end only the parent holds open. When it closes,
    `stop` is called (from another thread) to ask this process to stop by itself; if it is
    still running `grace` seconds later, or without a `stop`, it exits at once. Where the
    parent is this process's parent in the process tree, the kernel kills it outright too.
    """
    if os.getppid() == parent_pid:
        kill_with_parent()
        if os.getppid() != parent_pid:  # It died before the signal was set.
            os._exit(0)
    watcher = threading.Thread(
        target=watch_lifeline, args=(lifeline, stop, grace), name="lifeline", daemon=True
    )
    # The watcher takes no signals: a signal this process holds back for a while (or leaves
    # to its default action) must not reach it through this thread instead.
    held = signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
    try:
        watcher.start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)


def kill_with_parent() -> None:
    """Ask the kernel for SIGKILL when the parent thread that started us ends (Linux)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG)")
    except (OSError, AttributeError) as exc:  # The lifeline still holds.
        log.warning("cannot ask to die with the parent process: %s", exc)


def watch_lifeline(lifeline: int, stop: Callable[[], None] | None, grace: float) -> None:
    """Wait for end of file on `lifeline`, then stop this process (see `die_with_parent`)."""
    with contextlib.suppress(OSError):
        while os.read(lifeline, 4096):  # Nothing is written to it; read to the end.
            pass
    if stop is None:
        os._exit(0)
    stop()
    time.sleep(grace)
    log.error("the parent process is gone and this one did not stop in %.1fs; ending", grace)
    os._exit(1)
