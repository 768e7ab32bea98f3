"""The processes of `gateway serve`: none outlives it, and each stops on SIGTERM.

`serve` starts, for each worker, multiprocessing's fork server and resource tracker (shared),
the worker, and the worker's parser child. These tests find them in /proc, record them
before the signal (a killed parent's children are re-parented, so afterwards nothing links
them to it) and check they are gone.
"""

from __future__ import annotations

import os
import signal
import smtplib
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import (
    SUPPORT,
    ServeProcess,
    Sink,
    free_port,
    gateway_env,
    wait_until,
    with_current_schema,
)
from tests.test_faults import customer_mail

# The bound: every child is gone within 2 s of its parent's death.
GONE_SECONDS = 2.0


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    session: int
    command: str

    @property
    def is_worker(self) -> bool:
        """Forked from the fork server: the fork server's own command line, another parent."""
        return "multiprocessing.forkserver" in self.command and self.ppid != self.session


def processes() -> dict[int, Proc]:
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (proc := read_proc(int(entry.name))) is not None:
            found[proc.pid] = proc
    return found


def read_proc(pid: int) -> Proc | None:
    """The process, unless it is gone or a zombie (dead, waiting to be reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return None
    # The command name is in parentheses and may hold spaces: the fields follow the last ")".
    state, ppid, _group, session = stat[stat.rindex(")") + 2 :].split()[:4]
    if state in ("Z", "X"):
        return None
    return Proc(pid, int(ppid), int(session), command)


def descendants(pid: int) -> list[Proc]:
    """`pid`'s children, theirs, and so on; and whatever else is in its session."""
    table = processes()
    found: dict[int, Proc] = {}
    parents = {pid}
    while parents:
        children = [p for p in table.values() if p.ppid in parents and p.pid not in found]
        found.update((p.pid, p) for p in children)
        parents = {p.pid for p in children}
    found.update((p.pid, p) for p in table.values() if p.session == pid and p.pid != pid)
    return sorted(found.values(), key=lambda p: p.pid)


def alive(recorded: list[Proc]) -> list[Proc]:
    """Those of `recorded` still running: same pid and command line (not a reused pid)."""
    return [
        p for p in recorded if (now := read_proc(p.pid)) is not None and now.command == p.command
    ]


def serve_pid(served: ServeProcess) -> int:
    assert served.process is not None
    return served.process.pid


def everything_up(served: ServeProcess, workers: int, parsers: int = 1) -> list[Proc]:
    """Once `serve` runs its workers, at least `parsers` of them with their parser child
    (started by the first batch a worker files): all its descendants."""

    def up() -> list[Proc]:
        found = descendants(serve_pid(served))
        running = sum(p.is_worker for p in found)
        parsing = sum("gateway.parse_ahead" in p.command for p in found)
        trackers = sum("multiprocessing.resource_tracker" in p.command for p in found)
        return found if (running, trackers) == (workers, 1) and parsing >= parsers else []

    return list(wait_until(up, 30, f"{workers} worker(s), {parsers} parser(s) and helpers"))


def send(port: int, number: int) -> None:
    """A new problem report; `acknowledged` once its ticket is open."""
    # Each from a sender of its own: the loop guard limits the automatic mail to one.
    sender = f"customer{number}@customer.example"
    with smtplib.SMTP("127.0.0.1", port) as smtp:
        smtp.sendmail(sender, [SUPPORT], customer_mail(number, sender))


def acknowledged(sink: Sink, number: int) -> bool:
    subject = f"Fault case {number:04d}"
    return any(subject in str(mail.message["Subject"]) for mail in sink.received)


def busy_gateway(tmp_path: Path, sink: Sink, workers: int) -> ServeProcess:
    port = free_port()
    env = gateway_env(
        tmp_path / "var",
        GATEWAY_SMTP_LISTEN=f"127.0.0.1:{port}",
        GATEWAY_RELAY=f"127.0.0.1:{sink.port}",
        GATEWAY_WORKERS=str(workers),
    )
    with_current_schema(env)
    serve = ServeProcess(env, port, (tmp_path / "serve.log").open("ab"))
    serve.start()
    # The parser children start with the first batch; enough mail for each worker to have one.
    for number in range(workers * 4):
        send(port, number)
    return serve


