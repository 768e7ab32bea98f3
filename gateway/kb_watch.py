"""`serve` keeps the knowledge base's index in line with its folder: once at start, before
mail is taken, then whenever the folder changes (its files' names, sizes and modification
times, looked at every few seconds). One gateway on the database indexes at a time (a host
lock); a gateway that finds another at it leaves the change to that one.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path

from gateway.app import Gateway
from gateway.database import reading, transaction
from gateway.errors import ConfigError, GatewayError
from gateway.knowledge import IndexRun, KnowledgeBase, apply_plan, indexed_versions, plan_index

log = logging.getLogger(__name__)

CHECK_SECONDS = 5.0

Signature = tuple[tuple[str, int, int], ...]


def folder_signature(folder: Path) -> Signature:
    """What changes when an article or the synonym table is added, edited or removed."""
    try:
        paths = sorted(p for p in folder.iterdir() if p.suffix in (".md", ".txt"))
        return tuple((p.name, (s := p.stat()).st_size, s.st_mtime_ns) for p in paths)
    except OSError:
        return ()


def index_now(gateway: Gateway, knowledge: KnowledgeBase) -> IndexRun | None:
    """Index the folder, unless another gateway is doing so; what it did. The files are
    read before the write transaction, which only writes what changed."""
    with gateway.locks.exclusive("kb index") as hold:
        if not hold:
            return None
        with reading(gateway.sessions) as session:
            indexed = indexed_versions(session)
        plan = plan_index(knowledge.folder, knowledge.synonyms, indexed)
        with transaction(gateway.sessions) as session:
            run = apply_plan(session, plan, gateway.clock.now())
    for name, reason in sorted(run.errors.items()):
        log.warning("knowledge base: %s not indexed: %s", name, reason)
    if run.touched:
        log.info(
            "knowledge base indexed: %d added, %d changed, %d removed",
            len(run.added),
            len(run.changed),
            len(run.removed),
        )
    return run


@dataclass(frozen=True, slots=True)
class KnowledgeWatch:
    """The thread that indexes the folder when it changes."""

    thread: threading.Thread | None
    stopping: threading.Event

    @classmethod
    def start(cls, gateway: Gateway) -> KnowledgeWatch:
        stopping = threading.Event()
        settings = gateway.settings
        if not settings.knowledge.enabled:
            return cls(None, stopping)
        knowledge = gateway.executor.pipeline.rules.knowledge
        last = watch_once(gateway, knowledge, None)
        thread = threading.Thread(
            target=watch, args=(gateway, knowledge, last, stopping), name="kb-watch", daemon=True
        )
        thread.start()
        return cls(thread, stopping)

    def stop(self) -> None:
        self.stopping.set()
        if self.thread is not None:
            self.thread.join(CHECK_SECONDS)


def watch(
    gateway: Gateway, knowledge: KnowledgeBase, last: Signature | None, stopping: threading.Event
) -> None:
    while not stopping.wait(CHECK_SECONDS):
        last = watch_once(gateway, knowledge, last)


def watch_once(
    gateway: Gateway, knowledge: KnowledgeBase, last: Signature | None
) -> Signature | None:
    """The folder indexed if it changed since `last` (None: never indexed); the signature
    it was indexed at. A folder that cannot be indexed is tried again when it changes; a
    database that cannot be reached, at the next look."""
    now = folder_signature(knowledge.folder)
    if now == last:
        return last
    try:
        index_now(gateway, knowledge)
    except ConfigError as exc:
        log.warning("knowledge base not indexed: %s", exc.reason)
    except GatewayError as exc:
        log.warning("knowledge base not indexed: %s; trying again", exc.reason)
        return last
    return now
