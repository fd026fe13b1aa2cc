"""LLM answerers (Ollama, OpenAI-compatible servers) behind LangChain chat models."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from datetime import date
from typing import TYPE_CHECKING

from rag import prompts
from rag.answering import REFUSAL, Answer, OnToken
from rag.answering.excerpt import Excerpt, Ranked, TokenCounter, excerpt, whole
from rag.errors import RagError
from rag.question import Query
from rag.retrieval import Passage
from rag.settings import Settings

if TYPE_CHECKING:  # loaded only when an LLM answers (see _messages)
    from langchain_core.language_models.chat_models import BaseChatModel
    from langchain_core.messages import BaseMessage


class LLMError(RagError):
    """The LLM endpoint failed or could not be reached."""


def resolve_spec(settings: Settings) -> tuple[str, str | None]:
    """(the answerer to use, why a configured LLM was passed over or None).

    An explicit 'local:M' / 'ollama:M' / 'openai:M' / 'extractive' is used as given. 'auto'
    takes the first that can answer: RAG_LOCAL_MODEL (in this process, no server), RAG_OLLAMA_MODEL
    when that Ollama answers and lists the model, RAG_OPENAI_MODEL, else 'extractive'.
    """
    spec = settings.llm.strip()
    if spec != "auto":
        return spec, None
    if settings.local_model:
        return f"local:{settings.local_model}", None
    passed_over = None
    if settings.ollama_model:
        problem = ollama_problem(settings.ollama_model, settings.ollama_url, timeout=1.0)
        if problem is None:
            return f"ollama:{settings.ollama_model}", None
        passed_over = f"auto: {problem}"
    if settings.openai_model:
        return f"openai:{settings.openai_model}", passed_over
    if passed_over:
        passed_over += "; answered extractively"
    return "extractive", passed_over


def ollama_problem(model: str, url: str, timeout: float) -> str | None:
    """Why Ollama at url cannot answer with model (unreachable, or the model is not pulled),
    or None when it can (or its listing says nothing either way)."""
    import httpx

    try:
        response = httpx.get(f"{url.rstrip('/')}/api/tags", timeout=timeout)
    except httpx.HTTPError as exc:
        return (
            f"Ollama at {url} cannot be reached ({exc.__class__.__name__}); check that the "
            "server is running and RAG_OLLAMA_URL"
        )
    if response.status_code != 200:
        return None  # not Ollama's listing: let the answer itself say what is wrong
    try:
        names = {m.get("name", "") for m in response.json().get("models", [])}
    except (ValueError, AttributeError):
        return None
    if names and not ({model, f"{model}:latest"} & names):
        return f"model {model!r} not found on Ollama at {url} (`ollama pull {model}` fetches it)"
    return None


def make_chat_model(
    spec: str, settings: Settings, on_stage: Callable[[str], None] | None = None
) -> tuple[BaseChatModel, str]:
    """(chat model, where it runs: the endpoint URL, or a local model's folder) for
    'local:MODEL', 'ollama:MODEL' or 'openai:MODEL'; a server is checked reachable first
    (check_endpoint), so a dead one is found before any search. on_stage hears of a local
    model's one-time conversion."""
    provider, _, model = spec.partition(":")
    if not model:
        raise LLMError(
            f"--llm {spec!r}: expected extractive, auto, local:MODEL, ollama:MODEL or openai:MODEL"
        )
    if provider == "local":
        from rag.answering.local import LocalChatModel, weights_dtype
        from rag.devices import torch_device
        from rag.local_models import prepare

        dtype = weights_dtype(settings.local_dtype, torch_device(settings.device))
        folder = prepare(model, settings.models_dir, dtype, on_stage)
        chat = LocalChatModel(
            folder=folder,
            max_new_tokens=settings.llm_max_tokens,
            threads=settings.local_threads,
            dtype=settings.local_dtype,
            device=settings.device,
        )
        return chat, str(folder)
    if provider == "ollama":
        from langchain_ollama import ChatOllama

        url = settings.ollama_url
        chat = ChatOllama(
            model=model,
            base_url=url,
            temperature=0,
            num_predict=settings.llm_max_tokens,
            client_kwargs={"timeout": settings.llm_timeout},  # a hung server must not hang rag
        )
        check_endpoint(spec, url)
        return chat, url
    if provider == "openai":
        from langchain_openai import ChatOpenAI

        url = settings.openai_base_url or "https://api.openai.com/v1"
        key = os.environ.get("OPENAI_API_KEY")
        if not key and not settings.openai_base_url:
            raise LLMError(
                "--llm openai:… needs OPENAI_API_KEY (or RAG_OPENAI_BASE_URL for a local server)"
            )
        chat = ChatOpenAI(
            model=model,
            base_url=url,
            api_key=key or "not-needed",
            temperature=0,
            max_tokens=settings.llm_max_tokens,
            timeout=settings.llm_timeout,
            max_retries=0,
        )
        check_endpoint(spec, url)
        return chat, url
    raise LLMError(
        f"--llm {spec!r}: unknown provider {provider!r} (use local:, ollama: or openai:)"
    )


def _server_says(exc: Exception, already: str) -> str:
    """The server's own error message from an HTTP error's body (OpenAI's {"error": {"message"}},
    FastAPI's {"detail"}), which the client's exception text may leave out; "" if none or
    already said."""
    body = getattr(exc, "body", None)
    if not isinstance(body, dict):
        return ""
    error = body.get("error")
    said = error.get("message") if isinstance(error, dict) else error
    said = said or body.get("detail") or body.get("message")
    if not isinstance(said, str) or said in already:
        return ""
    return f"- {said}"


def check_endpoint(spec: str, url: str, timeout: float = 3.0) -> None:
    """Fail fast, before any search, when the LLM's endpoint cannot be reached (or, for Ollama,
    lacks the model): one cheap GET, not the 10+ s of embedding and searching first.

    Any HTTP answer counts as reachable (a server may not serve the listing); only a refused or
    timed-out connection, or an Ollama listing without the model, is an error.
    """
    import httpx

    provider, _, model = spec.partition(":")
    if provider == "ollama":
        problem = ollama_problem(model, url, timeout)
        if problem is None:
            return
        raise LLMError(f"the LLM {spec}: {problem}, or answer offline with --llm extractive")
    try:
        httpx.get(f"{url.rstrip('/')}/models", timeout=timeout)
    except httpx.HTTPError as exc:
        raise LLMError(
            f"the LLM {spec} at {url} cannot be reached ({exc.__class__.__name__}); check that "
            "the server is running and RAG_OPENAI_BASE_URL, or answer offline with --llm extractive"
        ) from exc


# Orders the passages' sentences for the excerpt (ExtractiveAnswerer.for_prompt).
Ranker = Callable[[Query, Sequence[Passage]], Sequence[Ranked]]


class LLMAnswerer:
    """Answers from the numbered passages with a chat model, streaming tokens as they come."""

    streams = True
    verbatim = False  # prose: its citations are also checked by embedding similarity

    def __init__(
        self,
        chat: BaseChatModel,
        settings: Settings,
        name: str,
        url: str = "",
        ranker: Ranker | None = None,
        count: TokenCounter | None = None,
    ) -> None:
        self.chat = chat
        self.settings = settings
        self.name = name
        self.url = url
        # Without both, the passages are shown whole (Tuning.prompt_budget is not applied).
        self.ranker = ranker
        self.count = count
        # The prompt reading() built, with the query and passages it was built for, kept for
        # the answer() that follows (see _messages_for).
        self._last: tuple[Query, list[Passage], list[BaseMessage]] | None = None

    def shown(self, query: Query, passages: Sequence[Passage]) -> Excerpt:
        """The passages as the prompt shows them: cut to the sentences that bear on the
        question within Tuning.prompt_budget tokens, or whole (budget 0, or no ranker)."""
        budget = self.settings.tuning.prompt_budget
        if budget and self.ranker is not None and self.count is not None:
            return excerpt(self.ranker(query, passages), passages, budget, self.count)
        return Excerpt(whole(passages), 0, True)

    def _invoke(self, messages: list, on_token: OnToken | None) -> str:
        parts: list[str] = []
        try:
            for chunk in self.chat.stream(messages):
                text = chunk.content if isinstance(chunk.content, str) else ""
                if text:
                    parts.append(text)
                    if on_token:
                        on_token(text)
        except RagError:
            raise
        except Exception as exc:  # providers raise their own client errors; report them as one line
            detail = " ".join(f"{exc} {_server_says(exc, str(exc))}".split())[:300].rstrip(".")
            setting = "RAG_OLLAMA_URL" if self.name.startswith("ollama:") else "RAG_OPENAI_BASE_URL"
            check = f"check that the server is running and {setting}"
            if self.name.startswith("local:"):
                check = f"check the model folder {self.url} (delete it to convert the model again)"
            elif self.name.startswith("ollama:") and "not found" in detail:
                check = f"`ollama pull {self.name.partition(':')[2]}` fetches the model"
            raise LLMError(
                f"the LLM {self.name} at {self.url or 'its endpoint'} failed "
                f"({exc.__class__.__name__}: {detail}); {check}, "
                "or answer offline with --llm extractive"
            ) from exc
        return "".join(parts).strip()

    def messages(self, query: Query, passages: Sequence[Passage]) -> list[BaseMessage]:
        """The system prompt and the numbered passages with the question, asked on
        query.today (else today)."""
        from langchain_core.messages import HumanMessage, SystemMessage

        asked = query.today or date.today()
        shown = self.shown(query, passages)
        return [
            SystemMessage(prompts.render(self.settings.prompts_dir, "system", refusal=REFUSAL)),
            HumanMessage(
                prompts.render(
                    self.settings.prompts_dir,
                    "answer",
                    passages=_fenced(shown.text),
                    question=query.text,
                    asked=asked.isoformat(),
                )
            ),
        ]

    def reading(self, query: Query, passages: Sequence[Passage]) -> str | None:
        """'reading 5 passages (≈970 tokens) with MODEL': the prompt the model is about to
        read (tokens: the embedding model's word pieces, near the model's own count)."""
        messages = self._messages_for(query, passages)
        shown = len({int(n) for n in _SHOWN.findall(str(messages[-1].content))}) or len(passages)
        texts = [str(m.content) for m in messages]
        size = f" (≈{sum(self.count(texts)):,} tokens)" if self.count is not None else ""
        model = self.name.partition(":")[2] or self.name
        return f"reading {shown} passage{'s' if shown != 1 else ''}{size} with {model}"

    def _messages_for(self, query: Query, passages: Sequence[Passage]) -> list[BaseMessage]:
        """messages(query, passages), built once for the answer that follows reading()."""
        last = self._last
        if (
            last is None
            or last[0] is not query
            or len(last[1]) != len(passages)
            or any(a is not b for a, b in zip(last[1], passages, strict=False))
        ):
            self._last = last = (query, list(passages), self.messages(query, passages))
        return last[2]

    def answer(
        self, query: Query, passages: Sequence[Passage], on_token: OnToken | None = None
    ) -> Answer:
        """The model's answer with [n] markers."""
        text = self._invoke(self._messages_for(query, passages), on_token)
        self._last = None
        if not text or _normal(REFUSAL) in _normal(text):
            return Answer.refusal(query, passages, self.name, f"the model {self.name} declined")
        return Answer(query.text, text, False, self.name, [], list(passages), query=query)

    def condense(self, history: list[tuple[str, str]], question: str) -> str:
        """A standalone version of a follow-up question, from the conversation so far."""
        transcript = "\n".join(f"User: {q}\nAssistant: {a}" for q, a in history[-3:])
        prompt = prompts.render(
            self.settings.prompts_dir, "condense", history=transcript, question=question
        )
        from langchain_core.messages import HumanMessage

        rewritten = self._invoke([HumanMessage(prompt)], None).strip().strip('"')
        return rewritten.splitlines()[0] if rewritten else question


_FENCE = re.compile(r"<\s*/?\s*passages\s*>", re.I)
# A passage's first line in the prompt (excerpt.header): "[3] Title, 2024-03-01".
_SHOWN = re.compile(r"^\[(\d+)\] ", re.M)


def _fenced(text: str) -> str:
    """The passages' text with any <passages> tag of their own defused, so an article cannot
    close the prompt's fence around the passages and write outside it."""
    return _FENCE.sub(lambda m: m.group(0).replace("<", "‹").replace(">", "›"), text)


def _normal(text: str) -> str:
    return " ".join(text.lower().replace("’", "'").split())
