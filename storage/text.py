"""Text cleaning: the one home for NULs, lone surrogates and undecoded bytes.

Mail arrives with bytes no charset explains; Python keeps them as lone surrogates
(`surrogateescape`). PostgreSQL refuses those and NUL characters, where SQLite takes both,
and an SMTP reply or a rendered mail cannot be encoded with them. Every stage asks this
module, so a value is cleaned the same way wherever it goes. Pure: text in, text out.
"""

from __future__ import annotations

NUL = "\x00"


def storable(text: str) -> str:
    """`text` fit for any database and any encoder: NULs dropped, undecoded bytes read as
    UTF-8 where they form it, and every other lone surrogate a U+FFFD."""
    if NUL in text:
        text = text.replace(NUL, "")
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        try:
            return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        except UnicodeEncodeError:  # Surrogates no decoder escaped: one U+FFFD each.
            return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    return text


def showable(text: str) -> str:
    """`text` with undecoded bytes shown as `\\xNN` and other lone surrogates escaped: for
    telling a client what it sent, where a replacement character would hide it."""
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a lone surrogate that stands for no byte
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
