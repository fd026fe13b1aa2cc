"""Prompt templates are files in prompts/, loaded by name; a missing variable is an error."""

from __future__ import annotations

import string
from pathlib import Path

from rag.errors import RagError


class PromptError(RagError):
    """A prompt file is missing or was rendered without one of its variables."""


def load(prompts_dir: Path, name: str) -> str:
    """The raw template prompts_dir/NAME.md."""
    path = prompts_dir / f"{name}.md"
    if not path.is_file():
        raise PromptError(f"prompt {name!r} not found at {path}")
    return path.read_text(encoding="utf-8")


def render(prompts_dir: Path, name: str, **values: str) -> str:
    """Fill a template's {variables}; missing or unexpected ones raise PromptError."""
    template = load(prompts_dir, name)
    wanted = {field for _, field, _, _ in string.Formatter().parse(template) if field}
    missing = wanted - values.keys()
    extra = values.keys() - wanted
    if missing or extra:
        raise PromptError(f"prompt {name!r}: missing {sorted(missing)}, unexpected {sorted(extra)}")
    return template.format(**values)
