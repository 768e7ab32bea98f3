"""Charsets: bytes and header values to Unicode, decoded the way real clients encode them.

mail-parser trusts declared charsets: a GBK subject labelled GB2312, Big5 in raw 8-bit
headers or an undeclared ISO-2022-JP body come out of it as mojibake. So text is decoded
here: through `CHARSET_ALIASES` (the supersets that real clients actually send), unless
the bytes are plainly UTF-8 whatever their label says; failing that through detection;
with RFC 2047 encoded-words and raw 8-bit header bytes read leniently, Outlook's
ISO-2022-JP extensions, and CJK text a relay sent through Latin-1 read back.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import quopri
import re
import unicodedata

from charset_normalizer import from_bytes as detect_charset

# Labels clients use for charsets whose real content is a superset.
CHARSET_ALIASES = {
    "gb2312": "gb18030",
    "gb_2312-80": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "cp936": "gb18030",
    "euc-cn": "gb18030",
    "big5": "big5hkscs",
    "x-big5": "big5hkscs",
    "iso-2022-jp": "iso2022_jp_ext",
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "x-sjis": "cp932",
    "ks_c_5601-1987": "cp949",
    "ks_c_5601": "cp949",
    "euc-kr": "cp949",
    "iso-8859-1": "cp1252",
    "latin1": "cp1252",
    "us-ascii": "utf-8",
    "ascii": "utf-8",
    "unknown-8bit": "utf-8",
    "x-unknown": "utf-8",
}

ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?]*)\?=")
ISO_2022_JP_ESCAPES = (b"\x1b$B", b"\x1b$@", b"\x1b(J")
CJK_TEXT = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")
HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")
HANGUL = re.compile(r"[\uac00-\ud7af]")
KANA = re.compile(r"[\u3040-\u30ff]")
# Multi-byte charsets whose text a relay can mangle by reading it as Latin-1 (codec names).
CJK_CODECS = frozenset(
    {
        "gb18030",
        "gbk",
        "gb2312",
        "big5",
        "big5hkscs",
        "cp932",
        "shift_jis",
        "euc_jp",
        "cp949",
        "euc_kr",
    }
)


def decode_header_value(value: str, hint: str | None = None) -> str:
    """RFC 2047 encoded-words and raw 8-bit bytes to Unicode, tolerant of broken encodings."""
    value = re.sub(r"\r?\n[ \t]", " ", value)
    # Whitespace between two adjacent encoded-words is not part of the text (RFC 2047 6.2).
    value = re.sub(r"(\?=)\s+(?==\?)", r"\1", value)
    pieces: list[str] = []
    position = 0
    for match in ENCODED_WORD.finditer(value):
        pieces.append(decode_raw_header_text(value[position : match.start()], hint))
        pieces.append(decode_encoded_word(*match.groups()) or match.group(0))
        position = match.end()
    pieces.append(decode_raw_header_text(value[position:], hint))
    return strip_controls("".join(pieces))


def decode_encoded_word(charset: str, encoding: str, text: str) -> str | None:
    charset = charset.split("*", 1)[0]
    try:
        if encoding.lower() == "b":
            stripped = text.rstrip("=")
            data = base64.b64decode(stripped + "=" * (-len(stripped) % 4))
        else:
            # Raw 8-bit bytes inside an encoded-word are a common client bug: keep them as bytes.
            raw = text.replace("_", " ").encode("ascii", "surrogateescape")
            data = quopri.decodestring(raw, header=True)
    except (binascii.Error, ValueError):
        return None
    return decode_text(data, charset)


def decode_raw_header_text(text: str, hint: str | None) -> str:
    """Header text outside encoded-words; 8-bit bytes arrive surrogate-escaped.

    Raw 8-bit fields are UTF-8 (RFC 6532); older clients write the body's charset instead.
    A single-byte charset reads any bytes, so valid UTF-8 goes first; a CJK one goes first
    because one or two CJK characters are often valid UTF-8 by accident.
    """
    if not any("\udc80" <= ch <= "\udcff" for ch in text):
        return text
    data = text.encode("ascii", "surrogateescape")
    if codec_name(hint) not in CJK_CODECS:
        try:
            return data.decode("utf-8")
        except UnicodeError:
            pass
    return decode_text(data, hint)


def codec_name(label: str | None) -> str | None:
    """Python's name for the codec a charset label (through its alias) stands for."""
    if not label:
        return None
    label = label.strip().strip('"').lower()
    try:
        return codecs.lookup(CHARSET_ALIASES.get(label, label)).name
    except (LookupError, ValueError, UnicodeError):  # NULs and 8-bit bytes in a label
        return None


