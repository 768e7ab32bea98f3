"""Talking to the IMAP server: connecting and logging in (a password, or an OAuth2 token
from a file or a command), waiting in IDLE, backing off while it is away.

imapclient's and the connection's failures become ours in one place, `mailbox_errors()`:
`MailboxUnavailable` while the server is down or goes away, `MailboxLoginRefused` (a
setting to fix) when it refuses the login.
"""

from __future__ import annotations

import imaplib
import logging
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from imapclient import IMAPClient
from imapclient.exceptions import LoginError

from gateway.errors import ConfigError, MailboxLoginRefused, MailboxUnavailable
from gateway.setting_values import ImapAccount
from gateway.settings import Imap

log = logging.getLogger(__name__)

# RFC 2177 allows 29 minutes; renewing sooner also reads the folder again now and then,
# a safety net for any notification that goes astray.
IDLE_RENEW_SECONDS = 120.0
# How long one IDLE wait blocks, so a stop request is seen promptly.
IDLE_CHECK_SECONDS = 1.0
SOCKET_TIMEOUT_SECONDS = 30.0
BACKOFF_FIRST_SECONDS = 1.0
BACKOFF_MAX_SECONDS = 60.0
# Errors that mean the connection or the server is gone, not that the mail is bad.
CONNECTION_ERRORS = (OSError, imaplib.IMAP4.abort, imaplib.IMAP4.error, EOFError)


@contextmanager
def mailbox_errors(account: ImapAccount) -> Iterator[None]:
    """Raise imapclient's and the connection's failures as `MailboxUnavailable`."""
    try:
        yield
    except CONNECTION_ERRORS as exc:
        raise unavailable(account, describe(exc)) from exc


def unavailable(account: ImapAccount, detail: str) -> MailboxUnavailable:
    return MailboxUnavailable(f"IMAP server {account} unavailable: {detail}")


@contextmanager
def connected(settings: Imap) -> Iterator[IMAPClient]:
    """A client logged in to the mailbox, its folder there (and the done folder made); a
    refused login is a `ConfigError` naming the setting, a server gone `MailboxUnavailable`."""
    account = settings.account
    assert account is not None
    with mailbox_errors(account):
        client = IMAPClient(
            account.host, account.port, ssl=account.tls, timeout=SOCKET_TIMEOUT_SECONDS
        )
    with mailbox_errors(account), logged_in(client, settings, account):
        yield client


@contextmanager
def logged_in(client: IMAPClient, settings: Imap, account: ImapAccount) -> Iterator[None]:
    try:
        log_in(client, settings, account)
        if not client.folder_exists(account.folder):
            raise ConfigError(
                f"GATEWAY_IMAP_URL: there is no folder {account.folder!r} in "
                f"{account.user}'s mailbox"
            )
        if settings.folder_done and not client.folder_exists(settings.folder_done):
            client.create_folder(settings.folder_done)
        yield
    finally:
        try:
            client.logout()
        except CONNECTION_ERRORS:
            client.shutdown()


def log_in(client: IMAPClient, settings: Imap, account: ImapAccount) -> None:
    by_token = bool(settings.oauth2_token_file or settings.oauth2_token_command)
    try:
        if by_token:
            client.oauth2_login(account.user, oauth2_token(settings))
        else:
            client.login(account.user, password(settings, account))
    except LoginError as exc:
        setting = (
            "GATEWAY_IMAP_OAUTH2_TOKEN_FILE/GATEWAY_IMAP_OAUTH2_TOKEN_COMMAND"
            if by_token
            else "GATEWAY_IMAP_PASSWORD_FILE"
            if settings.password_file
            else "GATEWAY_IMAP_URL"
        )
        raise MailboxLoginRefused(
            f"{setting}: {account.host} refused the login of {account.user!r}: {describe(exc)}"
        ) from None


def password(settings: Imap, account: ImapAccount) -> str:
    if settings.password_file is None:
        return account.password
    return read_secret_file("GATEWAY_IMAP_PASSWORD_FILE", settings.password_file)


def oauth2_token(settings: Imap) -> str:
    if settings.oauth2_token_file is not None:
        return read_secret_file("GATEWAY_IMAP_OAUTH2_TOKEN_FILE", settings.oauth2_token_file)
    try:
        done = subprocess.run(
            settings.oauth2_token_command,
            shell=True,
            check=True,
            capture_output=True,
            text=True,
            timeout=60,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise ConfigError(f"GATEWAY_IMAP_OAUTH2_TOKEN_COMMAND failed: {exc}") from None
    token = done.stdout.strip()
    if not token:
        raise ConfigError("GATEWAY_IMAP_OAUTH2_TOKEN_COMMAND printed no token")
    return token


def wait_in_idle(client: IMAPClient, stop: threading.Event, account: ImapAccount) -> None:
    """Wait in IDLE until the server reports a change, `stop` is set or it is time to renew."""
    client.idle()
    renew_at = time.monotonic() + IDLE_RENEW_SECONDS
    try:
        while not stop.is_set() and time.monotonic() < renew_at:
            if notification_buffered(client):
                return
            started = time.monotonic()
            responses = client.idle_check(timeout=IDLE_CHECK_SECONDS)
            if any(isinstance(r, tuple) and b"BYE" in r for r in responses):
                raise unavailable(account, "the server said BYE")
            if responses:
                return
            # idle_check swallows EOF: a socket that is readable yet yields no response
            # before the timeout is a connection the server (or a middlebox) has dropped.
            if time.monotonic() - started < IDLE_CHECK_SECONDS / 2:
                raise unavailable(account, "the connection was closed")
    finally:
        client.idle_done()


def notification_buffered(client: IMAPClient) -> bool:
    """Whether a server response already sits in imaplib's read buffer.

    imaplib reads the socket in chunks, so an `EXISTS` that arrives in the same packet as
    IDLE's `+ idling` continuation is buffered with it, and `idle_check()`, which polls the
    socket, would not see it until something else arrived. Peeking needs imaplib's file
    object (`IMAPClient._imap.file`): there is no public way to ask.
    """
    sock = client.socket()
    sock.setblocking(False)
    try:
        return bool(client._imap.file.peek(1))
    except OSError:  # Nothing buffered and nothing to read (EAGAIN, or TLS wants more).
        return False
    finally:
        sock.settimeout(SOCKET_TIMEOUT_SECONDS)


class Outage:
    """Backoff between reconnects, logged once when an outage begins and once when it ends."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.since: float | None = None
        self.attempts = 0

    def began(self, reason: str) -> float:
        """Note a failed attempt and why; the seconds to wait before the next."""
        if self.since is None:
            self.since = time.monotonic()
            log.warning("%s; trying again with backoff", reason)
        self.attempts += 1
        return float(min(BACKOFF_MAX_SECONDS, BACKOFF_FIRST_SECONDS * 2 ** (self.attempts - 1)))

    def ended(self) -> None:
        if self.since is not None:
            log.warning(
                "IMAP %s reachable again after %.0fs and %d attempt(s)",
                self.what,
                time.monotonic() - self.since,
                self.attempts,
            )
        self.since, self.attempts = None, 0


def read_secret_file(key: str, path: Path) -> str:
    try:
        secret = path.read_text("utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"{key}: cannot read {path}: {exc.strerror}") from None
    if not secret:
        raise ConfigError(f"{key}: {path} is empty")
    return secret


def describe(exc: BaseException) -> str:
    text = str(exc)
    if isinstance(exc, LoginError) and text.startswith("b'"):
        text = text[2:-1]
    return text or type(exc).__name__
