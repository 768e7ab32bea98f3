"""An article's Markdown as the HTML its page shows, safe to show whoever wrote it.

Operators write the published articles, but a draft (`#kb new`) starts from a customer's
mail, and a draft published without a close look must not become markup: raw HTML in the
Markdown is shown as text (Python-Markdown passes it through unless its block preprocessor
and inline pattern are taken out), and a link keeps its address only when it is http(s),
mailto or relative, never `javascript:` or `data:`.

An image is shown as its alt text: the site's Content-Security-Policy loads images from
the site alone, which serves none of an article's (a relative address resolves under
`/kb/`), so an `<img>` could only ever be a broken one.
"""

from __future__ import annotations

import html
import xml.etree.ElementTree as etree
from urllib.parse import urlsplit

import markdown
from markdown.util import AMP_SUBSTITUTE, ETX, STX

EXTENSIONS = ("fenced_code", "tables")
SAFE_SCHEMES = frozenset({"", "http", "https", "mailto"})
# After every other tree processor (the lowest, `unescape`, is at 0): addresses are final.
LAST = -10


def article_html(body: str) -> str:
    """The Markdown `body` as HTML: raw HTML escaped, images as their alt text, only safe
    link addresses kept."""
    md = markdown.Markdown(extensions=list(EXTENSIONS), output_format="html")
    md.preprocessors.deregister("html_block")
    md.inlinePatterns.deregister("html")
    md.treeprocessors.register(SafeAddresses(), "safe_addresses", LAST)
    return str(md.convert(body))


class SafeAddresses:
    """A tree processor (Python-Markdown calls its `run` with the document's tree) that
    turns images into their alt text and drops every link address a browser would not
    simply follow; a link off the site is not one the site vouches for (`nofollow`)."""

    def run(self, root: etree.Element) -> None:
        for parent in list(root.iter()):
            images_as_text(parent)
        for link in root.iter("a"):
            if "href" not in link.attrib:
                continue
            scheme = scheme_of(link.attrib["href"])
            if scheme not in SAFE_SCHEMES:
                del link.attrib["href"]
            elif scheme in ("http", "https"):
                link.set("rel", "nofollow")


def images_as_text(parent: etree.Element) -> None:
    """Each `<img>` child of `parent` replaced by its alt text, in its place in the text."""
    for index in reversed(range(len(parent))):
        image = parent[index]
        if image.tag != "img":
            continue
        words = (image.get("alt") or "") + (image.tail or "")
        if index:
            before = parent[index - 1]
            before.tail = (before.tail or "") + words
        else:
            parent.text = (parent.text or "") + words
        parent.remove(image)


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
