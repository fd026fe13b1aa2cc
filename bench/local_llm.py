"""Time a local model (`--llm local:MODEL`) against the extractive answerer on the same questions.

Per question: prompt tokens, time to first token, total answer time, generated tokens and
decoding speed, for each thread count and weights dtype asked for (the dtypes one after the
other on each question, so they share the machine's load); the extractive answer's time beside
it. Run from the repo root over an index of the shipped articles (`rag index` first):

    python bench/local_llm.py qwen2.5-coder-0.5b --threads 1 2 --dtypes float32 bfloat16

Prints one JSON object a line: the model and machine, then one per question and thread count.
`--save bench/local_llm.jsonl` also appends them there, which `python bench/bench.py --render`
shows in bench/RESULTS.md beside the extractive answerer. The model must be installed (see
README).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from datetime import date

QUESTIONS = [
    "Where is the drone factory being built?",
    "Who is Iran's defence minister?",
    "When were the sanctions announced?",
]


def main() -> None:
    """Measure and print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="a packaged model name or a .gguf path")
    parser.add_argument("--threads", type=int, nargs="+", default=[1])
    parser.add_argument(
        "--dtypes",
        nargs="+",
        choices=["auto", "float32", "bfloat16"],
        default=["auto"],
        help="weights dtypes (RAG_LOCAL_DTYPE), each loaded once and timed on every question",
    )
    parser.add_argument(
        "--budgets",
        type=int,
        nargs="+",
        help="Tuning.prompt_budget values, each timed on every question (0: passages whole; "
        "default: the setting's)",
    )
    parser.add_argument("--max-new-tokens", type=int, default=200)
    parser.add_argument("--save", type=argparse.FileType("a"), help="also append the lines here")
    args = parser.parse_args()

    def emit(record: dict) -> None:
        line = json.dumps(record)
        print(line, flush=True)
        if args.save:
            args.save.write(line + "\n")
            args.save.flush()

    import torch

    from rag.answering.llm import LLMAnswerer
    from rag.answering.local import LocalChatModel, weights_dtype
    from rag.pipeline import Pipeline
    from rag.question import analyse
    from rag.settings import Settings

    load_avg = os.getloadavg()[0]
    settings = Settings(llm=f"local:{args.model}", llm_max_tokens=args.max_new_tokens)
    pipeline = Pipeline(settings)
    started = time.perf_counter()
    answerer = pipeline.answerer()  # locate, check and (first time) convert the model
    prepared = time.perf_counter() - started
    assert isinstance(answerer, LLMAnswerer) and isinstance(answerer.chat, LocalChatModel)
    chats: dict[str, LocalChatModel] = {}
    loaded: dict[str, float] = {}
    for dtype in dict.fromkeys(weights_dtype(d) for d in args.dtypes):
        chats[dtype] = LocalChatModel(
            folder=answerer.chat.folder,
            max_new_tokens=answerer.chat.max_new_tokens,
            threads=answerer.chat.threads,
            dtype=dtype,
        )
        started = time.perf_counter()
        chats[dtype].invoke("Hi")  # loads the weights (and answers one tiny prompt)
        loaded[dtype] = round(time.perf_counter() - started, 2)
    chat = next(iter(chats.values()))
    tokenizer = chat._tokenizer  # noqa: SLF001 - loaded above; counts tokens only
    extractive = pipeline.with_settings(settings.with_overrides(llm="extractive"))
    emit(
        {
            "model": args.model,
            "date": date.today().isoformat(),
            "commit": _commit(),
            "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
            "torch": torch.__version__,
            "load_average_at_start": round(load_avg, 2),
            "prepare_s": round(prepared, 2),
            "load_and_first_reply_s": loaded,
        }
    )
    budgets = args.budgets or [settings.tuning.prompt_budget]
    for threads in args.threads:
        torch.set_num_threads(threads)
        for question, budget in ((q, b) for q in QUESTIONS for b in budgets):
            query = analyse(question, date.today(), settings.tuning)
            passages = pipeline.retriever.search(query, settings).passages
            # The same model, shown the passages cut to this budget (0: whole).
            shown = LLMAnswerer(
                answerer.chat,
                settings.with_overrides(tuning={"prompt_budget": budget}),
                answerer.name,
                answerer.url,
                answerer.ranker,
                answerer.count,
            )
            messages = shown.messages(query, passages)
            prompt = chat._prompt_ids(messages).shape[1]  # noqa: SLF001
            t0 = time.perf_counter()
            extractive.ask(question)
            extractive_s = time.perf_counter() - t0
            for dtype, model in chats.items():
                first: float | None = None
                parts: list[str] = []
                t0 = time.perf_counter()
                for chunk in model.stream(messages):
                    if first is None:
                        first = time.perf_counter() - t0
                    parts.append(str(chunk.content))
                total = time.perf_counter() - t0
                answer = "".join(parts)
                generated = len(tokenizer(answer, add_special_tokens=False)["input_ids"])
                decode = (generated - 1) / (total - first) if first and generated > 1 else None
                emit(
                    {
                        "threads": threads,
                        "dtype": dtype,
                        "prompt_budget": budget,
                        "question": question,
                        "prompt_tokens": prompt,
                        "ttft_s": round(first or 0.0, 2),
                        "answer_s": round(total, 2),
                        "generated_tokens": generated,
                        "decode_tokens_per_s": round(decode, 1) if decode else None,
                        "prompt_tokens_per_s": round(prompt / first, 1) if first else None,
                        "extractive_ask_s": round(extractive_s, 2),
                        "load_average": round(os.getloadavg()[0], 2),
                        "answer": answer,
                    }
                )


def _commit() -> str | None:
    """The repository's commit (short), if git can tell."""
    import subprocess

    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.strip() or None


if __name__ == "__main__":
    main()
