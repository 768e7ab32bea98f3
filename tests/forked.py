"""`gateway` commands as processes of their own, without a second of start-up each.

`python -m gateway` spends about a second starting Python and importing the gateway, most of
the time of a short command, and the tests run hundreds of them. A zygote process imports
`gateway.cli` once per test process; each command then runs in a process forked from it,
with the test's environment, working directory, standard input, output and error, and its
own exit status, as `python -m gateway` has them. Multiprocessing's fork server does the
same for the gateway's workers.

An environment that changes how Python itself starts (PYTHON*, the locale, TZ) gets a fresh
interpreter; so do the tests that run the command through `subprocess` themselves.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import BinaryIO

# Runs in the zygote. Each command is forked twice: the middle process waits for the
# command and reports its pid and exit status, so the zygote itself waits for nobody and
# serves the next request (two threads of a test may run commands at once).
ZYGOTE = r"""
import json, os, select, signal, socket, sys

import gateway.cli


def run(request):
    os.chdir(request["cwd"])
    for fd, name, flags in ((0, "stdin", os.O_RDONLY), (1, "stdout", os.O_WRONLY),
                            (2, "stderr", os.O_WRONLY)):
        opened = os.open(request[name], flags)
        os.dup2(opened, fd)
        os.close(opened)
    os.environ.clear()
    os.environ.update(request["env"])
    sys.argv = ["gateway", *request["argv"]]
    raise SystemExit(gateway.cli.main(request["argv"]))


def handle(connection):
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    request = json.loads(connection.makefile("rb").readline())
    command = os.fork()
    if command == 0:
        connection.close()
        run(request)
    connection.sendall(f"{command}\n".encode())
    _, status = os.waitpid(command, 0)
    connection.sendall(f"{os.waitstatus_to_exitcode(status)}\n".encode())
    os._exit(0)


def serve(address):
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(address + ".new")
    listener.listen(64)
    os.rename(address + ".new", address)
    while True:
        ready, _, _ = select.select([listener, sys.stdin], [], [])
        if sys.stdin in ready:
            return
        connection, _ = listener.accept()
        if os.fork() == 0:
            listener.close()
            handle(connection)
        connection.close()


serve(sys.argv[1])
"""
# What Python reads from the environment as it starts, before any command runs.
INTERPRETER_VARIABLES = ("PYTHON", "LANG", "LC_", "TZ")


class Zygote:
    """The process commands are forked from; it ends with the test process."""

    def __init__(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="gateway-zygote-"))
        self.address = self.directory / "socket"
        self.process = subprocess.Popen(
            [sys.executable, "-c", ZYGOTE, str(self.address)], stdin=subprocess.PIPE
        )
        atexit.register(self.stop)

    def ready(self, timeout: float) -> None:
        """Until it listens, which it does once it has imported the gateway."""
        deadline = time.monotonic() + timeout
        while not self.address.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the command zygote did not start ({self.process.poll()})")
            time.sleep(0.02)

    def run(
        self, argv: list[str], env: dict[str, str], stdin: bytes, timeout: float
    ) -> tuple[int, bytes, bytes]:
        """Exit status, standard output and error of `gateway ARGV` in a forked process."""
        with tempfile.TemporaryDirectory(dir=self.directory) as scratch:
            files = {name: Path(scratch) / name for name in ("stdin", "stdout", "stderr")}
            files["stdin"].write_bytes(stdin)
            files["stdout"].touch()
            files["stderr"].touch()
            request = {"argv": argv, "env": env, "cwd": os.getcwd()}
            request.update({name: str(path) for name, path in files.items()})
            code = self.exchange(request, argv, timeout)
            return code, files["stdout"].read_bytes(), files["stderr"].read_bytes()

    def exchange(self, request: dict[str, object], argv: list[str], timeout: float) -> int:
        """The command's exit status. The zygote answers with the command's pid, then its
        status; either answer that does not come within `timeout` is the command's timeout
        (the command killed if it has started), either that is missing the zygote's loss."""
        with socket.socket(socket.AF_UNIX) as connection:
            connection.connect(str(self.address))
            connection.sendall(json.dumps(request).encode() + b"\n")
            connection.settimeout(timeout)
            replies = connection.makefile("rb")
            pid = None
            try:
                pid = int(answer(replies, argv))
                return int(answer(replies, argv))
            except TimeoutError:
                if pid is not None:
                    os.kill(pid, 9)
                raise subprocess.TimeoutExpired(["gateway", *argv], timeout) from None

    def stop(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(10)
        shutil.rmtree(self.directory, ignore_errors=True)


def answer(replies: BinaryIO, argv: list[str]) -> bytes:
    """One line of the zygote's answer about `gateway ARGV`."""
    line = replies.readline()
    if not line:
        raise RuntimeError(f"the command zygote lost `gateway {' '.join(argv)}`")
    return line


_zygote: Zygote | None = None
_starting = threading.Lock()


def zygote() -> Zygote:
    global _zygote
    with _starting:
        if _zygote is None:
            started = Zygote()
            started.ready(60)
            _zygote = started
        return _zygote


def starts_python_as_we_did(env: dict[str, str]) -> bool:
    """Whether `env` sets what Python reads as it starts as this process's environment did
    (which the zygote has)."""
    names = {name for name in (*env, *os.environ) if name.startswith(INTERPRETER_VARIABLES)}
    return all(env.get(name) == os.environ.get(name) for name in names)


def run_forked(
    argv: list[str], env: dict[str, str], stdin: bytes, timeout: float
) -> tuple[int, bytes, bytes] | None:
    """`gateway ARGV` forked from the zygote; None where it needs a fresh interpreter."""
    if not starts_python_as_we_did(env):
        return None
    return zygote().run(argv, env, stdin, timeout)