def decode_text(data: bytes, declared: str | None) -> str:
    """Bytes to text: the declared charset (through its alias), UTF-8, detection, Latin-1."""
    candidates = []
    if declared:
        label = declared.strip().strip('"').lower()
        candidates.append(CHARSET_ALIASES.get(label, label))
        repaired = undo_latin1_detour(data, declared)
        if repaired is None:
            repaired = utf8_in_disguise(data, declared)
        if repaired is not None:
            return repaired
    if any(escape in data for escape in ISO_2022_JP_ESCAPES):
        candidates.insert(0, "iso2022_jp_ext")
    candidates.append("utf-8")
    for charset in candidates:
        try:
            text = data.decode(charset)
        except (LookupError, UnicodeError, ValueError):  # ValueError: a NUL in the label
            if charset == "iso2022_jp_ext":
                converted = iso2022jp_to_cp932(data)
                if converted is not None:
                    return converted
            continue
        return text
    detected = detected_text(data)
    if detected is not None:
        return detected
    return data.decode("cp1252", errors="replace")


def detected_text(data: bytes) -> str | None:
    """`data` in the charset detection finds best; of readings it finds equally good, the
    one in a single CJK script. Chinese GBK text also reads as valid Korean, half Hangul and
    half Han, which real Korean never is; Japanese mixes kana and kanji, so those count as
    one script."""
    results = list(detect_charset(data))
    if not results:
        return None
    best = results[0]
    tied = [r for r in results if (r.chaos, r.coherence) == (best.chaos, best.coherence)]
    # max() keeps the first of equals: detection's own order.
    return max((str(result) for result in tied), key=script_purity)


def script_purity(text: str) -> float:
    """The share of a text's CJK characters that belong to its main script: 1.0 for text
    without any."""
    han, hangul, kana = (len(script.findall(text)) for script in (HAN, HANGUL, KANA))
    total = han + hangul + kana
    return max(han, hangul, han + kana if kana else 0) / total if total else 1.0


def utf8_in_disguise(data: bytes, declared: str) -> str | None:
    """UTF-8 text labelled with another charset (webmail and scripts that label everything
    GB2312 or Latin-1), read as UTF-8; else None.

    Bytes in a single-byte charset almost never form valid UTF-8 with multi-byte
    sequences, so any such text is UTF-8. Two-byte CJK text does by accident (one two-
    character word in fifty, one three-character one in three hundred), but almost never
    as CJK characters: there it takes two of those, or three multi-byte characters.
    """
    codec = codec_name(declared)
    if codec is None or codec.startswith("utf") or data.isascii():
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if codec not in CJK_CODECS:
        return text
    multibyte = sum(1 for ch in text if ch > "\x7f")
    return text if len(CJK_TEXT.findall(text)) >= 2 or multibyte >= 3 else None


def undo_latin1_detour(data: bytes, declared: str) -> str | None:
    """CJK text that a relay read as Latin-1 and wrote out as UTF-8, read back; else None.

    Its bytes are UTF-8 for Latin-1 letters only (`¤j¸É` for 大補), and those letters'
    Latin-1 bytes are valid text in the declared CJK charset. Real CJK text almost never
    has that shape, but the declared charset may still "decode" it, into other characters.
    """
    codec = codec_name(declared)
    if codec not in CJK_CODECS or data.isascii():
        return None
    try:
        repaired = data.decode("utf-8").encode("latin-1").decode(codec)
    except UnicodeError:
        return None
    return repaired if CJK_TEXT.search(repaired) else None


def iso2022jp_to_cp932(data: bytes) -> str | None:
    """ISO-2022-JP with Microsoft's extensions (NEC row 13: ①, №, ㈱), as Outlook writes it.

    Python's iso2022 codecs refuse those characters; re-encoding the JIS X 0208 runs as
    Shift_JIS and decoding with cp932 (Windows' superset) reads them. ISO-2022-JP is 7-bit:
    8-bit bytes mean the text is in some other charset, so this gives up on them.
    """
    if not data.isascii():
        return None
    out = bytearray()
    double_byte = False
    index = 0
    while index < len(data):
        if data[index] == 0x1B:
            escape = data[index : index + 3]
            double_byte = escape in (b"\x1b$B", b"\x1b$@")
            index += 3
            continue
        if double_byte and index + 1 < len(data):
            out += jis_to_sjis(data[index], data[index + 1])
            index += 2
        else:
            out.append(data[index])
            index += 1
    try:
        return out.decode("cp932")
    except UnicodeError:
        return None


def jis_to_sjis(first: int, second: int) -> bytes:
    lead = (first + 1) // 2 + (0x70 if first <= 0x5E else 0xB0)
    trail = second + (0x1F if first % 2 else 0x7D)
    if first % 2 and trail >= 0x7F:
        trail += 1
    return bytes((lead & 0xFF, trail & 0xFF))


def strip_controls(text: str) -> str:
    return "".join(ch if ch in "\t\n" or unicodedata.category(ch)[0] != "C" else " " for ch in text)
