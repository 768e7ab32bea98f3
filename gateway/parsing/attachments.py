"""Attachments: the files a message carries, forwarded messages and inline `cid:` images
included, each with a display name safe to show.

Whether mail-parser read the tree or the stdlib's tree is read alone, each file is first an
`AttachedPart`: as found in the message, its bytes decoded from their transfer encoding.
Then Outlook's `winmail.dat` (TNEF) is replaced by the files inside it, and the names
mail-parser makes up for unnamed parts are dropped, so the same message always parses the
same way. Base64 is read as broken clients write it.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import logging
import mimetypes
import quopri
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message
from email.policy import Compat32
from typing import Any

from tnefparse import TNEF

from gateway.parsing.addresses import normalize_message_id
from gateway.parsing.charsets import decode_header_value
from gateway.parsing.mime import content_disposition, filename_of, is_attachment_part

log = logging.getLogger(__name__)

# The names mail-parser gives unnamed text and RTF parts: ten random lowercase letters.
INVENTED_NAME = re.compile(r"[a-z]{10}\.(?:txt|rtf)")
# Most file systems take names of at most 255 bytes; an extension longer than this is
# more likely part of the name than a file type.
MAX_NAME_BYTES = 255
MAX_EXTENSION_CHARACTERS = 16
# Names Windows keeps for devices, whatever the case or extension (superscript digits too).
WINDOWS_DEVICE = re.compile(r"(?i)(?:CON|PRN|AUX|NUL|CONIN\$|CONOUT\$|(?:COM|LPT)[0-9¹²³])")


@dataclass(frozen=True, slots=True)
class AttachedPart:
    """A file found in the message, as found: its name and Content-ID not yet read, its
    bytes decoded from their transfer encoding."""

    filename: str
    content_type: str
    data: bytes
    content_id: str
    disposition: str


@dataclass(frozen=True, slots=True)
class ParsedAttachment:
    """One attached (or inline `cid:`) file, with a display name safe to show."""

    filename: str
    content_type: str
    data: bytes
    content_id: str | None
    inline: bool
    # Where the blob store keeps `data`.
    sha256: str


def found_parts(message: Message, listed: list[dict[str, Any]] | None) -> list[AttachedPart]:
    """The files of `message`: as mail-parser `listed` them, else as found in the stdlib's
    tree; forwarded messages included."""
    if listed is None:
        return [*parts_in_tree(message), *map(forwarded_message, outermost_messages(message))]
    # mail-parser lists a forwarded message only when it is marked as an attachment.
    forwarded = [
        part for part in outermost_messages(message) if content_disposition(part) != "attachment"
    ]
    return [*map(listed_part, listed), *map(forwarded_message, forwarded)]


def listed_part(item: dict[str, Any]) -> AttachedPart:
    """One file as mail-parser lists it: the one reader of its records, whose payload is
    base64 text when `binary` is set and the decoded text otherwise."""
    payload = item.get("payload") or ""
    if item.get("binary"):
        data = decode_base64_leniently(str(payload))
    else:
        data = str(payload).encode("utf-8", "surrogateescape")
    return AttachedPart(
        filename=str(item.get("filename") or ""),
        content_type=str(item.get("mail_content_type") or "application/octet-stream").lower(),
        data=data,
        content_id=str(item.get("content-id") or ""),
        disposition=str(item.get("content-disposition") or ""),
    )


def parts_in_tree(message: Message) -> list[AttachedPart]:
    """The files of the stdlib's tree: parts named or marked as attachments, and non-text
    parts that a Content-ID links to."""
    found: list[AttachedPart] = []
    for part in message.walk():
        named_or_linked = is_attachment_part(part) or (
            part.get("content-id") is not None and part.get_content_maintype() != "text"
        )
        if part.is_multipart() or not named_or_linked:
            continue
        payload = part.get_payload(decode=True)
        found.append(
            AttachedPart(
                filename=filename_of(part) or "",
                content_type=part.get_content_type(),
                data=payload if isinstance(payload, bytes) else b"",
                content_id=str(part.get("content-id") or ""),
                disposition=str(part.get("content-disposition") or ""),
            )
        )
    return found


def outermost_messages(part: Message) -> Iterator[Message]:
    """`message/rfc822` parts, not counting messages forwarded inside them."""
    if part.get_content_type() == "message/rfc822":
        yield part
    elif part.is_multipart():
        for child in part.get_payload():
            if isinstance(child, Message):
                yield from outermost_messages(child)


def forwarded_message(part: Message) -> AttachedPart:
    """A forwarded message as one file, as the stdlib writes the message out."""
    inner = part.get_payload()
    if isinstance(inner, list) and inner and isinstance(inner[0], Message):
        data = message_bytes(inner[0])
    else:
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
    # RFC 2046 forbids encoding a message/rfc822 part; some clients base64 it anyway, and the
    # stdlib then reads the encoded text as the message.
    encoding = str(part.get("content-transfer-encoding") or "").strip().lower()
    if encoding == "base64":
        data = decode_base64_leniently(data.decode("ascii", "ignore"))
    elif encoding == "quoted-printable":
        data = quopri.decodestring(data)
    return AttachedPart(
        filename=filename_of(part) or "",
        content_type="message/rfc822",
        data=data,
        content_id="",
        disposition=str(part.get("content-disposition") or ""),
    )


class KeepUndecodedHeaders(Compat32):
    """compat32, except that a header value holding bytes that were never decoded is
    written as it came, as compat32's own binary output does: its text output folds such a
    value through `email.header` in quadratic time."""

    def fold(self, name: str, value: Any) -> str:
        if isinstance(value, str) and UNDECODED_BYTE.search(value):
            return f"{name}: {value}{self.linesep}"
        return super().fold(name, value)


UNDECODED_BYTE = re.compile("[\udc80-\udcff]")  # what surrogateescape made of a byte
KEEP_UNDECODED_HEADERS = KeepUndecodedHeaders()


def message_bytes(message: Message) -> bytes:
    """A message written out by the stdlib; raw 8-bit header bytes it cannot re-encode are
    kept as they came."""
    try:
        return message.as_bytes()
    except (UnicodeError, LookupError, ValueError):
        return message.as_string(policy=KEEP_UNDECODED_HEADERS).encode("utf-8", "surrogateescape")


def read_attachments(
    parts: list[AttachedPart], hint: str | None, raw: bytes
) -> tuple[ParsedAttachment, ...]:
    """The files found, as shown: winmail.dat unpacked, names made safe."""
    return tuple(unpack_tnef(extract_attachments(parts, hint, raw)))


def extract_attachments(
    parts: list[AttachedPart], hint: str | None, raw: bytes
) -> Iterator[ParsedAttachment]:
    for index, part in enumerate(parts, start=1):
        content_id = normalize_message_id(part.content_id) or None
        filename = "" if is_invented_name(part.filename, content_id, raw) else part.filename
        yield ParsedAttachment(
            filename=safe_display_name(filename, part.content_type, index, hint),
            content_type=part.content_type[:255],
            data=part.data,
            content_id=content_id,
            inline=bool(content_id) and not part.disposition.lower().startswith("attachment"),
            sha256=hashlib.sha256(part.data).hexdigest(),
        )


def unpack_tnef(attachments: Iterator[ParsedAttachment]) -> Iterator[ParsedAttachment]:
    """Outlook's `winmail.dat` (TNEF) replaced by the files it carries; kept as it is when
    it carries none or cannot be read, so nothing the customer sent goes missing."""
    for attachment in attachments:
        if not is_tnef(attachment):
            yield attachment
            continue
        try:
            carried = TNEF(attachment.data, do_checksum=False).attachments
            files = [(str(item.long_filename() or ""), bytes(item.data)) for item in carried]
        except Exception as exc:  # tnefparse raises bare errors on damaged containers.
            log.info("winmail.dat kept as it is: %s: %s", type(exc).__name__, exc)
            yield attachment
            continue
        if not files:
            yield attachment
        for index, (name, data) in enumerate(files, start=1):
            content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
            yield ParsedAttachment(
                safe_display_name(name, content_type, index, None),
                content_type,
                data,
                None,
                False,
                hashlib.sha256(data).hexdigest(),
            )


def is_tnef(attachment: ParsedAttachment) -> bool:
    return (
        attachment.content_type in ("application/ms-tnef", "application/vnd.ms-tnef")
        or attachment.filename.lower() == "winmail.dat"
    )


def is_invented_name(filename: str, content_id: str | None, raw: bytes) -> bool:
    """Whether mail-parser made `filename` up for an unnamed part.

    It names such parts after their Content-ID, or `<ten random letters>.txt` / `.rtf`, which
    would make the same message parse differently each time; a real name is in the message.
    """
    if content_id and normalize_message_id(filename) == content_id:
        return True
    return bool(INVENTED_NAME.fullmatch(filename)) and filename.encode() not in raw


def decode_base64_leniently(text: str) -> bytes:
    """Base64 as broken clients write it: stray characters, missing or extra padding."""
    first_pad = text.find("=")
    if text.isascii() and (first_pad < 0 or not text[first_pad:].strip("=\r\n\t ")):
        # The common case without copies of the text: binascii skips line breaks and
        # stray characters as the slow path below does.
        with contextlib.suppress(binascii.Error):
            return binascii.a2b_base64(text)
    cleaned = re.sub(r"[^A-Za-z0-9+/]", "", text)
    if len(cleaned) % 4 == 1:
        cleaned = cleaned[:-1]
    return base64.b64decode(cleaned + "=" * (-len(cleaned) % 4))


def safe_display_name(name: str, content_type: str, index: int, hint: str | None) -> str:
    """A name fit to show and to save on any system: decoded, no path, no control
    characters, at most `MAX_NAME_BYTES` of UTF-8 with its extension kept, and neither a
    Windows device name nor ending in a dot or a space (Windows drops those, so the file
    would not open under the name it was saved with). Otherwise as the sender wrote it."""
    name = decode_header_value(name, hint)
    name = re.split(r"[/\\]", name)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    name = name_within_bytes(name.strip().lstrip(".").rstrip(". "), MAX_NAME_BYTES)
    if not name:
        extension = mimetypes.guess_extension(content_type) or ".bin"
        name = f"attachment-{index}{extension}"
    if is_device_name(name):
        name = name_within_bytes("_" + name, MAX_NAME_BYTES)
    return name


def name_within_bytes(name: str, limit: int) -> str:
    """`name` cut to at most `limit` bytes of UTF-8 on a character boundary, its extension
    kept; never ending in a dot or a space."""
    if len(name.encode()) <= limit:
        return name
    stem, dot, extension = name.rpartition(".")
    if dot and stem and len(extension) <= MAX_EXTENSION_CHARACTERS and " " not in extension:
        kept = cut_utf8(stem, limit - len(extension.encode()) - 1).rstrip(". ")
        if kept:
            return f"{kept}.{extension}"
    return cut_utf8(name, limit).rstrip(". ")


def cut_utf8(text: str, limit: int) -> str:
    """The longest prefix of `text` whose UTF-8 takes at most `limit` bytes."""
    return text.encode()[: max(limit, 0)].decode("utf-8", "ignore")


def is_device_name(name: str) -> bool:
    """Whether Windows reads `name` as a device (`CON`, `nul.txt`, `Com1.tar.gz`): its part
    before the first dot, trailing spaces aside, is a reserved name."""
    return bool(WINDOWS_DEVICE.fullmatch(name.split(".", 1)[0].rstrip(" ")))
