"""A real IMAP server for the tests: Debian's Dovecot on a free loopback port, with a private
configuration, a passwd-file user and Maildir storage in a temporary directory."""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

from imapclient import IMAPClient

from tests.ports import free_port

USER = "support"
PASSWORD = "imap-secret"

CONFIG = """\
base_dir = {root}/run
state_dir = {root}/state
instance_name = gateway-test-{port}
log_path = {root}/dovecot.log
protocols = imap
# No statistics: a login process waits 5 s for the stats service's handshake as the server
# stops, which every test of the mailbox would pay.
stats_writer_socket_path =
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login{oauth2_mechanisms}
# A refused login is answered at once: the tests of wrong passwords need no brute-force guard.
auth_failure_delay = 0
first_valid_uid = 1
mail_location = maildir:{root}/mail/%u
default_login_user = dovenull
default_internal_user = dovecot
{oauth2_passdb}passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/users
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/mail/%u
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  chroot =
}}
protocol imap {{
  mail_max_userip_connections = 50
{imap_capability}}}
"""


# XOAUTH2 and OAUTHBEARER logins are checked against a token introspection endpoint
# (RFC 7662), as Dovecot does for Gmail- or Microsoft-style OAuth2 set-ups.
OAUTH2_PASSDB = """\
passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {root}/oauth2.conf
}}
"""
OAUTH2_CONFIG = """\
introspection_mode = post
introspection_url = {url}
username_attribute = username
active_attribute = active
active_value = true
force_introspection = yes
"""


def find_dovecot() -> str:
    """The dovecot binary; a clear failure, never a skip, when it is missing."""
    found = shutil.which("dovecot") or shutil.which("dovecot", path="/usr/sbin:/usr/local/sbin")
    if found is None:
        raise RuntimeError(
            "dovecot is not installed: `apt-get install dovecot-imapd` "
            "(./dev test installs it when run as root)"
        )
    return found


def mail_owner() -> tuple[int, int]:
    """Dovecot refuses to store mail as root; as root the tests store it as `nobody`."""
    if os.geteuid() != 0:
        return os.getuid(), os.getgid()
    nobody = pwd.getpwnam("nobody")
    return nobody.pw_uid, nobody.pw_gid


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def port_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.2)
        return probe.connect_ex(("127.0.0.1", port)) == 0


class Dovecot:
    """One private Dovecot instance with one user."""

    def __init__(self, oauth2_introspection_url: str = "", capabilities: str = "") -> None:
        self.binary = find_dovecot()
        self.port = free_port()
        # Outside pytest's tmp_path: its parents are private to root, and Dovecot's mail
        # processes run as another user.
        self.root = Path(tempfile.mkdtemp(prefix="gateway-dovecot-"))
        self.root.chmod(0o755)
        self.process: subprocess.Popen[bytes] | None = None
        uid, gid = mail_owner()
        for name in ("run", "state", "mail"):
            (self.root / name).mkdir()
        os.chown(self.root / "mail", uid, gid)
        (self.root / "users").write_text(f"{USER}:{{PLAIN}}{PASSWORD}::::\n")
        oauth2 = bool(oauth2_introspection_url)
        if oauth2:
            (self.root / "oauth2.conf").write_text(
                OAUTH2_CONFIG.format(url=oauth2_introspection_url)
            )
        (self.root / "dovecot.conf").write_text(
            CONFIG.format(
                root=self.root,
                port=self.port,
                uid=uid,
                gid=gid,
                oauth2_mechanisms=" xoauth2 oauthbearer" if oauth2 else "",
                oauth2_passdb=OAUTH2_PASSDB.format(root=self.root) if oauth2 else "",
                # Announce only these capabilities (to play a server without IDLE, say).
                imap_capability=f"  imap_capability = {capabilities}\n" if capabilities else "",
            )
        )

    def url(self, folder: str = "INBOX", password: bool = True) -> str:
        secret = f":{PASSWORD}" if password else ""
        return f"imap://{USER}{secret}@127.0.0.1:{self.port}/{folder}"

    def start(self) -> Dovecot:
        with open(self.root / "stderr.log", "ab") as errors:
            self.process = subprocess.Popen(
                [self.binary, "-F", "-c", str(self.root / "dovecot.conf")],
                stdout=subprocess.DEVNULL,
                stderr=errors,
            )
        deadline = time.monotonic() + 10
        while not port_open(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"dovecot did not start: {self.log()}")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        """Stop the server as an operator would. Its IMAP processes outlive the master by
        about 10 s before saying BYE, so they are told to end with it, as a host's shutdown
        would."""
        if self.process is None:
            return
        sessions = self.sessions()
        self.process.terminate()
        self.process.wait(10)
        self.process = None
        for pid in sessions:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while (port_open(self.port) or any(alive(pid) for pid in sessions)) and (
            time.monotonic() < deadline
        ):
            time.sleep(0.05)

    def drop_connections(self) -> None:
        """Kill the processes serving IMAP sessions: the connections drop without a BYE, as
        when a server crashes or a middlebox forgets them."""
        for pid in self.sessions():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def sessions(self) -> list[int]:
        """The processes serving IMAP sessions: the master's children named `imap`."""
        assert self.process is not None
        found = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                text = stat.read_text()
            except OSError:
                continue
            name, rest = text.split("(", 1)[1].rsplit(")", 1)
            if int(rest.split()[1]) == self.process.pid and name == "imap":
                found.append(int(stat.parent.name))
        return found

    def restart(self) -> None:
        self.stop()
        self.start()

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def log(self) -> str:
        parts = [
            path.read_text(errors="replace")
            for path in (self.root / "stderr.log", self.root / "dovecot.log")
            if path.exists()
        ]
        return "\n".join(parts) or "(no log)"

    def client(self) -> IMAPClient:
        client = IMAPClient("127.0.0.1", self.port, ssl=False, timeout=10)
        client.login(USER, PASSWORD)
        return client

    def append(self, raw: bytes, folder: str = "INBOX", flags: tuple[bytes, ...] = ()) -> None:
        with self.client() as client:
            if not client.folder_exists(folder):
                client.create_folder(folder)
            client.append(folder, raw, flags=flags)

    def messages(self, folder: str = "INBOX") -> dict[int, tuple[bytes, ...]]:
        """UID → flags of every message in `folder`."""
        with self.client() as client:
            if not client.folder_exists(folder):
                return {}
            client.select_folder(folder, readonly=True)
            uids = client.search(["ALL"])
            fetched = client.fetch(uids, ["FLAGS"]) if uids else {}
            return {int(uid): tuple(data[b"FLAGS"]) for uid, data in fetched.items()}


class TokenIntrospection:
    """A token introspection endpoint on loopback that knows one valid access token."""

    VALID_TOKEN = "valid-access-token"

    def __init__(self) -> None:
        valid = self.VALID_TOKEN

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (the name http.server calls)
                length = int(self.headers.get("Content-Length", 0))
                form = parse_qs(self.rfile.read(length).decode())
                active = form.get("token") == [valid]
                answer = {"active": True, "username": USER} if active else {"active": False}
                body = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/introspect"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
