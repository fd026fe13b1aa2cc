"""What a reader of an article sees: hidden HTML and invisible characters are left out.

A web page can carry text its reader never sees (a `display:none` paragraph, an `aria-hidden`
block, a comment, zero-width characters between letters) and that text is often addressed to
whatever AI reads the page (issue 31). trafilatura keeps most of it, so rag removes it before
extraction, and strips invisible characters from every article's text (txt and md too).

Not caught: text hidden by a stylesheet or a class (`.sr-only`), text the same colour as its
background, text placed off-screen, and look-alike letters from other alphabets.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # lxml is imported only when an HTML page is read
    from lxml.html import HtmlElement

# Zero-width space, non-joiner and joiner, word joiner, invisible operators, BOM, soft hyphen,
# Mongolian vowel separator, bidirectional controls, and the tag characters U+E0000-E007F
# (which spell ASCII no font shows). Removing a joiner costs a Persian or Indic word its
# ligature, not its letters.
INVISIBLE = re.compile(
    "[\u00ad\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff\U000e0000-\U000e007f]"
)

# Inline styles that hide an element: no display, no visibility, no size, no opacity.
_HIDING_STYLE = re.compile(
    r"(?:^|;)\s*(?:display\s*:\s*none|visibility\s*:\s*(?:hidden|collapse)"
    r"|font-size\s*:\s*0(?:\.0+)?(?:px|pt|em|rem|%)?\s*(?:!important\s*)?(?:;|$)"
    r"|(?:max-)?(?:width|height)\s*:\s*0(?:px)?\s*(?:!important\s*)?(?:;|$)"
    r"|opacity\s*:\s*0(?:\.0+)?\s*(?:!important\s*)?(?:;|$))",
    re.I,
)
# Elements whose content is never shown as text (their text is not counted: it is code).
_CODE_TAGS = ("script", "style")
# Elements shown only when scripting is off, or never: counted as hidden text.
_UNSHOWN_TAGS = ("noscript", "template")


@dataclass(frozen=True)
class Removed:
    """What was left out of an article as unseen by its reader (counts of characters)."""

    hidden: int = 0  # text of hidden HTML elements and comments
    invisible: int = 0  # invisible characters

    def __add__(self, other: Removed) -> Removed:
        return Removed(self.hidden + other.hidden, self.invisible + other.invisible)

    @property
    def total(self) -> int:
        return self.hidden + self.invisible


def strip_invisible(text: str) -> tuple[str, int]:
    """The text without invisible characters, and how many there were."""
    cleaned, n = INVISIBLE.subn("", text)
    return cleaned, n


def is_hidden(element: HtmlElement) -> bool:
    """Whether the element is hidden by its own markup (attribute or inline style)."""
    attrib = element.attrib
    if "hidden" in attrib or attrib.get("aria-hidden", "").strip().lower() == "true":
        return True
    style = attrib.get("style")
    return bool(style and _HIDING_STYLE.search(style))


def visible_tree(html: str | bytes) -> tuple[HtmlElement, int]:
    """The page parsed, without the text its reader never sees, and how many characters of
    text went (hidden elements, noscript and template content, comments).

    <title> and <meta> stay: they are the page's metadata, read as such, not as article text.
    """
    from lxml import etree
    from lxml import html as lxml_html

    if isinstance(html, str):
        # lxml refuses a str that declares its encoding (<?xml ... encoding=...?>).
        html = re.sub(r"^\s*<\?xml[^>]*\?>", "", html)
    doc = lxml_html.fromstring(html)
    removed = 0
    for comment in doc.xpath("//comment()"):
        removed += len("".join((comment.text or "").split()))
        _drop(comment)
    dropped: set[HtmlElement] = set()
    for element in doc.iter(etree.Element):
        if any(a in dropped for a in element.iterancestors()):
            continue  # inside a subtree that goes already
        tag = element.tag
        if tag in _CODE_TAGS:
            dropped.add(element)
        elif tag in _UNSHOWN_TAGS or (tag not in ("html", "head", "body") and is_hidden(element)):
            removed += len("".join(element.text_content().split()))
            dropped.add(element)
    for element in dropped:
        _drop(element)
    return doc, removed


def _drop(element: HtmlElement) -> None:
    """Remove an element (or comment) but keep the text that follows it (its tail)."""
    parent = element.getparent()
    if parent is None:
        return
    tail = element.tail
    previous = element.getprevious()
    if tail:
        if previous is not None:
            previous.tail = (previous.tail or "") + tail
        else:
            parent.text = (parent.text or "") + tail
    parent.remove(element)
