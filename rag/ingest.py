"""`rag add`: copy files into the articles folder or download a URL as a text article."""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from rag.articles import SUPPORTED_SUFFIXES, file_hash, parse_date
from rag.errors import RagError
from rag.settings import Settings


class AddError(RagError):
    """A file or URL could not be added; nothing was written for it."""


@dataclass(frozen=True)
class Added:
    """One article placed in the articles folder, and where it came from."""

    dest: Path
    origin: str


@dataclass(frozen=True)
class _Pending:
    origin: str
    name: str
    data: bytes | None = None
    source: Path | None = None


def add_items(settings: Settings, items: list[str]) -> list[Added]:
    """Fetch or check every item first, then write them all: a failure writes nothing."""
    pending: list[_Pending] = []
    for item in items:
        if re.match(r"https?://", item):
            pending.append(_download(item, settings))
        else:
            pending.extend(_local(Path(item)))
    settings.articles_dir.mkdir(parents=True, exist_ok=True)
    existing = {file_hash(p): p for p in settings.articles_dir.rglob("*") if p.is_file()}
    added: list[Added] = []
    for p in pending:
        data = p.data if p.data is not None else None
        digest = _digest(data) if data is not None else file_hash(p.source)
        if digest in existing:
            continue  # the same article is already there, under whatever name
        dest = _free_name(settings.articles_dir, p.name)
        if data is not None:
            dest.write_bytes(data)
        else:
            shutil.copyfile(p.source, dest)
        existing[digest] = dest
        added.append(Added(dest, p.origin))
    return added


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


def _page_to_article(html: str | bytes, url: str) -> str | None:
    """The page's main text (trafilatura) under a header rag's text parser reads back."""
    import trafilatura

    doc = trafilatura.bare_extraction(html, url=url, with_metadata=True, favor_recall=True)
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
    return "\n".join(lines) + "\n\n" + body + "\n"


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
