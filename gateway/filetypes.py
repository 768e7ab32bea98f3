"""What a file really is, and how it may be forwarded: the type of a file we pass on comes
from its bytes, never from the type its sender declared, and a file that could run code
when opened is passed on so that it cannot be opened by a click.

`forwarded(filename, declared, data)` reads the file's first bytes: magic numbers for the
common binary types (PNG, JPEG, GIF, WebP, PDF, ZIP and the Office formats built on it,
gzip); markup for HTML, XHTML, SVG and XML, wherever it starts; text for the rest that is
text. A binary file of a kind we do not know keeps its declared type, unless that type is
one we know (its bytes would have said so) or active.

Active content is what a browser or the desktop runs when the file is opened: HTML, XHTML,
SVG, XML (with XSLT it is HTML again), JavaScript, and the scripts and programs Windows runs
by their name (`ACTIVE_EXTENSIONS`). It is found by the bytes (markup), by the name's
extension and by the declared type; any one is enough, and it goes out as
`application/octet-stream` with `.bin` added to its name: `report.html` becomes
`report.html.bin`. Why `.bin` and not `.txt`: no browser, mail client or desktop opens a
`.bin` file by itself, so a click can only save it, while `.txt` opens in a browser on some
systems, and a browser that sniffs text (old Internet Explorer, and any viewer that looks
past the name) renders the HTML inside it after all. The original name stays readable in
the new one, so the engineer knows what it was and can rename it on purpose.

Pure: no database, no network; the caller says why in the notice (`Forwarded.active`).
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

# How much of a file is read to tell its type.
HEAD_OCTETS = 65536
# Magic numbers at the start of a file (WHATWG MIME Sniffing 6.1 and the formats' specs).
MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"%PDF-", "application/pdf"),
    (b"\x1f\x8b\x08", "application/gzip"),
    (b"PK\x03\x04", "application/zip"),
    (b"PK\x05\x06", "application/zip"),
)
# The types the bytes of a file of that type would have shown: declared, not shown, wrong.
KNOWN_BY_BYTES = {kind for _, kind in MAGIC} | {"image/webp", "image/jpg", "image/pjpeg"}
# The ZIP-based formats by their extension; a ZIP declared as one of these keeps the type.
ZIP_BASED = {
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "odt": "application/vnd.oasis.opendocument.text",
    "ods": "application/vnd.oasis.opendocument.spreadsheet",
    "odp": "application/vnd.oasis.opendocument.presentation",
    "epub": "application/epub+zip",
}
# What an extension runs when the file is opened, by name: browsers open markup and
# Windows runs scripts and programs.
ACTIVE_EXTENSIONS = {
    **dict.fromkeys(("html", "htm", "shtml", "mht", "mhtml", "hta", "htc"), "HTML"),
    **dict.fromkeys(("xhtml", "xht"), "XHTML"),
    **dict.fromkeys(("svg", "svgz"), "SVG"),
    **dict.fromkeys(("xml", "xsl", "xslt"), "XML"),
    **dict.fromkeys(("js", "mjs", "jse"), "JavaScript"),
    **dict.fromkeys(("vbs", "vbe", "wsf", "wsh", "ps1", "bat", "cmd"), "script"),
    **dict.fromkeys(("exe", "com", "scr", "pif", "msi", "cpl", "jar", "lnk", "reg"), "program"),
    "swf": "Flash",
}
# Declared types that are active by themselves.
ACTIVE_TYPES = {
    "text/html": "HTML",
    "application/xhtml+xml": "XHTML",
    "image/svg+xml": "SVG",
    "text/xml": "XML",
    "application/xml": "XML",
    "text/xsl": "XML",
    "text/javascript": "JavaScript",
    "application/javascript": "JavaScript",
    "application/x-javascript": "JavaScript",
    "application/ecmascript": "JavaScript",
    "text/ecmascript": "JavaScript",
    "text/vbscript": "script",
    "application/hta": "HTML",
    "text/x-component": "HTML",
    "application/x-shockwave-flash": "Flash",
    "application/x-msdownload": "program",
}
# Markup at the start of a text (after white space): what browsers take for HTML (WHATWG
# MIME Sniffing 7.1), XML and SVG.
HTML_START = re.compile(
    rb"<(?:!doctype\s+html|html|head|script|iframe|h1|div|font|table|a|style|title|b|body|br|p"
    rb")[\s>/]|<!--",
)
# Markup anywhere in the first bytes that makes a text HTML for a browser that looks.
HTML_ANYWHERE = re.compile(rb"<(?:script|iframe|object|embed|html|body|frameset|meta\s)[\s>/]")
XHTML = re.compile(rb"<html[\s>]|http://www\.w3\.org/1999/xhtml")
SVG = re.compile(rb"<svg[\s>/:]")
# Bytes that occur in text (printable, white space, escape, and every byte of 8-bit text).
TEXT_BYTES = bytes([9, 10, 12, 13, 27, *range(32, 127), *range(128, 256)])
SAFE_SUFFIX = ".bin"
SAFE_TYPE = "application/octet-stream"


@dataclass(frozen=True, slots=True)
class Forwarded:
    """How a file goes out: its name and type, and what makes it active ('' if nothing)."""

    filename: str
    content_type: str
    # "HTML", "SVG", "XML", "JavaScript", "script", "program"...: why it was made safe.
    active: str = ""


def forwarded(filename: str, declared: str, data: bytes) -> Forwarded:
    """`data` with a type that matches its bytes, made safe when it is active."""
    declared = declared.partition(";")[0].strip().lower()
    head = data[:HEAD_OCTETS]
    extension = extension_of(filename)
    by_magic = magic_type(head)
    active = active_kind(extension, declared, head, by_magic)
    if active:
        return Forwarded(safe_name(filename), SAFE_TYPE, active)
    if by_magic == "application/zip":
        return Forwarded(filename, zip_type(declared, extension))
    if by_magic:
        return Forwarded(filename, by_magic)
    return Forwarded(filename, unrecognised_type(head, declared))


def active_kind(extension: str, declared: str, head: bytes, by_magic: str) -> str:
    """What makes the file active: its name, else (unless a magic number says what it is,
    whatever its sender declared) its markup or its declared type; '' when nothing does."""
    if extension in ACTIVE_EXTENSIONS:
        return ACTIVE_EXTENSIONS[extension]
    if by_magic:
        return ""
    if kind := markup_kind(head) or ACTIVE_TYPES.get(declared, ""):
        return kind
    return "XML" if declared.endswith("+xml") else ""


def extension_of(filename: str) -> str:
    """The extension Windows and browsers go by: the last, trailing dots and spaces gone."""
    stem, dot, extension = filename.rstrip(". ").rpartition(".")
    return extension.lower() if dot and stem else ""


def magic_type(head: bytes) -> str:
    """The type a magic number at the start says ('' when none does)."""
    for magic, kind in MAGIC:
        if head.startswith(magic):
            return kind
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return ""


def markup_kind(head: bytes) -> str:
    """What markup a browser would render the text as: HTML, XHTML, SVG, XML, or none."""
    text = as_ascii(head).lower()
    start = text.lstrip()
    if SVG.search(text):
        return "SVG"
    if start.startswith(b"<?xml"):
        return "XHTML" if XHTML.search(text) else "XML"
    if HTML_START.match(start) or HTML_ANYWHERE.search(text):
        return "HTML"
    return ""


def as_ascii(head: bytes) -> bytes:
    """The ASCII of a text, whatever its encoding: UTF-16 decoded, NUL bytes dropped."""
    for bom, codec in ((codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be")):
        if head.startswith(bom):
            return head[2:].decode(codec, "ignore").encode("ascii", "ignore")
    return head.removeprefix(codecs.BOM_UTF8).replace(b"\x00", b"")


def is_text(head: bytes) -> bool:
    """No NUL, and almost no other control byte: text, in whatever 8-bit encoding."""
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return True
    odd = head.translate(None, TEXT_BYTES)
    return b"\x00" not in odd and len(odd) * 100 <= len(head)


def zip_type(declared: str, extension: str) -> str:
    """A ZIP's type: the Office (or other ZIP-based) format its name or declared type says."""
    if declared in ZIP_BASED.values() or declared.startswith("application/vnd."):
        return declared
    return ZIP_BASED.get(extension, "application/zip")


def unrecognised_type(head: bytes, declared: str) -> str:
    """A file no magic number names: text as text (its declared text type, if it gave one),
    else its declared type unless its bytes should have shown it, else plain octets."""
    if is_text(head):
        return declared if declared.startswith("text/") else "text/plain"
    if declared in KNOWN_BY_BYTES or declared.startswith("text/") or "/" not in declared:
        return SAFE_TYPE
    return declared


def safe_name(filename: str) -> str:
    """A name no click opens: `.bin` after the whole name (kept to 250 characters)."""
    name = filename.strip()[:250] or "attachment"
    return name if name.lower().endswith(SAFE_SUFFIX) else f"{name}{SAFE_SUFFIX}"
