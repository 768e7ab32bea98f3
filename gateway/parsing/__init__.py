"""Parsing: raw bytes to a typed, frozen `ParsedMail`. Pure: no database, no network.

`mail` reads a message with the help of one module per concern: `mime` (the MIME tree),
`charsets` (bytes and header values to Unicode), `addresses` (senders, recipients,
Message-IDs), `quoting` (the new part of a reply), `attachments`, `markers` (the header
facts that mark automatic mail), `reports` (delivery status notifications) and `salvage`
(the words of a message whose MIME structure is broken). Only this package imports
mail-parser.
"""

from gateway.parsing.addresses import is_plain_address, parse_sender
from gateway.parsing.attachments import ParsedAttachment, decode_base64_leniently
from gateway.parsing.mail import ParsedMail, parse_message, read_headline
from gateway.parsing.markers import MACHINE_SENDERS, Markers
from gateway.parsing.mime import (
    ELIDED_RUN_BYTES,
    FEED_BYTES,
    elide_long_base64_runs,
    long_base64_runs,
    message_tree,
)
from gateway.parsing.quoting import extract_reply
from gateway.parsing.reports import DeliveryReport

__all__ = [
    "ELIDED_RUN_BYTES",
    "FEED_BYTES",
    "MACHINE_SENDERS",
    "DeliveryReport",
    "Markers",
    "ParsedAttachment",
    "ParsedMail",
    "decode_base64_leniently",
    "elide_long_base64_runs",
    "extract_reply",
    "is_plain_address",
    "long_base64_runs",
    "message_tree",
    "parse_message",
    "parse_sender",
    "read_headline",
]
