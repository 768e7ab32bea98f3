"""The worker's own cost: filing spooled mail and delivering its acknowledgements, in one
process, without the SMTP client, the listener or the relay competing for the cores.

Each run fills a fresh spool in /tmp with the mix `throughput.py` sends (the same
generator), then times `Executor.drain()` and `Dispatcher.deliver_due()` into a Maildir.
It prints milliseconds a message, wall clock and CPU, and the wall time of a few stages
(parsing, the ORM's flushes, composing the MIME of outgoing mail), which are measured by
wrapping those functions, so they add no profiler's overhead.

    .venv/bin/python bench/drain.py --messages 500 --repeat 3
    .venv/bin/python bench/drain.py --messages 500 --repeat 3 --parse-ahead
    .venv/bin/python bench/drain.py --messages 500 --profile /tmp/drain.prof

With `GATEWAY_KB_DIR` set, each fresh database indexes that folder first, so every new
ticket is searched for articles as a served gateway's are.
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import importlib
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import throughput  # noqa: E402  (the corpus generator beside this file)

GATEWAY = Path(sys.executable).with_name("gateway")
# (module, function) whose wall time is reported as a stage of the drain.
STAGES = (
    ("gateway.parse_ahead", "parse_message"),
    ("sqlalchemy.orm.session", "Session.flush"),
    ("gateway.outbox", "compose"),
    ("gateway.rendering", "Templates.render"),
)


@dataclass(frozen=True)
class DrainRun:
    messages: int
    file_wall: float
    file_cpu: float
    deliver_wall: float
    stages: dict[str, float]


class StageClock:
    """Wall time spent in each wrapped function, outermost calls only."""

    def __init__(self) -> None:
        self.totals: dict[str, float] = {}
        self.active: set[str] = set()

    def wrap(self, module_name: str, qualified_name: str) -> None:
        owner_name, _, name = qualified_name.rpartition(".")
        module = importlib.import_module(module_name)
        owner = getattr(module, owner_name) if owner_name else module
        original = getattr(owner, name)

        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Any:
            if name in self.active:  # A flush inside a flush counts once.
                return original(*args, **kwargs)
            self.active.add(name)
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.totals[qualified_name] = (
                    self.totals.get(qualified_name, 0.0) + time.perf_counter() - started
                )
                self.active.discard(name)

        setattr(owner, name, timed)


@contextmanager
def gateway_environment(data_dir: Path) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.update(
        GATEWAY_DATA_DIR=str(data_dir),
        GATEWAY_SUPPORT_ADDRESS=throughput.SUPPORT,
        GATEWAY_SECRET="bench",
    )
    for name in [name for name in os.environ if name.startswith("GATEWAY_RELAY")]:
        del os.environ[name]  # Delivery goes to a Maildir in the data dir.
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def drain_once(
    messages: int, seed: int, clock: StageClock, profile: cProfile.Profile | None, parse_ahead: bool
) -> DrainRun:
    from gateway.app import build_gateway
    from gateway.config import load_settings

    workdir = Path(tempfile.mkdtemp(prefix="gateway-drain-"))
    try:
        with gateway_environment(workdir / "var"):
            subprocess.run([str(GATEWAY), "db", "upgrade"], check=True, capture_output=True)
            if os.environ.get("GATEWAY_KB_DIR"):
                subprocess.run([str(GATEWAY), "kb", "index"], check=True, capture_output=True)
            settings = load_settings()
            gateway = build_gateway(settings)
            parser = gateway.parser_process() if parse_ahead else None
            for mail in throughput.iter_corpus(messages, random.Random(seed)):
                raw = mail.payload.replace(b"\r\n..", b"\r\n.")  # undo the dot-stuffing
                gateway.spool.accept(raw, mail.sender, [throughput.SUPPORT], "smtp")
            clock.totals.clear()
            if profile is not None:
                profile.enable()
            wall, cpu = time.perf_counter(), time.process_time()
            outcomes = gateway.executor.drain(parser)
            filed_wall, filed_cpu = time.perf_counter(), time.process_time()
            report = gateway.dispatcher.deliver_due()
            delivered_wall = time.perf_counter()
            if profile is not None:
                profile.disable()
            gateway.engine.dispose()
            if parser is not None:
                parser.close()
        if len(outcomes) != messages or report.sent != messages:
            raise SystemExit(f"filed {len(outcomes)} and sent {report.sent} of {messages}")
        return DrainRun(
            messages,
            filed_wall - wall,
            filed_cpu - cpu,
            delivered_wall - filed_wall,
            dict(clock.totals),
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def per_message(runs: list[DrainRun], value: Callable[[DrainRun], float]) -> str:
    figures = sorted(1000 * value(run) / run.messages for run in runs)
    if len(figures) == 1:
        return f"{figures[0]:.2f}"
    return f"{figures[0]:.2f} / {statistics.median(figures):.2f} / {figures[-1]:.2f}"


def stage_time(name: str, run: DrainRun) -> float:
    return run.stages.get(name, 0.0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--profile", type=Path, help="write cProfile stats of the last run")
    parser.add_argument(
        "--parse-ahead",
        action="store_true",
        help="parse in a child process, as `gateway serve`'s workers do "
        "(the child's CPU and parsing time are then not counted)",
    )
    args = parser.parse_args(argv)
    clock = StageClock()
    for module, name in STAGES:
        clock.wrap(module, name)
    runs = []
    for run in range(args.repeat):
        profile = cProfile.Profile() if args.profile and run == args.repeat - 1 else None
        runs.append(drain_once(args.messages, args.seed, clock, profile, args.parse_ahead))
        if profile is not None:
            profile.dump_stats(args.profile)
    label = "min / median / max" if args.repeat > 1 else "one run"
    where = "in a child process" if args.parse_ahead else "in the worker"
    print(
        f"{args.messages} messages of the throughput mix, {os.cpu_count()} CPUs, parsed "
        f"{where}; ms a message ({label}):"
    )
    print(f"  filing, wall clock      {per_message(runs, lambda run: run.file_wall)}")
    print(f"  filing, CPU             {per_message(runs, lambda run: run.file_cpu)}")
    print(f"  delivery, wall clock    {per_message(runs, lambda run: run.deliver_wall)}")
    for _, name in STAGES:
        print(f"  in {name:<20} {per_message(runs, functools.partial(stage_time, name))}")
    if args.profile:
        print(f"profile of the last run: {args.profile}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
