"""Reading the README and docs/ pages, for the tests that keep them true to the code."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
PAGES = (README, *sorted((REPO / "docs").glob("*.md")))

_FENCE = re.compile(r"^```([^\n]*)\n(.*?)^```[ \t]*$", re.M | re.S)
_SPAN = re.compile(r"`([^`\n]+)`")
_SEPARATORS = {"&&", "||", "|", ";"}
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


def fenced_blocks(text: str) -> list[tuple[str, str]]:
    """(language, body) of each fenced code block, in order."""
    return [(m.group(1).strip(), m.group(2)) for m in _FENCE.finditer(text)]


def prose(text: str) -> str:
    """The page without its fenced code blocks."""
    return _FENCE.sub("", text)


def setup_commands() -> list[str]:
    """The README's first two code blocks: the set-up commands (CI runs the second)."""
    return [body.strip() for _, body in fenced_blocks(README.read_text(encoding="utf-8"))[:2]]


def readme_question() -> str:
    """The question the README's first set-up command ends by asking."""
    first = setup_commands()[0]
    match = re.search(r'&& rag index && rag ask "([^"]+)"$', first)
    assert match, f"the README's first command no longer ends in rag index && rag ask: {first}"
    return match.group(1)


def command_lines(text: str) -> list[str]:
    """The lines of a page that are shell commands: every line of a bash (or unlabelled) block,
    the `$ ` lines of a console block (the rest is output), and inline code spans."""
    lines: list[str] = []
    for language, body in fenced_blocks(text):
        if language in ("", "bash", "sh", "shell"):
            lines += body.splitlines()
        elif language == "console":
            lines += [line[2:] for line in body.splitlines() if line.startswith("$ ")]
    return lines + _SPAN.findall(prose(text))


def rag_commands(line: str) -> list[list[str]]:
    """The arguments of each `rag` command on a shell line (after `VAR=value` prefixes, in
    `&&` chains and pipes), e.g. [["ask", "Why?", "--json"]]."""
    if not re.search(r"(^|[\s;&|])rag\s", line):
        return []
    commands, current = [], []
    for word in [*shlex.split(line, comments=True), ";"]:
        if word not in _SEPARATORS:
            current.append(word)
            continue
        while current and _ASSIGNMENT.match(current[0]):
            current.pop(0)
        if current and current[0] == "rag":
            commands.append(current[1:])
        current = []
    return commands
