"""The README and docs/ stay true to the code: the settings page is generated from Settings,
every `rag ...` command they show exists with the options shown, every link and named file
resolves, and the README opens with the set-up commands CI runs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer
from pydantic import BaseModel, Field
from typer.testing import CliRunner

from rag import settings_doc
from rag.cli import app
from tests.readme import (
    PAGES,
    README,
    REPO,
    command_lines,
    fenced_blocks,
    prose,
    rag_commands,
    readme_question,
    setup_commands,
)

_GROUP = typer.main.get_command(app)


def _page_id(page: Path) -> str:
    return str(page.relative_to(REPO))


# The settings page.


def test_settings_page_is_generated_from_settings() -> None:
    on_disk = settings_doc.DOC.read_text(encoding="utf-8")
    assert on_disk == settings_doc.render(), (
        "docs/settings.md is stale: run `python -m rag.settings_doc` and commit it"
    )


def test_settings_page_shows_each_default_and_bound() -> None:
    page = settings_doc.render()
    assert "| `RAG_K` | `5` | a whole number, ≥ 1, ≤ 50 | passages retrieved" in page
    assert "| `RAG_FUSION` | `scores` | `scores` or `rrf` |" in page
    assert "| `RAG_LLM_FALLBACK` | `false` |" in page
    assert "| `RAG_TUNING__MIN_OVERLAP` | `0.6` | a number, ≥ 0, ≤ 1 |" in page
    # The prompts folder is named relative to rag, not as this machine's absolute path.
    assert "| `RAG_PROMPTS_DIR` | `prompts` in rag's folder |" in page
    assert str(REPO) not in page


def test_a_setting_without_a_description_is_an_error() -> None:
    class Undescribed(BaseModel):
        described: int = Field(1, description="has one")
        bare: int = 2

    with pytest.raises(ValueError, match=r"Undescribed\.bare has no description"):
        settings_doc._table(Undescribed, "RAG_")


# Commands the pages show.


def _problems(args: list[str]) -> list[str]:
    """What is wrong with `rag ARGS` as the CLI stands: an unknown command or option."""
    if not args or args[0].startswith("-"):
        return [f"rag {' '.join(args)}: no command"]
    command = _GROUP.commands.get(args[0])
    if command is None:
        return [f"rag {args[0]}: no such command"]
    known = {opt for p in command.params for opt in (*p.opts, *p.secondary_opts)} | {"--help"}
    return [
        f"rag {args[0]} {word}: no such option"
        for word in args[1:]
        if word.startswith("-") and word != "-" and word.split("=")[0] not in known
    ]


def test_the_checker_finds_unknown_commands_and_options() -> None:
    [[*args]] = rag_commands('RAG_K=3 rag ask "Why?" --json --bogus -k 2')
    assert args == ["ask", "Why?", "--json", "--bogus", "-k", "2"]
    assert _problems(args) == ["rag ask --bogus: no such option"]
    assert _problems(["serve"]) == ["rag serve: no such command"]
    assert rag_commands("rag index && rag sources --json | jq .") == [
        ["index"],
        ["sources", "--json"],
    ]
    assert rag_commands("cd ~/.cache/rag/models && ls") == []


@pytest.mark.parametrize("page", PAGES, ids=_page_id)
def test_every_command_shown_exists(page: Path) -> None:
    shown = [
        args
        for line in command_lines(page.read_text(encoding="utf-8"))
        for args in rag_commands(line)
    ]
    problems = [problem for args in shown for problem in _problems(args)]
    assert not problems, f"{_page_id(page)} shows commands the CLI lacks: {problems}"


def test_readme_shows_the_commands_a_newcomer_needs() -> None:
    text = README.read_text(encoding="utf-8")
    shown = {args[0] for line in command_lines(text) for args in rag_commands(line) if args}
    assert {"index", "ask", "chat", "add", "eval", "sources", "compare"} <= shown
    # A cited answer and a refusal, with the check that refused.
    assert "✓" in text and "The articles don't contain the answer" in text
    assert '"refused_by": "off-topic:' in text


def test_every_command_shown_has_help() -> None:
    runner = CliRunner()
    for name in _GROUP.commands:
        result = runner.invoke(app, [name, "--help"])
        assert result.exit_code == 0, result.output
        assert "Example" in result.output


# The README's front door.


def test_readme_opens_with_the_setup_commands_ci_runs() -> None:
    first, second = setup_commands()
    languages = [language for language, _ in fenced_blocks(README.read_text(encoding="utf-8"))]
    assert languages[:2] == ["bash", "bash"]
    assert "\n" not in first and "\n" not in second  # one line each, to paste
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert f"\n{second} -q -p no:cacheprovider " in ci, (
        ".ci/run no longer runs the README's second command"
    )
    # Both set up the same way; the first then indexes and asks the shipped articles.
    setup = second.split(" && pip install -c constraints.txt -e ")[0]
    assert first.startswith(setup + " && pip install -c constraints.txt -e . && rag index")
    assert readme_question() == "Where is the drone factory being built?"


def test_readme_is_a_front_page() -> None:
    assert len(README.read_text(encoding="utf-8").splitlines()) <= 125


# Links and named files.

_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
# A repository path as the pages name it: `rag/cli.py`, python eval/make_results.py, ...
_PATH = re.compile(r"^(?:rag|eval|bench|prompts|tests|docs|articles|fitting|probes)/[\w.\-/]*\w/?$")


def _anchors(page: Path) -> set[str]:
    """GitHub's anchors for a page's headings: lower case, punctuation dropped, spaces to
    hyphens, a repeated heading numbered."""
    seen: dict[str, int] = {}
    anchors = set()
    for line in prose(page.read_text(encoding="utf-8")).splitlines():
        if match := re.match(r"^#{1,6}\s+(.*?)\s*$", line):
            slug = re.sub(r"[^\w\- ]", "", match.group(1).lower()).replace(" ", "-")
            anchors.add(f"{slug}-{seen[slug]}" if slug in seen else slug)
            seen[slug] = seen.get(slug, 0) + 1
    return anchors


def test_anchors_follow_github() -> None:
    assert {"the-extractive-answerer-the-default", "a-local-model-in-this-process"} <= _anchors(
        REPO / "docs" / "answers.md"
    ) | _anchors(REPO / "docs" / "llm.md")


@pytest.mark.parametrize("page", PAGES, ids=_page_id)
def test_links_resolve(page: Path) -> None:
    broken = []
    for target in _LINK.findall(prose(page.read_text(encoding="utf-8"))):
        if re.match(r"^[a-z]+:", target):  # http(s), mailto: not checked offline
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.is_relative_to(REPO) or not dest.exists():
            broken.append(f"{target}: no such file in the repository")
        elif anchor and anchor not in _anchors(dest):
            broken.append(f"{target}: no heading #{anchor} in {dest.name}")
    assert not broken, f"{_page_id(page)}: {broken}"


@pytest.mark.parametrize("page", PAGES, ids=_page_id)
def test_named_files_exist(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    words = [w for line in command_lines(text) for w in line.split()]
    named = {w.strip("`'\"(),;:") for w in words}
    missing = [
        p
        for p in sorted(named)
        if _PATH.match(p) and not p.startswith("eval/out/") and not (REPO / p).exists()
    ]
    assert not missing, f"{_page_id(page)} names files that don't exist: {missing}"
