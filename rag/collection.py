"""Collections: a folder of articles and its index, named, kept where the platform keeps user
data, so `rag index ~/news` and then `rag ask` work from any directory.

Each collection is a folder under the data directory (Settings.data_dir; unset, platformdirs'
user data dir for "rag"): `collections/NAME/collection.json` remembers the articles folder,
`collections/NAME/index/` is its index. `current` names the collection `rag ask`, `chat`,
`sources`, `add` and `eval` use when nothing else says (the last one indexed or chosen with
`rag use NAME`). Two folders never share an index: a name already taken by another folder is
an error, so indexing one never deletes the other's articles.

Inside a project checkout (a folder with `articles/` or `index/`), and whenever
RAG_ARTICLES_DIR or RAG_INDEX_DIR is set, the paths stay as given: the README's commands work
unchanged (see `resolve`).
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from rag.errors import RagError
from rag.settings import Settings

META = "collection.json"
CURRENT = "current"


class CollectionError(RagError):
    """A collection that does not exist, or a name another folder has."""


@dataclass(frozen=True)
class Collection:
    """A named articles folder and the index rag keeps for it."""

    name: str
    folder: Path
    home: Path  # data_dir/collections/NAME

    @property
    def index_dir(self) -> Path:
        return self.home / "index"


@dataclass(frozen=True)
class CollectionInfo:
    """What `rag collections` lists for one collection."""

    name: str
    folder: str
    current: bool
    articles: int
    chunks: int
    last_indexed: str | None
    embedding_model: str | None
    size_bytes: int


def data_dir(settings: Settings) -> Path:
    """Where rag keeps its collections (Settings.data_dir, else the platform's user data dir)."""
    if settings.data_dir is not None:
        return settings.data_dir.expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("rag", appauthor=False))


def _root(settings: Settings) -> Path:
    return data_dir(settings) / "collections"


def slug(name: str) -> str:
    """A collection name from a folder name: lower case letters, digits, - and _."""
    out = re.sub(r"[^a-z0-9_-]+", "-", name.lower()).strip("-")
    return out or "articles"


