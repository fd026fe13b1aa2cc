"""The ask pipeline: question -> standalone Query -> passages -> refusal gate -> answer ->
verified citations."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import date
from typing import TYPE_CHECKING, Any

from langchain_core.embeddings import Embeddings

from rag import injection
from rag.answering import WITHHELD, Answer, Answerer, Citation, OnToken, Sentence, judgement, types
from rag.answering.citations import compose, recite, renumber, reports_speaker, verify
from rag.answering.extractive import ExtractiveAnswerer
from rag.answering.llm import LLMAnswerer, make_chat_model, resolve_spec
from rag.answering.screening import screened
from rag.conversation import Conversation, standalone
from rag.lexical import Terms, spelled_alike, tokenize
from rag.question import Query, Specific, analyse, clean
from rag.retrieval import Passage, Retrieval, Retriever
from rag.settings import Settings, Tuning

if TYPE_CHECKING:  # the chat-model stack is heavy; `rag ask` with the extractive answerer skips it
    from langchain_core.language_models.chat_models import BaseChatModel


class Pipeline:
    """Holds the warm pieces (embedder, index, answerers) so chat and eval reuse them.

    Its settings are the one channel for k, as_of and the answerer: `with_settings` gives a
    pipeline sharing the warm pieces under other settings (chat's /k, /asof, /llm; an eval
    question's own "asked" day).
    """

    def __init__(
        self,
        settings: Settings,
        embedder: Embeddings | None = None,
        chat_model: BaseChatModel | None = None,
        judge_model: judgement.JudgeModel | None = None,
        on_stage: Callable[[str], None] | None = None,
    ) -> None:
        """judge_model: the answer judgement to use instead of the shipped one (a fitter's
        neutral model, a test's); on_stage: told what the pipeline is doing as it starts each
        slow step ("searching", "reading 5 passages (≈970 tokens) with MODEL", a local
        model's one-time conversion), for a progress line (render.StageLine)."""
        from rag.embedding import query_embedder
        from rag.sentences import SentenceStore, StoredSentenceEmbeddings

        self.settings = settings
        embedder = embedder or query_embedder(settings)
        self.retriever = Retriever(settings, embedder)
        # Passage sentences come from the vectors `rag index` stored; questions, answers and
        # anything the store lacks are embedded by the query model.
        self.embedder = StoredSentenceEmbeddings(embedder, SentenceStore(self.retriever.generation))
        self._chat_model = chat_model
        self._answerers: dict[tuple[str, Tuning], Answerer] = {}
        self._count: Callable[[Sequence[str]], list[int]] | None = None
        self._resolved: dict[tuple[str | None, ...], tuple[str, str | None]] = {}
        self._judge_model = judge_model
        self._extractives: dict[Tuning, ExtractiveAnswerer] = {}
        self.on_stage: Callable[[str], None] = on_stage or _unsaid

    def with_settings(self, settings: Settings) -> Pipeline:
        """This pipeline under other settings, sharing the embedder, index and answerers."""
        other = copy.copy(self)  # shallow: the embedder, retriever and answerers are shared
        other.settings = settings
        return other

    def reopened(self) -> Pipeline:
        """This pipeline over the index as it is now, after an update (chat's automatic
        `rag index`): a new retriever over it, the same embedder, models and answerers."""
        from rag.sentences import SentenceStore

        other = copy.copy(self)
        other.retriever = Retriever(self.settings, self.embedder.inner)
        self.embedder.store = SentenceStore(other.retriever.generation)
        return other

    def answerer(self) -> Answerer:
        """The answerer settings.llm names ('auto' resolves from settings), built once."""
        resolved, _ = self._resolve()
        # An injected chat model answers every spec but an explicit 'extractive' ('auto' too).
        if self._chat_model is not None and self.settings.llm != "extractive":
            resolved = f"fake:{type(self._chat_model).__name__}"
        key = (resolved, self.settings.tuning)
        if key not in self._answerers:
            self._answerers[key] = self._build(resolved)
        return self._answerers[key]

    def _resolve(self) -> tuple[str, str | None]:
        """resolve_spec, once per answerer configuration ('auto' may ask Ollama if it is up)."""
        s = self.settings
        key = (s.llm, s.local_model, s.ollama_model, s.ollama_url, s.openai_model)
        if key not in self._resolved:
            self._resolved[key] = resolve_spec(s)
        return self._resolved[key]

    def _build(self, resolved: str) -> Answerer:
        if resolved == "extractive":
            return self._extractive()
        # The model is shown the sentences the extractive answerer ranks best (Tuning.prompt_budget).
        ranker = self._extractive().for_prompt
        count = self._token_counter()
        if self._chat_model is not None:
            return LLMAnswerer(self._chat_model, self.settings, resolved, "", ranker, count)
        chat, url = make_chat_model(resolved, self.settings, self.on_stage)
        return LLMAnswerer(chat, self.settings, resolved, url, ranker, count)

    def _extractive(self) -> ExtractiveAnswerer:
        """The extractive answerer under these settings' tuning, one per tuning: a model's
        prompt, the judgement and the fallback share its ranking of the same passages."""
        tuning = self.settings.tuning
        if tuning not in self._extractives:
            self._extractives[tuning] = ExtractiveAnswerer(self.embedder, tuning)
        return self._extractives[tuning]

    def _token_counter(self) -> Callable[[Sequence[str]], list[int]]:
        """The embedding model's word-piece counter (tokenizers only; loaded once)."""
        if self._count is None:
            from rag.embedding import resolve_model_dir, token_counter

            self._count = token_counter(resolve_model_dir(self.settings.embedding_model))
        return self._count

    def ask(
        self,
        question: str,
        conversation: Conversation | None = None,
        on_token: OnToken | None = None,
    ) -> Answer:
        """Answer one question from the index, with verified citations or a refusal."""
        started = time.perf_counter()
        settings = self.settings
        question, note = clean(question, settings.max_question_chars)
        answerer = self.answerer()
        passed_over = self._resolve()[1]  # 'auto' skipped a configured LLM that can't answer
        if passed_over:
            note = f"{note}; {passed_over}" if note else passed_over
        self.on_stage("searching")
        t = time.perf_counter()
        text, carried = standalone(question, conversation, answerer.condense)
        query = analyse(text, settings.as_of or date.today(), settings.tuning)
        condense_ms = (time.perf_counter() - t) * 1000
        retrieval = self.retriever.search(query, settings)
        if retrieval.too_new:
            n = len(retrieval.too_new)
            later = f"{n} matching article{'s' if n > 1 else ''} published after "
            later += f"{settings.as_of} left out"
            note = f"{note}; {later}" if note else later
        timings = {"condense": round(condense_ms, 2), **retrieval.timings_ms}

        t = time.perf_counter()
        reason = refusal_gate(query, retrieval, settings)
        if reason is not None:
            answer = Answer.refusal(query, retrieval.passages, answerer.name, reason)
        else:
            if reading := answerer.reading(query, retrieval.passages):
                self.on_stage(reading)
            answer = answerer.answer(query, retrieval.passages, on_token)
        timings["answer"] = round((time.perf_counter() - t) * 1000, 2)
        if not answerer.verbatim:
            self.on_stage("checking the answer against the passages")

        t = time.perf_counter()
        sentences, citations = [], []
        # Text addressed to an AI assistant is shown to a model as the article's, but is never
        # evidence for what it writes: verified against the passages with it blanked.
        shown = retrieval.passages
        flags = injection.flags(shown)
        if not answerer.verbatim:
            retrieval = replace(retrieval, passages=injection.evidence(shown, flags))
            answer = replace(answer, passages=retrieval.passages)
        if not answer.refused:
            # Extracts are verbatim: a lexical check suffices; prose also gets the embedding.
            checker = None if answerer.verbatim else self.embedder
            # Generated prose is also held to the question's own words (see citations._check).
            asked = frozenset() if answerer.verbatim else frozenset(query.focus)
            sentences, citations = verify(
                answer.text, retrieval.passages, checker, settings.tuning, asked
            )
            if not answerer.verbatim:
                answer, sentences, citations = ground(
                    answer, sentences, citations, query, self.embedder, settings.tuning
                )
                # Text addressed to an AI in its prompt may be why the model's answer failed:
                # the extractive answer to the same passages (flagged text blanked) stands in.
                order = _order_in(shown, flags)
                if answer.refused and (settings.llm_fallback or order):
                    answer, sentences, citations, fell_back = self._fallback(
                        answer, query, retrieval.passages, order
                    )
                    if fell_back:
                        note = f"{note}; {fell_back}" if note else fell_back
        elif not answerer.verbatim and _declined(answer) and (order := _order_in(shown, flags)):
            # A passage may have told the model to decline; a refusal can't be checked against
            # the passages as an answer can, so the extractive answer stands in for it.
            answer, sentences, citations, fell_back = self._fallback(
                answer, query, retrieval.passages, order, declined=True
            )
            if fell_back:
                note = f"{note}; {fell_back}" if note else fell_back
            else:
                answer = replace(answer, refused_by=f"injection: the model declined, and {order}")
        if not answer.refused and (typed := self._typed(answer, query, sentences)) is not None:
            answer, sentences, citations = typed, [], []
        judge_ms = 0.0
        if not answer.refused:
            judging = time.perf_counter()
            answer, sentences, citations = self._judged(answer, query, sentences, citations)
            judge_ms = (time.perf_counter() - judging) * 1000
        # A streamed answer is on the screen already with the model's own numbers; an
        # extractive fallback given in its place was not streamed, and is numbered as usual.
        streamed = on_token is not None and answerer.streams and answer.fallback_from is None
        if not answer.refused and not streamed:
            text, sentences, citations = renumber(answer.text, sentences, citations)
            answer = replace(answer, text=text)
        timings["verify"] = round((time.perf_counter() - t) * 1000 - judge_ms, 2)
        timings["judge"] = round(judge_ms, 2)
        timings["total"] = round((time.perf_counter() - started) * 1000, 2)
        answer = replace(
            answer,
            question=question,
            citations=citations,
            sentences=sentences,
            note=note,
            timings_ms=timings,
            as_of=settings.as_of,
        )
        answer = screened(answer, shown, settings.tuning, flags)
        if conversation is not None:
            conversation.record(question, query.text, answer, carried)
        return answer

    def _typed(self, answer: Answer, query: Query, sentences: Sequence[Sentence]) -> Answer | None:
        """The refusal of an answer that names no thing of the type its question asks for
        ("Which countries ...?" answered by sentences naming no country), else None."""
        texts = [p.title + "\n" + p.text for p in answer.passages]
        typed = types.check(
            query, [s.text for s in sentences], self.embedder, self.settings.embedding_model, texts
        )
        if typed is None or typed.named:
            return None
        refusal = Answer.refusal(query, answer.passages, answer.answerer, typed.reason())
        why = f"names no {typed.wanted}, which the question asks for"
        return replace(refusal, dropped=[replace(s, reason=s.reason or why) for s in sentences])

    def _judged(
        self,
        answer: Answer,
        query: Query,
        sentences: list[Sentence],
        citations: list[Citation],
    ) -> tuple[Answer, list[Sentence], list[Citation]]:
        """The answer with its judgement (rag/answering/judgement.py); withheld, as a refusal
        that keeps it, when the probability that it answers the question is under the
        threshold (Settings.min_confidence) and Settings.show_withheld is off."""
        model = self.judge_model()
        passages = answer.passages
        by_rank = {p.rank: p for p in passages}
        quoted = {c.n: c.quote for c in citations}
        evidence = [
            judgement.Evidence(s.text, quoted.get(s.cites[0], s.text), by_rank[s.cites[0]])
            for s in sentences
            if s.supported and s.cites and s.cites[0] in by_rank
        ]
        # A question about the article itself ("who wrote", "when was it published") is
        # answered by its byline or dateline, by rule; the judgement's training questions are
        # about the news, and have none of these.
        if model is None or not evidence or query.about_article:
            return answer, sentences, citations
        if answer.picks and answer.fallback_from is None and answer.answerer == "extractive":
            view = judgement.ExtractiveView.of(answer.picks, answer.runners_up)
        else:  # a model wrote it: what would the extractive answerer pick from these passages?
            picked = self._extractive().answer(query, passages)
            view = judgement.ExtractiveView.of(picked.picks, picked.runners_up)
        judged = judgement.judge(
            query, evidence, passages, view, self.embedder, self.settings.min_confidence, model
        )
        if judged is None:
            return answer, sentences, citations
        if judged.passes or self.settings.show_withheld:
            return replace(answer, judgement=judged), sentences, citations
        reason = (
            f"judgement: the answer {judged.words()} (probability {judged.probability:.2f} < "
            f"min_confidence {judged.threshold:.2f})"
        )
        withheld = Answer.refusal(query, passages, answer.answerer, reason, WITHHELD)
        # What verification took out of a model's answer is still shown, with why.
        kept = replace(
            withheld,
            judgement=judged,
            withheld=answer.text,
            picks=answer.picks,
            runners_up=answer.runners_up,
            dropped=answer.dropped,
            recited=answer.recited,
            cut=answer.cut,
        )
        return kept, [], []

    def judge_model(self) -> judgement.JudgeModel | None:
        """The fitted judgement (judgement.json), read once; None when its embedding model is
        not the index's (the features read that model's similarities)."""
        if self._judge_model is None:
            model = judgement.load()
            if model.embedding_model != self.settings.embedding_model:
                return None
            self._judge_model = model
        return self._judge_model

    def _fallback(
        self,
        refused: Answer,
        query: Query,
        passages: Sequence[Passage],
        order: str | None = None,
        declined: bool = False,
    ) -> tuple[Answer, list[Sentence], list[Citation], str | None]:
        """The extractive answer to the same passages, in place of a generated answer that
        verification refused (Settings.llm_fallback, or always when a passage held an order
        to the model: order says where) or that the model declined to give under such an
        order; the refusal when the extractive answerer refuses too."""
        extractive = self._extractive()
        answer = extractive.answer(query, passages)
        if answer.refused:
            return refused, [], [], None
        sentences, citations = verify(answer.text, passages, None, self.settings.tuning)
        failed = (
            " declined to answer"
            if declined
            else "'s answer failed verification (none of its sentences is supported by a "
            "retrieved passage)"
        )
        why = f", and {order}" if order else ""
        label = f"{refused.answerer}{failed}{why}; this is the extractive answer instead"
        fallback = replace(answer, dropped=refused.dropped, fallback_from=refused.answerer)
        return fallback, sentences, citations, label


def ground(
    answer: Answer,
    sentences: list[Sentence],
    citations: list[Citation],
    query: Query,
    embedder: Embeddings,
    tuning: Tuning,
) -> tuple[Answer, list[Sentence], list[Citation]]:
    """A generated answer keeps only sentences a retrieved passage supports.

    A sentence its cited passage doesn't support, or that cites nothing, is re-cited to the
    retrieved passage that does support it (listed as re-cited; see citations.recite for
    which qualify), else dropped (listed as dropped); a sentence repeated word for word is
    given once; an answer left with no sentence is a refusal. This is the product's guarantee,
    not the model's: a small model cites the wrong passage and invents answers, and whatever it
    wrote that the passages don't support is never given as an answer. To "What did X say...?"
    an answer also needs a cited passage that reports X's words (citations.reports_speaker),
    as the extractive answerer's sentences do; else it is a refusal too.
    """
    repeated = len({s.text for s in sentences}) < len(sentences)
    if not all(s.supported for s in sentences) or repeated:
        asked = frozenset(query.focus)
        fixed = recite(sentences, answer.passages, embedder, tuning, asked)
        recited = [
            old
            for old, new in zip(sentences, fixed, strict=True)
            if new.supported > old.supported and new.whole is None
        ]
        cut = [new for new in fixed if new.whole is not None]
        dropped = [s for s in fixed if not s.supported]
        kept = list({s.text: s for s in fixed if s.supported}.values())
        if not kept:
            reason = (
                f"verification: none of the {len(sentences)} sentence(s) {answer.answerer} "
                "wrote is supported by a retrieved passage"
            )
            refusal = Answer.refusal(query, answer.passages, answer.answerer, reason)
            return replace(refusal, dropped=dropped), [], []
        text = compose(kept)
        sentences, citations = verify(text, answer.passages, embedder, tuning, asked)
        answer = replace(answer, text=text, dropped=dropped, recited=recited, cut=cut)
    if query.speaker and not reports_speaker(query.speaker, citations, answer.passages):
        reason = (
            f"verification: no passage {answer.answerer}'s answer cites reports what the "
            "question's speaker said"
        )
        refusal = Answer.refusal(query, answer.passages, answer.answerer, reason)
        who = " ".join(sorted(query.speaker.required))
        why = f"no passage it cites reports what the question's speaker ({who}) said"
        unheard = [replace(s, reason=s.reason or why) for s in sentences]
        return replace(refusal, dropped=[*answer.dropped, *unheard]), [], []
    return answer, sentences, citations


def refusal_gate(query: Query, retrieval: Retrieval, settings: Settings) -> str | None:
    """Why no answerer should see these passages (off-topic), or None to let one answer.

    Off-topic: nothing close enough by embedding similarity, unless the passages name all of
    the question's names (a rare full name sits far from everything).
    """
    if not retrieval.passages:
        return "no passages were retrieved"
    best, threshold = retrieval.best_similarity, settings.refusal_threshold
    if best < threshold and not names_found(query, retrieval.passages):
        return f"off-topic: best passage similarity {best:.3f} < refusal_threshold {threshold}"
    if missing := unnamed(query, retrieval.passages):
        return f'not named: no retrieved passage names "{missing.text}", which the question does'
    return None


def unnamed(query: Query, passages: Sequence[Passage]) -> Specific | None:
    """The first thing the question names specifically (Query.specific) that no passage names.

    Passages close to "What is the range of the Shahed-238?" talk about other drones, and
    any sentence of theirs would answer a different question with a citation that checks out.
    """
    tokens = tokenize([p.title + " " + p.text for p in passages])
    words = {t for ts in tokens for t in ts}

    def named(thing: Specific) -> bool:
        if not thing.exact:
            # A name by its last word ("Rubio"), but a name of several words also needs its
            # first somewhere: "Cup" of "World Cup" does not name the "Stanley Cup".
            first, last = thing.stems[0], thing.stems[-1]
            return any(spelled_alike(last, w) for w in words) and (
                len(thing.stems) == 1 or any(spelled_alike(first, w) for w in words)
            )
        # As a phrase in one passage, however it is split: "COP27" is "COP 27", "G-7" "G7".
        key, most = "".join(thing.stems), len(thing.stems) + 1
        return any(
            "".join(ts[i : i + n]) == key
            for ts in tokens
            for i in range(len(ts))
            for n in range(1, most + 1)
        )

    return next((thing for thing in query.specific if not named(thing)), None)


def names_found(query: Query, passages: Sequence[Passage]) -> bool:
    """Whether the question gives a full name (two words or more: "Karine Jean-Pierre") and
    the passages name all its named things, each as a phrase.

    The embedding model places a rare name far from everything, so a question about one can
    look off-topic by similarity alone when the passages name it. One-word names ("Iran") are
    what a whole corpus is about, and say nothing about whether a question is on its topic.
    """
    if not any(len(n) > 1 for n in query.names) or not passages:
        return False
    tokens = tokenize([" ".join(p.title + " " + p.text for p in passages)])[0]
    return Terms.of(tokens).names_all(query.names)


def to_json(answer: Answer) -> dict[str, Any]:
    """The `rag ask --json` object."""
    return {
        "question": answer.question,
        "answer": answer.text,
        "refused": answer.refused,
        "refused_by": answer.refused_by,
        "answerer": answer.answerer,
        "note": answer.note,  # also on stderr: a long question cut, articles left out, ...
        "as_of": answer.as_of.isoformat() if answer.as_of else None,
        "query": answer.query.to_json() if answer.query else None,
        "judgement": answer.judgement.to_json() if answer.judgement else None,
        # the answer the judgement withheld (below min_confidence), as the answerer gave it
        "withheld": answer.withheld,
        "picks": [
            {
                "sentence": p.text,
                "rank": p.rank,
                "score": p.score,
                "probability": p.probability,
                "signals": p.signals,
            }
            for p in answer.picks
        ],
        "citations": [
            {
                "n": c.n,
                "rank": c.rank,
                "chunk_id": c.chunk_id,
                "source": c.source,
                "title": c.title,
                "date": c.date,
                "quote": c.quote,
                "supported": c.supported,
            }
            for c in answer.citations
        ],
        "retrieved": [
            {
                "rank": p.rank,
                "source": p.source,
                "title": p.title,
                "date": p.date,
                "score": p.score,
                "chunk_id": p.chunk_id,
            }
            for p in answer.passages
        ],
        # generated sentences verification took out, each with the check and word that failed
        "dropped": [
            {"text": s.text, "cites": list(s.cites), "reason": s.reason} for s in answer.dropped
        ],
        # sentences whose citation verification corrected, with the model's own citations
        "recited": [{"text": s.text, "cites": list(s.cites)} for s in answer.recited],
        # sentences cut to the opening clause a passage supports: the clause kept, the sentence
        # as written, and why the whole of it was not supported
        "cut": [{"text": s.text, "whole": s.whole, "reason": s.reason} for s in answer.cut],
        # the LLM whose answer verification refused, when this is the extractive fallback
        "fallback_from": answer.fallback_from,
        "timings_ms": answer.timings_ms,
    }


def _declined(answer: Answer) -> bool:
    """Whether the model itself declined to answer (not a check of rag's)."""
    return answer.refused and (answer.refused_by or "").startswith("the model")


def _order_in(shown: Sequence[Passage], flags: dict[int, list[injection.Span]]) -> str | None:
    """Where a passage shown to the model holds text addressed to an AI assistant (flags:
    injection.flags(shown)), which may have told it what to write or to decline; None when
    none does."""
    for p in shown:
        if spans := flags.get(p.rank):
            return (
                f"passage [{p.rank}] holds text addressed to an AI assistant "
                f"({injection.describe(spans[0])}), which may have told it to"
            )
    return None


def _unsaid(stage: str) -> None:
    """The on_stage of a pipeline nobody watches."""
