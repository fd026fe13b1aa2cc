"""What a reader of an article sees: hidden HTML and invisible characters are left out.

A web page can carry text its reader never sees (a `display:none` paragraph, an `aria-hidden`
block, a comment, zero-width characters between letters) and that text is often addressed to
whatever AI reads the page (issue 31). trafilatura keeps most of it, so rag removes it before
extraction, and strips invisible characters from every article's text (txt and md too).

Also left out: elements a class or id rule of the page's own `<style>` hides (`.x {display:
none}`, outside `@media` blocks), and text whose inline style gives it its background's colour.

Not caught: rules in external stylesheets (rag reads the page alone) or with combinators
(`.menu .x`), text placed off-screen or clipped (`.sr-only`), same-colour text whose colours
come from different elements, and look-alike letters from other alphabets.
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
# A page's own stylesheet: a rule whose selectors are plain classes or ids (".x", "p.x", "#x",
# "div#x.y"), and the blocks to skip first (@media, @supports: hidden only on some screens).
_CSS_RULE = re.compile(r"([^{}@]+)\{([^{}]*)\}")
_CSS_BLOCK = re.compile(r"@[\w-]+[^{;]*\{(?:[^{}]*\{[^{}]*\})*[^{}]*\}|@[^{;]*;")
_CSS_COMMENT = re.compile(r"/\*.*?\*/", re.S)
_SIMPLE_SELECTOR = re.compile(r"^[a-z0-9]*(?:[.#][\w-]+)+$", re.I)
# Text in the colour of its own background: style="color:#fff;background:#fff".
_COLOUR = re.compile(r"(?:^|;)\s*(background(?:-color)?|color)\s*:\s*([^;!]+)", re.I)
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


def is_hidden(element: HtmlElement, hiding: frozenset[str] = frozenset()) -> bool:
    """Whether the element is hidden by its own markup (attribute or inline style, text in
    its background's colour) or by a rule of the page's stylesheet (hiding: hidden_selectors)."""
    attrib = element.attrib
    if "hidden" in attrib or attrib.get("aria-hidden", "").strip().lower() == "true":
        return True
    style = attrib.get("style")
    if style and (_HIDING_STYLE.search(style) or _same_colour(style)):
        return True
    return bool(hiding) and any(_matches(element, selector) for selector in hiding)


def _same_colour(style: str) -> bool:
    """Whether an inline style sets the text's colour to its background's."""
    colours = {
        ("background" if k.lower().startswith("background") else "color"): v.strip().lower()
        for k, v in _COLOUR.findall(style)
    }
    return "color" in colours and colours["color"] == colours.get("background")


def hidden_selectors(css: str) -> frozenset[str]:
    """The plain class and id selectors a stylesheet hides (display:none and the like),
    outside @media and other at-rules, which hide only on some screens or printers."""
    css = _CSS_BLOCK.sub("", _CSS_COMMENT.sub("", css))
    out: set[str] = set()
    for selectors, declarations in _CSS_RULE.findall(css):
        if not _HIDING_STYLE.search(declarations.strip()):
            continue
        for selector in selectors.split(","):
            selector = selector.strip()
            if _SIMPLE_SELECTOR.match(selector):
                out.add(selector)
    return frozenset(out)


def _matches(element: HtmlElement, selector: str) -> bool:
    """Whether a plain selector ("p.x", "#y", ".a.b") names the element."""
    parts = re.findall(r"[.#]?[\w-]+", selector)
    classes = set((element.attrib.get("class") or "").split())
    for part in parts:
        if part[0] == ".":
            ok = part[1:] in classes
        elif part[0] == "#":
            ok = element.attrib.get("id") == part[1:]
        else:
            ok = isinstance(element.tag, str) and element.tag.lower() == part.lower()
        if not ok:
            return False
    return True


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
    hiding = hidden_selectors("\n".join(s.text_content() for s in doc.iter("style")))
    dropped: set[HtmlElement] = set()
    for element in doc.iter(etree.Element):
        if any(a in dropped for a in element.iterancestors()):
            continue  # inside a subtree that goes already
        tag = element.tag
        if tag in _CODE_TAGS:
            dropped.add(element)
        elif tag in _UNSHOWN_TAGS or (
            tag not in ("html", "head", "body") and is_hidden(element, hiding)
        ):
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
