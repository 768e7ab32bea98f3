"""A real MTA in front of the gateway for the tests: Debian's Postfix with a private
configuration in a temporary directory, its smtpd on a free loopback port, configured with
the lines the README gives (`deploy/postfix/`), filled in with this test's paths and ports.

Postfix's master runs as root and its daemons as `mail_owner`, so the tests need root (as
`./dev test` has when it installs Postfix). What a private instance needs beyond the README's
lines: its own `queue_directory` and `data_directory` outside the configuration directory
(`postfix check` wants everything under that one owned by root), the data directory owned by
`mail_owner`, no chroot in master.cf, and a log file (`maillog_file`, allowed by
`maillog_file_prefixes`), since there is no syslog to write to.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import smtplib
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.ports import free_port

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
# The user the README's pipe service and unit run as; the tests' stand-in for it.
SERVICE_USER = "nobody"

MAIN_CF = """\
compatibility_level = 3.6
queue_directory = {root}/queue
data_directory = {root}/data
mail_owner = postfix
setgid_group = postdrop
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = mx.example.com
mydomain = example.com
mydestination = example.com
mynetworks = 127.0.0.0/8
alias_maps =
alias_database =
maillog_file = {root}/maillog
maillog_file_prefixes = {root}
"""

MASTER_CF = """\
127.0.0.1:{port} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
lmtp      unix  -       -       n       -       -       lmtp
smtp      unix  -       -       n       -       -       smtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


def find_postfix() -> str:
    """The postfix command; a clear failure, never a skip, when it is missing."""
    found = shutil.which("postfix") or shutil.which("postfix", path="/usr/sbin:/usr/local/sbin")
    if found is None:
        raise RuntimeError(
            "postfix is not installed: `apt-get install postfix` "
            "(./dev test installs it when run as root)"
        )
    if os.geteuid() != 0:
        raise RuntimeError("Postfix's master runs as root: run the Postfix tests as root")
    return found


def deploy_file(name: str, fills: dict[str, str] | None = None) -> str:
    """A file of `deploy/` as the README quotes it, with each key of `fills` replaced by its
    value; a key that is not in the file fails (the file changed under the test)."""
    text = (DEPLOY / name).read_text()
    for old, new in (fills or {}).items():
        assert old in text, f"deploy/{name} no longer has {old!r}"
        text = text.replace(old, new)
    return text


class Postfix:
    """One private Postfix instance: the tests' base configuration plus the README's lines.
    `config` stands where the README says /etc/postfix."""

    def __init__(self, root: Path) -> None:
        self.postfix = find_postfix()
        self.root = root
        self.config = root / "etc"
        self.port = free_port()
        for name in ("etc", "queue", "data"):
            (root / name).mkdir(mode=0o755)
        shutil.chown(root / "data", "postfix")

    def configure(self, main_cf: str, master_cf: str, transport: str) -> Postfix:
        """The base configuration with these lines added; the transport map compiled."""
        (self.config / "main.cf").write_text(MAIN_CF.format(root=self.root) + main_cf)
        (self.config / "master.cf").write_text(MASTER_CF.format(port=self.port) + master_cf)
        (self.config / "transport").write_text(transport)
        self.command("postmap", f"hash:{self.config}/transport")
        return self

    def command(self, name: str, *args: str) -> str:
        result = subprocess.run(
            [shutil.which(name, path="/usr/sbin:/usr/bin") or name, "-c", str(self.config), *args],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, f"{name} {args}: {result.stderr}\n{self.log()}"
        return result.stdout

    def start(self) -> Postfix:
        self.command("postfix", "start")
        deadline = time.monotonic() + 15
        while not self.listening():
            if time.monotonic() > deadline:
                raise RuntimeError(f"postfix did not start:\n{self.log()}")
            time.sleep(0.05)
        return self

    def listening(self) -> bool:
        try:
            with smtplib.SMTP("127.0.0.1", self.port, timeout=1):
                return True
        except OSError:
            return False

    def stop(self) -> None:
        subprocess.run(
            [self.postfix, "-c", str(self.config), "stop"], capture_output=True, timeout=60
        )

    def send(self, raw: bytes, mail_from: str, to: str) -> None:
        with smtplib.SMTP("127.0.0.1", self.port, timeout=30) as smtp:
            smtp.sendmail(mail_from, [to], raw)

    def queue(self) -> list[dict[str, Any]]:
        """The mail Postfix holds (`postqueue -j`: one JSON object a line)."""
        out = self.command("postqueue", "-j")
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def deferred(self) -> list[dict[str, Any]]:
        return [mail for mail in self.queue() if mail["queue_name"] == "deferred"]

    def flush(self) -> None:
        """`postqueue -f`: try every deferred mail again now."""
        self.command("postqueue", "-f")

    def log(self) -> str:
        path = self.root / "maillog"
        return path.read_text(errors="replace") if path.exists() else "(no log)"


def private_root() -> Path:
    """A temporary directory others may enter: Postfix's daemons and the service user run
    as other users (pytest's tmp_path is private to root)."""
    root = Path(tempfile.mkdtemp(prefix="gateway-postfix-"))
    root.chmod(0o755)
    return root


class ServiceGateway:
    """The `gateway` command run as the service user, as Postfix's pipe runs it.

    Its own virtual environment: the one running the tests may live where only root may
    enter (/root/.pyenv); this one reads this checkout's installed packages."""

    def __init__(self, root: Path, env: dict[str, str]) -> None:
        self.env = env
        version = f"python{sys.version_info.major}.{sys.version_info.minor}"
        candidates = (os.path.realpath(sys.executable), f"/usr/bin/{version}")
        interpreter = next((c for c in candidates if runs_as_service_user(c)), None)
        if interpreter is None:
            raise RuntimeError(f"no {version} the user {SERVICE_USER} may run: install {version}")
        venv = root / "venv"
        subprocess.run([interpreter, "-m", "venv", "--without-pip", str(venv)], check=True)
        packages = sysconfig.get_paths()["purelib"]
        (venv / "lib" / version / "site-packages" / "gateway-checkout.pth").write_text(
            f"import site; site.addsitedir({packages!r})\n"
        )
        self.command = venv / "bin" / "gateway"
        self.command.write_text(
            f"#!{venv}/bin/python\nimport sys\nfrom gateway.cli import main\nsys.exit(main())\n"
        )
        self.command.chmod(0o755)

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(self.command), *args],
            env=self.env,
            user=SERVICE_USER,
            cwd="/",
            capture_output=True,
            text=True,
            timeout=60,
        )
        if check:
            assert result.returncode == 0, result.stderr
        return result


def runs_as_service_user(interpreter: str) -> bool:
    try:
        result = subprocess.run(
            [interpreter, "-c", "pass"], user=SERVICE_USER, capture_output=True, timeout=30
        )
    except OSError:
        return False
    return result.returncode == 0


def chown_to_service_user(path: Path) -> None:
    entry = pwd.getpwnam(SERVICE_USER)
    for place in (path, *path.rglob("*")):
        os.chown(place, entry.pw_uid, entry.pw_gid)