def test_no_child_outlives_serve_killed_with_sigkill(tmp_path: Path, sink: Sink) -> None:
    serve = busy_gateway(tmp_path, sink, workers=2)
    try:
        recorded = everything_up(serve, workers=2)
        assert any("multiprocessing.forkserver" in p.command and not p.is_worker for p in recorded)
        os.kill(serve_pid(serve), signal.SIGKILL)  # `serve` alone, as the OOM killer would.
        assert serve.process is not None and serve.process.wait(5) == -signal.SIGKILL
        # A second more than the bound, for a loaded machine.
        wait_until(lambda: not alive(recorded), GONE_SECONDS + 1, "the children to go")
        # Started again, it files what was accepted, with no orphan beside it.
        serve.start()
        send(serve.port, 100)
        for number in (*range(2 * 4), 100):
            wait_until(lambda n=number: acknowledged(sink, n), 30, f"the ticket of {number}")
    finally:
        serve.stop()
        serve.log.close()


def test_sigterm_stops_a_worker_and_serve_starts_another(tmp_path: Path, sink: Sink) -> None:
    serve = busy_gateway(tmp_path, sink, workers=1)
    try:
        [worker] = [p for p in everything_up(serve, workers=1) if p.is_worker]
        [parser] = [p for p in descendants(worker.pid) if "gateway.parse_ahead" in p.command]
        os.kill(worker.pid, signal.SIGTERM)
        wait_until(lambda: not alive([worker, parser]), 10, "the worker to stop")
        [again] = [p for p in everything_up(serve, workers=1, parsers=0) if p.is_worker]
        assert again.pid != worker.pid
        send(serve.port, 100)
        wait_until(lambda: acknowledged(sink, 100), 30, "the new mail's ticket")
        log = (tmp_path / "serve.log").read_text()
        assert "worker stopped: SIGTERM" in log
        assert "worker process ended (exit code 0); starting another" in log
    finally:
        serve.stop()
        serve.log.close()


def test_sigterm_to_serve_stops_everything_and_mail_it_accepted_waits(
    tmp_path: Path, sink: Sink
) -> None:
    serve = busy_gateway(tmp_path, sink, workers=1)
    try:
        recorded = everything_up(serve, workers=1)
        accepted = range(100, 140)
        for number in accepted:
            send(serve.port, number)
        assert serve.process is not None
        serve.process.send_signal(signal.SIGTERM)
        assert serve.process.wait(30) == 0
        wait_until(lambda: not alive(recorded), GONE_SECONDS, "the children to go")
        serve.start()
        for number in accepted:
            wait_until(lambda n=number: acknowledged(sink, n), 30, f"the ticket of {number}")
    finally:
        serve.stop()
        serve.log.close()


def test_sigterm_to_the_whole_process_group_stops_everything(tmp_path: Path, sink: Sink) -> None:
    """As systemd stops a service: every process of the group gets SIGTERM at once."""
    serve = busy_gateway(tmp_path, sink, workers=2)
    try:
        recorded = everything_up(serve, workers=2)
        for number in range(100, 140):
            send(serve.port, number)
        assert serve.process is not None
        os.killpg(serve.process.pid, signal.SIGTERM)
        assert serve.process.wait(30) == 0
        wait_until(lambda: not alive(recorded), GONE_SECONDS, "the children to go")
        serve.start()
        for number in (*range(2 * 4), *range(100, 140)):
            wait_until(lambda n=number: acknowledged(sink, n), 30, f"the ticket of {number}")
    finally:
        serve.stop()
        serve.log.close()


def comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def test_the_web_service_is_started_again_and_dies_with_serve(tmp_path: Path, sink: Sink) -> None:
    port, web = free_port(), free_port()
    env = gateway_env(
        tmp_path / "var",
        GATEWAY_SMTP_LISTEN=f"127.0.0.1:{port}",
        GATEWAY_RELAY=f"127.0.0.1:{sink.port}",
        GATEWAY_HTTP_LISTEN=f"127.0.0.1:{web}",
    )
    with_current_schema(env)
    serve = ServeProcess(env, port, (tmp_path / "serve.log").open("ab"))
    serve.start()
    health = f"http://127.0.0.1:{web}/healthz"

    def web_child() -> list[Proc]:
        return [p for p in descendants(serve_pid(serve)) if comm(p.pid) == "gateway-web"]

    try:
        [first] = wait_until(web_child, 30, "the web service's process")
        assert urllib.request.urlopen(health, timeout=10).status == 200
        os.kill(first.pid, signal.SIGKILL)
        [again] = wait_until(
            lambda: [p for p in web_child() if p.pid != first.pid], 15, "a new web process"
        )
        assert urllib.request.urlopen(health, timeout=10).status == 200
        log = (tmp_path / "serve.log").read_text()
        assert "web service ended (killed by SIGKILL); starting another" in log
        os.kill(serve_pid(serve), signal.SIGKILL)
        wait_until(lambda: not alive([again]), GONE_SECONDS + 1, "the web process to go")
    finally:
        serve.stop()
        serve.log.close()
