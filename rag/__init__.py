"""rag: answers from a folder of news articles, with citations you can check."""

__version__ = "0.1.0"
