"""Files in the articles folder -> Article (body text plus title, source, byline, date, url)."""

from __future__ import annotations

import codecs
import hashlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from rag.errors import RagError
from rag.visible import strip_invisible, visible_tree

SUPPORTED_SUFFIXES = (".txt", ".md", ".markdown", ".html", ".htm")
# Bumped when reading a file can give other text from the same bytes. An article indexed by an
# older reader is read again at the next `rag index` (its unchanged chunks keep their vectors).
# 2: text a reader never sees is left out (rag/visible.py: hidden HTML, a page's own stylesheet
# rules, same-colour text, invisible characters).
READER_VERSION = 2
READER_CHANGE = "rag now leaves out text a reader of the page never sees"
_HASH_BLOCK = 1 << 20


class ArticleError(RagError):
    """An article file that cannot be read as text; the message names the file and why."""


@dataclass(frozen=True)
class Article:
    """One news article; chunk offsets index into `text` (the body, header lines removed)."""

    path: str
    title: str
    text: str
    content_hash: str
    source: str | None = None
    byline: str | None = None
    date: str | None = None
    url: str | None = None
    warnings: tuple[str, ...] = field(default=())
    # Only the file's first max_article_bytes were read (indexing words the warning, since it
    # may cut the article shorter still).
    truncated: bool = False
    # Characters of text a reader never sees, left out (rag/visible.py): hidden HTML elements
    # and comments, invisible characters.
    unseen: int = 0


@dataclass(frozen=True)
class ArticleFile:
    """A candidate file found in the articles folder, identified by its content hash."""

    path: Path
    rel: str
    content_hash: str
    size: int
    # Modification time in nanoseconds: with size, what the manifest records so a question can
    # tell cheaply (no hashing) whether the folder changed since the last `rag index`.
    mtime_ns: int = 0


