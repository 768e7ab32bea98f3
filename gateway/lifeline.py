"""Dying with the parent: no child of `gateway serve` outlives the process that started it.

A parent killed with SIGKILL (the OOM killer, a supervisor giving up) runs no cleanup, so
its children must notice by themselves, or they live on beside the next `serve`, filing and
delivering with the old settings. `die_with_parent` is how each child notices; the worker
(`gateway.serving`), its parser child (`gateway.parse_ahead`) and the web service
(`gateway.web.process`) call it first thing, the first and last through `become_child`,
and `serve` keeps them as `Child`ren it starts again should they end.

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
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from multiprocessing.process import BaseProcess
from typing import Any

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1
PR_SET_NAME = 15
# How long a child whose parent is gone may take to stop by itself before it is ended.
GRACE_SECONDS = 1.0
# After SIGTERM, how long a child may take to stop before it is killed.
TERMINATE_SECONDS = 10.0


class Child:
    """A process of `serve`'s (a worker, the web service), started by the fork server,
    watched and started again should it end. A kind of child names itself (`name`, and
    `title` for `ps`) and what it runs (`target`, `arguments`)."""

    name = "child process"
    title = "gateway-child"

    def __init__(self) -> None:
        # Not fork: the listeners' threads may hold locks at that moment. A fork server
        # with the gateway preloaded starts (and restarts) a child in milliseconds.
        self.context = multiprocessing.get_context("forkserver")
        self.context.set_forkserver_preload(["gateway.serving"])
        self.process: BaseProcess | None = None

    def target(self) -> Callable[..., None]:
        raise NotImplementedError

    def arguments(self) -> tuple[Any, ...]:
        raise NotImplementedError

    def start(self) -> None:
        if self.process is not None:
            # Let go of the one before: that closes its lifeline, which ends it should it
            # still run unseen (its fork server killed, we saw it as dead).
            self.process.close()
        self.process = self.context.Process(
            target=self.target(), args=self.arguments(), name=self.title, daemon=True
        )
        self.process.start()

    def alive(self) -> bool:
        return self.process is not None and self.process.is_alive()

    def how_it_ended(self) -> str:
        code = self.process.exitcode if self.process is not None else None
        if code is not None and code < 0:
            return f"killed by {signal.Signals(-code).name}"
        return f"exit code {code}"

    def wait_to_end(self, seconds: float) -> None:
        """Up to `seconds` for the child asked to stop, then SIGTERM, then SIGKILL."""
        if self.process is None:
            return
        self.process.join(seconds)
        for last_resort in (self.process.terminate, self.process.kill):
            if not self.process.is_alive():
                return
            log.error("%s did not stop; %s", self.name, last_resort.__name__)
            last_resort()
            self.process.join(TERMINATE_SECONDS)


def become_child(title: str, niceness: int, stop: Callable[[str], None]) -> None:
    """What every child of `serve` does first: die with it, leave Ctrl-C to it (it reaches
    the whole process group, and `serve` has its children finish), stop on SIGTERM, yield
    the cores as `niceness` says, log as `serve` does, and go by `title` in `ps`."""
    parent = multiprocessing.parent_process()
    assert parent is not None, "become_child runs in a child process"
    die_with_parent(parent.pid or 0, parent.sentinel, lambda: stop("serve is gone"))
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda _signum, _frame: stop("SIGTERM"))
    os.nice(niceness)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)
    name_this_process(title)


def name_this_process(title: str) -> None:
    """What `ps` and /proc/PID/comm call the process (Linux): a child started by the fork
    server shares its command line with every other one."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_NAME, ctypes.c_char_p(title.encode()[:15]), 0, 0, 0) != 0:
        log.info("could not name the process: errno %d", ctypes.get_errno())


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
