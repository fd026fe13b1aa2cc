"""`rag add`: copy files into the articles folder or download a URL as a text article."""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from rag.articles import SUPPORTED_SUFFIXES, file_hash, parse_date
from rag.errors import RagError
from rag.settings import Settings
from rag.visible import strip_invisible, visible_tree


class AddError(RagError):
    """A file or URL could not be added; nothing was written for it."""


@dataclass(frozen=True)
class AddResult:
    """What became of one file or URL given to `rag add`.

    status: "added" (written to dest), "present" (the same content is already in the articles
    folder, at dest) or "failed" (error says why; nothing was written for it).
    """

    origin: str
    status: str
    dest: Path | None = None
    error: str | None = None


@dataclass(frozen=True)
class _Pending:
    origin: str
    name: str
    data: bytes | None = None
    source: Path | None = None


def add_items(settings: Settings, items: list[str]) -> list[AddResult]:
    """Add each item on its own: one that fails (a 404, a missing file, a page that is not an
    article) is reported and writes nothing, and the others are added all the same."""
    existing: dict[str, Path] | None = None
    results: list[AddResult] = []
    for item in items:
        try:
            pending = (
                [_download(item, settings)] if re.match(r"https?://", item) else _local(Path(item))
            )
        except AddError as exc:
            results.append(AddResult(item, "failed", error=str(exc)))
            continue
        if existing is None:
            folder = settings.articles_dir
            existing = {file_hash(p): p for p in folder.rglob("*") if p.is_file()}
        results.extend(_place(p, settings.articles_dir, existing) for p in pending)
    return results


def _place(pending: _Pending, folder: Path, existing: dict[str, Path]) -> AddResult:
    """Write one article into folder under a free name, unless its content is already there."""
    digest = _digest(pending.data) if pending.data is not None else file_hash(pending.source)
    if digest in existing:
        return AddResult(pending.origin, "present", dest=existing[digest])
    folder.mkdir(parents=True, exist_ok=True)
    dest = _free_name(folder, pending.name)
    # Written aside and renamed, so an interrupted add never leaves half an article.
    tmp = folder / f".{dest.name}.{os.getpid()}.tmp"
    try:
        if pending.data is not None:
            tmp.write_bytes(pending.data)
        else:
            shutil.copyfile(pending.source, tmp)
        os.replace(tmp, dest)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        return AddResult(pending.origin, "failed", error=f"{pending.origin}: cannot write ({exc})")
    existing[digest] = dest
    return AddResult(pending.origin, "added", dest=dest)


def _local(path: Path) -> list[_Pending]:
    if not path.exists():
        raise AddError(f"{path}: no such file or folder")
    files = sorted(path.rglob("*")) if path.is_dir() else [path]
    found = [
        _Pending(str(f), f.name, source=f)
        for f in files
        if f.is_file() and f.suffix.lower() in SUPPORTED_SUFFIXES
    ]
    if not found:
        kinds = ", ".join(SUPPORTED_SUFFIXES)
        raise AddError(f"{path}: no article files ({kinds}) to add")
    return found


def _download(url: str, settings: Settings) -> _Pending:
    """GET url with a timeout and a size cap, and turn the page into a text article."""
    import httpx

    limit = settings.download_max_bytes
    try:
        with (
            httpx.Client(timeout=settings.download_timeout, follow_redirects=True) as client,
            client.stream("GET", url, headers={"User-Agent": "rag/0.1 (+news reader)"}) as resp,
        ):
            if resp.status_code >= 400:
                raise AddError(f"download of {url} failed: HTTP {resp.status_code}")
            body = bytearray()
            for block in resp.iter_bytes():
                body.extend(block)
                if len(body) > limit:
                    raise AddError(f"download of {url} failed: larger than {limit:,} bytes")
            charset = resp.charset_encoding  # only what the Content-Type header names
            final_url = str(resp.url)
    except httpx.HTTPError as exc:
        raise AddError(f"download of {url} failed: {exc.__class__.__name__}: {exc}") from exc
    html = _decode_page(bytes(body), charset)
    if reason := _not_an_article(html):
        raise AddError(f"{url} is not saved: {reason}")
    text = _page_to_article(html, final_url)
    if text is None:
        raise AddError(f"download of {url} failed: no article text found on the page")
    return _Pending(url, _slug(text.splitlines()[0]) + ".txt", data=text.encode())


def _decode_page(body: bytes, charset: str | None) -> str | bytes:
    """The page as text when the server named its charset; else the bytes, for trafilatura to
    detect (assuming UTF-8 would garble a page declared only by <meta charset="windows-1252">)."""
    if charset:
        try:
            return body.decode(charset, errors="replace")
        except LookupError:
            pass
    return body


_LISTING = re.compile(r"^\s*(index of|directory listing for)\s+/", re.I)
# Above this share of its visible text in links, a page is a list of pages (a front page, a
# section or tag page, a directory listing), not an article; a news article's navigation and
# related links are well under it (about 5% on a typical story page).
MAX_LINK_SHARE = 0.5


def _not_an_article(html: str | bytes) -> str | None:
    """Why a page is not an article (a directory listing, a page of links); None if it may be.

    trafilatura turns any page into some text, so an index page would be saved as an article
    made of headlines or file names.
    """
    from lxml import html as lxml_html

    try:
        doc = lxml_html.fromstring(html)
    except Exception:  # lxml's parser errors: leave the verdict to the article extractor
        return None
    title = " ".join((doc.findtext(".//title") or "").split())
    heading = " ".join((doc.findtext(".//h1") or "").split())
    if _LISTING.match(title) or _LISTING.match(heading):
        return "it is a directory listing, not an article"
    for junk in doc.xpath("//script|//style|//noscript|//template"):
        junk.drop_tree()
    body = doc.find("body")
    root = body if body is not None else doc
    total = len("".join(root.text_content().split()))
    linked = sum(len("".join(a.text_content().split())) for a in root.iter("a"))
    if total and linked / total > MAX_LINK_SHARE:
        return (
            f"it is a page of links ({linked / total:.0%} of its text), such as a front or "
            "section page, not an article; add the article's own URL"
        )
    return None


def _page_to_article(html: str | bytes, url: str) -> str | None:
    """The page's main text (trafilatura) under a header rag's text parser reads back: the text
    its reader sees (hidden elements and invisible characters left out, rag/visible.py)."""
    import trafilatura

    try:
        tree, _ = visible_tree(html)
    except Exception:  # lxml's parser errors: trafilatura reads broken pages more leniently
        tree = html
    doc = trafilatura.bare_extraction(tree, url=url, with_metadata=True, favor_recall=True)
    if doc is None:
        return None
    data = doc.as_dict() if hasattr(doc, "as_dict") else dict(doc)
    body = (data.get("text") or "").strip()
    if not body:
        return None
    lines = [(data.get("title") or url).strip()]
    if data.get("sitename") or data.get("hostname"):
        lines.append(f"Source: {data.get('sitename') or data.get('hostname')}")
    if data.get("author"):
        lines.append(f"By: {data['author']}")
    if data.get("date") and (iso := parse_date(data["date"])):
        lines.append(f"Published: {iso}")
    lines.append(f"URL: {url}")
    return strip_invisible("\n".join(lines) + "\n\n" + body + "\n")[0]


def _slug(title: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
    return slug[:80].rstrip("-") or "article"


def _free_name(folder: Path, name: str) -> Path:
    dest = folder / name
    stem, suffix = dest.stem, dest.suffix
    n = 2
    while dest.exists():
        dest = folder / f"{stem}-{n}{suffix}"
        n += 1
    return dest


def _digest(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()