def get(settings: Settings, name: str) -> Collection:
    """The collection of that name; CollectionError naming the ones there are."""
    home = _root(settings) / name
    try:
        meta = json.loads((home / META).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        known = ", ".join(c.name for c in all_collections(settings)) or "none yet"
        raise CollectionError(
            f"no collection named {name!r} (there are: {known}); `rag index FOLDER` makes one"
        ) from None
    return Collection(name, Path(meta["folder"]), home)


def for_folder(settings: Settings, folder: Path, name: str | None = None) -> Collection:
    """The collection of an articles folder, made on first use (named after the folder, or
    name); CollectionError when that name belongs to another folder."""
    folder = folder.expanduser().resolve()
    if not folder.is_dir():
        raise CollectionError(f"articles folder not found: {folder}")
    chosen = slug(name or folder.name)
    home = _root(settings) / chosen
    meta = home / META
    if meta.is_file():
        existing = get(settings, chosen)
        if existing.folder != folder:
            raise CollectionError(
                f"the collection {chosen!r} is the folder {existing.folder}; name this one "
                "with --name"
            )
        return existing
    for other in all_collections(settings):
        if other.folder == folder:
            return other  # indexed before under another name
    home.mkdir(parents=True, exist_ok=True)
    meta.write_text(json.dumps({"folder": str(folder)}, indent=1) + "\n", encoding="utf-8")
    return Collection(chosen, folder, home)


def adoptable(settings: Settings, folder: Path, index_dir: Path) -> str | None:
    """Why the index at index_dir cannot become the index of the articles folder as it is
    (None: it can: made from that folder, or from files of the same names, with the settings
    rag embeds with now, its vectors in a local store inside it)."""
    from rag.indexing import current_manifest, fingerprint

    index_dir = index_dir.expanduser()
    _, manifest = current_manifest(settings.with_overrides(index_dir=index_dir))
    if manifest is None:
        return f"no index in {index_dir}"
    if manifest.folder is not None:
        if Path(manifest.folder).resolve() != folder.expanduser().resolve():
            return f"the index in {index_dir} was made from {manifest.folder}"
    else:  # an index older than the record of its folder: the files must be there
        names = list(manifest.articles)
        present = sum((folder / name).is_file() for name in names)
        if names and present * 2 < len(names):
            return f"only {present} of the {len(names)} articles the index in {index_dir} holds are in {folder}"
    if (manifest.store or {}).get("kind", "local") != "local" or settings.chroma_url:
        return f"the vectors of the index in {index_dir} are on a Chroma server"
    if manifest.fingerprint != fingerprint(settings):
        return f"the index in {index_dir} was built with other settings (it would be re-embedded)"
    return None


def adopt(chosen: Collection, index_dir: Path) -> None:
    """Copy an existing index into a new collection (the original stays where it is), so
    indexing the folder embeds only what changed since (see adoptable)."""
    shutil.copytree(
        index_dir.expanduser(), chosen.index_dir, ignore=shutil.ignore_patterns(".lock", ".*.tmp")
    )


def all_collections(settings: Settings) -> list[Collection]:
    """Every collection, by name."""
    root = _root(settings)
    if not root.is_dir():
        return []
    found = []
    for home in sorted(root.iterdir()):
        try:
            meta = json.loads((home / META).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        found.append(Collection(home.name, Path(meta["folder"]), home))
    return found


def current(settings: Settings) -> Collection | None:
    """The collection last indexed or chosen with `rag use` (None: none, or it is gone)."""
    try:
        name = (data_dir(settings) / CURRENT).read_text(encoding="utf-8").strip()
    except OSError:
        return None
    try:
        return get(settings, name) if name else None
    except CollectionError:
        return None


def use(settings: Settings, name: str) -> Collection:
    """Make the collection of that name the current one."""
    chosen = get(settings, name)
    data_dir(settings).mkdir(parents=True, exist_ok=True)
    (data_dir(settings) / CURRENT).write_text(chosen.name + "\n", encoding="utf-8")
    return chosen


def remove(settings: Settings, name: str) -> Collection:
    """Delete a collection's index (never its articles folder); it stops being current."""
    gone = get(settings, name)
    shutil.rmtree(gone.home)
    now = current(settings)
    if now is None:
        (data_dir(settings) / CURRENT).unlink(missing_ok=True)
    return gone


def apply_to(settings: Settings, chosen: Collection) -> Settings:
    """settings reading chosen's folder and index."""
    return settings.with_overrides(
        articles_dir=chosen.folder, index_dir=chosen.index_dir, collection=chosen.name
    )


def resolve(settings: Settings, cwd: Path, explicit: bool) -> Settings:
    """The settings a command runs with: a named collection (Settings.collection), else the
    paths as given when they were given (explicit: RAG_ARTICLES_DIR, RAG_INDEX_DIR or an
    option) or cwd is a project checkout (it has articles/ or index/), else the current
    collection, else the paths as given (their errors say what to run)."""
    if settings.collection:
        return apply_to(settings, get(settings, settings.collection))
    if explicit or (cwd / "articles").is_dir() or (cwd / "index").is_dir():
        return settings
    chosen = current(settings)
    return apply_to(settings, chosen) if chosen is not None else settings


def info(settings: Settings, chosen: Collection) -> CollectionInfo:
    """What `rag collections` shows for one collection (read from its manifest)."""
    from rag.indexing import current_manifest

    _, manifest = current_manifest(apply_to(settings, chosen))
    size = sum(p.stat().st_size for p in chosen.home.rglob("*") if p.is_file())
    last = None
    if manifest is not None:
        stamp = max((p.stat().st_mtime for p in chosen.index_dir.rglob("manifest.json")), default=0)
        last = datetime.fromtimestamp(stamp, UTC).isoformat(timespec="minutes") if stamp else None
    now = current(settings)
    return CollectionInfo(
        chosen.name,
        str(chosen.folder),
        now is not None and now.name == chosen.name,
        len(manifest.articles) if manifest else 0,
        sum(len(e.chunks) for e in manifest.articles.values()) if manifest else 0,
        last,
        (manifest.fingerprint or {}).get("embedding_model") if manifest else None,
        size,
    )
