"""The base of every error rag reports to a user as one line (the CLI catches it)."""

from __future__ import annotations


class RagError(Exception):
    """A failure with a message fit for the user: what went wrong and how to fix it."""
