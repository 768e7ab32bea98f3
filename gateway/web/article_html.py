"""An article's Markdown as the HTML its page shows, safe to show whoever wrote it.

Operators write the published articles, but a draft (`#kb new`) starts from a customer's
mail, and a draft published without a close look must not become markup: raw HTML in the
Markdown is shown as text (Python-Markdown passes it through unless its block preprocessor
and inline pattern are taken out), and a link or image keeps its address only when it is
http(s), mailto or relative, never `javascript:` or `data:`.
"""

from __future__ import annotations

import html
import xml.etree.ElementTree as etree
from urllib.parse import urlsplit

import markdown
from markdown.util import AMP_SUBSTITUTE, ETX, STX

EXTENSIONS = ("fenced_code", "tables")
SAFE_SCHEMES = frozenset({"", "http", "https", "mailto"})
# The attribute of each element that holds an address.
ADDRESSES = {"a": "href", "img": "src"}
# After every other tree processor (the lowest, `unescape`, is at 0): addresses are final.
LAST = -10


def article_html(body: str) -> str:
    """The Markdown `body` as HTML: raw HTML escaped, only safe addresses kept."""
    md = markdown.Markdown(extensions=list(EXTENSIONS), output_format="html")
    md.preprocessors.deregister("html_block")
    md.inlinePatterns.deregister("html")
    md.treeprocessors.register(SafeAddresses(), "safe_addresses", LAST)
    return str(md.convert(body))


class SafeAddresses:
    """A tree processor (Python-Markdown calls its `run` with the document's tree) that
    drops every address a browser would not simply follow or load; a link off the site
    sends no referrer."""

    def run(self, root: etree.Element) -> None:
        for element in root.iter():
            attribute = ADDRESSES.get(element.tag)
            if attribute is None or attribute not in element.attrib:
                continue
            scheme = scheme_of(element.attrib[attribute])
            if scheme not in SAFE_SCHEMES:
                del element.attrib[attribute]
            elif element.tag == "a" and scheme in ("http", "https"):
                element.set("rel", "nofollow noreferrer")


def scheme_of(address: str) -> str | None:
    """The address's scheme as a browser reads the attribute ("" for a relative one; None
    for one it cannot read): `&` restored (Python-Markdown writes it as a placeholder, its
    own mail links among them), character references decoded, and the whitespace and
    control characters a browser ignores taken out."""
    restored = html.unescape(address.replace(AMP_SUBSTITUTE, "&").replace(STX, "").replace(ETX, ""))
    read = "".join(c for c in restored if ord(c) > 0x20 and c != "\x7f")
    try:
        return urlsplit(read).scheme.lower()
    except ValueError:
        return None