def file_hash(path: Path) -> str:
    """sha256 of a file's bytes, read in blocks so huge files stay in bounded memory."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(_HASH_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def _candidates(root: Path, skipped: dict[str, str]) -> list[tuple[str, os.DirEntry[str]]]:
    """Supported files under root (name relative to root, directory entry), sorted by path; a
    file left out for a reason worth a warning is added to skipped (name: why), in path order.

    A walk of os.scandir entries rather than Path.rglob: an entry knows whether it is a file or
    folder without a system call, and caches its stat, so stat_folder() costs one stat a file
    (about a third of rglob's time). Like rglob, it does not descend into symlinked folders;
    hidden files and folders (".name") are left out.
    """
    if not root.is_dir():
        raise ArticleError(f"articles folder not found: {root}")
    real_root = root.resolve()
    seen: list[tuple[list[str], str | None, tuple[str, os.DirEntry[str]] | None]] = []

    def walk(folder: str, prefix: str) -> None:
        try:
            with os.scandir(folder) as entries:
                listed = list(entries)
        except PermissionError:
            return
        for entry in listed:
            if entry.name.startswith("."):
                continue
            rel = prefix + entry.name
            if entry.is_symlink():
                target = Path(entry.path).resolve()
                if not target.is_relative_to(real_root):
                    why = f"symlink to {target} outside the articles folder"
                    seen.append((rel.split("/"), why, None))
                    continue
            elif entry.is_dir(follow_symlinks=False):
                walk(entry.path, rel + "/")
                continue
            suffix = _suffix(entry.name)
            if not entry.is_file() or suffix not in SUPPORTED_SUFFIXES:
                if suffix == ".pdf" and entry.is_file():
                    seen.append((rel.split("/"), "PDF is not supported yet", None))
                continue
            seen.append((rel.split("/"), None, (rel, entry)))

    walk(str(root), "")
    found = []
    for parts, why, item in sorted(seen, key=lambda s: s[0]):
        if why is not None:
            skipped["/".join(parts)] = why
        if item is not None:
            found.append(item)
    return found


def _suffix(name: str) -> str:
    """Path(name).suffix.lower(), without building a Path (stat_folder runs per question)."""
    dot = name.rfind(".")
    return name[dot:].lower() if 0 < dot < len(name) - 1 else ""


def scan(root: Path) -> tuple[list[ArticleFile], dict[str, str]]:
    """Supported files under root, sorted, and the files left out that are worth a warning
    (a symlink out of the folder, a PDF, one that cannot be read): name -> why."""
    skipped: dict[str, str] = {}
    found: list[ArticleFile] = []
    for rel, entry in _candidates(root, skipped):
        path = Path(entry.path)
        try:
            st = entry.stat()
            found.append(ArticleFile(path, rel, file_hash(path), st.st_size, st.st_mtime_ns))
        except OSError as exc:
            skipped[rel] = f"cannot read ({exc.strerror})"
    return found, skipped


def stat_folder(root: Path) -> dict[str, tuple[int, int]]:
    """Size and modification time (ns) of the files scan() would find, without reading them."""
    stats: dict[str, tuple[int, int]] = {}
    for rel, entry in _candidates(root, {}):
        try:
            st = entry.stat()
        except OSError:
            continue  # removed since listed; scan() skips it too
        stats[rel] = (st.st_size, st.st_mtime_ns)
    return stats


def precheck(file: ArticleFile) -> str | None:
    """Why a file cannot be an article, from its bytes alone (empty, only whitespace, binary);
    None when it may be one. Cheap: reads the first block, and further only while it sees
    nothing but whitespace, so a plan can say what will be skipped without parsing anything."""
    try:
        with file.path.open("rb") as fh:
            block = fh.read(_HEAD)
            if problem := _bytes_problem(block):
                return problem
            while not block.strip():
                block = fh.read(_HASH_BLOCK)
                if not block:
                    return _WHITESPACE
    except OSError as exc:
        return f"cannot read ({exc.strerror})"
    return None


_HEAD = 8192
_WHITESPACE = "only whitespace, no text"


def _bytes_problem(raw: bytes) -> str | None:
    """Why these bytes (a file's start, or all of it) are not article text; None if they may be."""
    if not raw:
        return "empty file"
    if _looks_binary(raw):
        return "binary file, not text"
    if not raw.strip():
        return _WHITESPACE
    return None


def load(file: ArticleFile, max_bytes: int = 5_000_000) -> Article:
    """Read and parse one article file; raises ArticleError for empty or binary files."""
    warnings: list[str] = []
    try:
        with file.path.open("rb") as fh:
            raw = fh.read(max_bytes + 1)
    except OSError as exc:  # removed or made unreadable since the folder was scanned
        raise ArticleError(f"{file.rel}: cannot read ({exc.strerror}), skipped") from exc
    truncated = len(raw) > max_bytes
    if truncated:
        raw = _cut_utf8(raw, max_bytes)
    if problem := _bytes_problem(raw):
        raise ArticleError(f"{file.rel}: {problem}, skipped")
    text, encoding = decode(raw)
    if encoding != "utf-8":
        warnings.append(f"{file.rel}: not valid UTF-8, decoded as {encoding}")
    text, invisible = strip_invisible(text)
    if file.path.suffix.lower() in (".html", ".htm"):
        article = _parse_html(text, file)
    else:
        article = _parse_text(text, file)
    if not re.search(r"\w", article.text):  # nothing but whitespace or markup debris
        raise ArticleError(f"{file.rel}: no article text found, skipped")
    return replace(
        article,
        warnings=tuple(warnings) + article.warnings,
        truncated=truncated,
        unseen=article.unseen + invisible,
    )


def decode(raw: bytes) -> tuple[str, str]:
    """Decode bytes as UTF-8, falling back to cp1252, then latin-1 (which never fails)."""
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return raw.decode(encoding), encoding.removesuffix("-sig")
        except UnicodeDecodeError:
            continue
    return raw.decode("latin-1"), "latin-1"


def _cut_utf8(raw: bytes, max_bytes: int) -> bytes:
    """The first max_bytes, less a UTF-8 character the cut would split (which would otherwise
    make the whole text fail UTF-8 and decode as cp1252 mojibake)."""
    cut = raw[:max_bytes]
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        decoder.decode(cut, final=False)
    except UnicodeDecodeError:
        return cut  # not UTF-8 anyway: decode() falls back
    pending = decoder.getstate()[0]
    return cut[: len(cut) - len(pending)]


def _looks_binary(raw: bytes) -> bool:
    head = raw[:_HEAD]
    if b"\x00" in head:
        return True
    control = sum(1 for b in head if b < 32 and b not in (9, 10, 12, 13))
    return control > len(head) * 0.05


_META = re.compile(r"^(source|publisher|published|date|url|by|author)\s*:\s*(.+)$", re.I)
_BYLINE = re.compile(r"^[Bb]y\s+([A-Z][\w.'-]+(?:\s+[A-Z][\w.'-]+){0,4})\s*$")
_HEADER_LINES = 8


def _parse_text(text: str, file: ArticleFile) -> Article:
    """Title from the first line (or `# heading`), metadata from the header lines below it."""
    lines = text.splitlines(keepends=True)
    pos = 0
    title = ""
    meta: dict[str, str] = {}
    i = 0
    while i < len(lines) and not lines[i].strip():
        pos += len(lines[i])
        i += 1
    if i < len(lines):
        title = lines[i].strip().lstrip("#").strip()
        pos += len(lines[i])
        i += 1
    body_start = pos
    seen = 0
    in_meta_block = True
    while i < len(lines) and seen < _HEADER_LINES:
        line = lines[i].strip()
        pos += len(lines[i])
        i += 1
        if not line:
            if in_meta_block:
                body_start = pos
            continue
        seen += 1
        if m := _META.match(line):
            key = m.group(1).lower()
            key = {"publisher": "source", "date": "published", "author": "by"}.get(key, key)
            meta.setdefault(key, m.group(2).strip())
            # "Key: value" lines are metadata, not article text: skip them in the body.
            if in_meta_block:
                body_start = pos
            continue
        # A byline or a bare date line is metadata too, but stays in the body: readers ask
        # "who wrote it?" and "when was it published?" and the answer must be citable.
        in_meta_block = False
        if m := _BYLINE.match(line):
            meta.setdefault("by", m.group(1))
        elif "published" not in meta and (iso := parse_date(line, strict=True)):
            meta["published"] = iso
    date = parse_date(meta["published"]) if "published" in meta else None
    return Article(
        path=file.rel,
        title=title or Path(file.rel).stem.replace("-", " "),
        text=text[body_start:],
        content_hash=file.content_hash,
        source=meta.get("source"),
        byline=meta.get("by"),
        date=date,
        url=meta.get("url"),
    )


def _parse_html(html: str, file: ArticleFile) -> Article:
    """Main text and metadata with trafilatura (drops navigation, ads, comments), of the page
    as its reader sees it (hidden elements left out first: trafilatura keeps them)."""
    import trafilatura

    try:
        tree, hidden = visible_tree(html)
        doc = trafilatura.bare_extraction(tree, with_metadata=True, favor_recall=True)
    except Exception as exc:  # trafilatura raises assorted lxml errors on broken markup
        raise ArticleError(
            f"{file.rel}: malformed HTML ({exc.__class__.__name__}), skipped"
        ) from exc
    if doc is None:
        raise ArticleError(f"{file.rel}: no article text found in the HTML, skipped")
    data = doc.as_dict() if hasattr(doc, "as_dict") else dict(doc)
    return Article(
        path=file.rel,
        title=(data.get("title") or Path(file.rel).stem.replace("-", " ")).strip(),
        text=data.get("text") or "",
        content_hash=file.content_hash,
        source=data.get("sitename") or data.get("hostname"),
        byline=data.get("author"),
        date=parse_date(data["date"]) if data.get("date") else None,
        url=data.get("url"),
        unseen=hidden,
    )


_DATEISH = re.compile(r"\d")


def parse_date(text: str, strict: bool = False) -> str | None:
    """An ISO date (YYYY-MM-DD) from a date string such as 'Feb 23, 2024 04:44 AM EST'.

    strict: the whole line must be a date (used to spot a bare date line in a header).
    """
    text = text.strip()
    if not text or len(text) > 60 or not _DATEISH.search(text):
        return None
    if strict and len(text.split()) > 7:
        return None
    if m := re.fullmatch(r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?:[T ].*)?", text):
        y, mo, d = (int(g) for g in m.groups())
        return f"{y:04d}-{mo:02d}-{d:02d}" if 1 <= mo <= 12 and 1 <= d <= 31 else None
    import dateparser

    parsed = dateparser.parse(
        text,
        languages=["en"],
        settings={"STRICT_PARSING": strict, "REQUIRE_PARTS": ["year", "month", "day"]},
    )
    return parsed.date().isoformat() if parsed else None


def iter_loaded(
    files: list[ArticleFile], max_bytes: int
) -> Iterator[tuple[ArticleFile, Article | None, list[str]]]:
    """Load each file, turning ArticleError into a warning so one bad file affects nothing else."""
    for file in files:
        try:
            article = load(file, max_bytes)
        except ArticleError as exc:
            yield file, None, [str(exc)]
            continue
        yield file, article, list(article.warnings)
