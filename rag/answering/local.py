"""A transformers model run in this process, as a LangChain chat model (`--llm local:MODEL`).

Being a `BaseChatModel`, it is answered through `LLMAnswerer` like Ollama or an OpenAI server:
the same prompts, streaming, condensing and error handling. It formats messages with the
model's own chat template, decodes greedily, streams through `TextIteratorStreamer` while
generating in a thread, and stops that thread when the caller stops reading (Ctrl-C).

It does not keep the system prompt's KV cache across questions: measured here, starting from a
copy of it made the time to first token longer, not shorter (bench/RESULTS.md); the system
prompt is only about a tenth of a prompt's tokens.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models.chat_models import BaseChatModel, generate_from_stream
from langchain_core.messages import AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from pydantic import PrivateAttr

from rag.devices import torch_device


def weights_dtype(setting: str, device: str = "cpu") -> str:
    """The dtype a local model's weights load in: the setting, with 'auto' resolved for the
    device (a CUDA GPU: bfloat16 where it has it)."""
    if setting != "auto":
        return setting
    import torch

    if device == "cuda":
        return "bfloat16" if torch.cuda.is_bf16_supported() else "float32"

    # Reading a prompt is matrix products; bfloat16 halves the bytes and, with native
    # instructions, about doubles their speed here (bench/LOCAL_LLM.md). Without them torch
    # emulates bfloat16 (not measured here), so float32 stays. The checks are torch's own,
    # private ones.
    native = [
        getattr(torch.cpu, name, lambda: False)()
        for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    ]
    return "bfloat16" if any(native) else "float32"


_ROLES = {"system": "system", "human": "user", "ai": "assistant"}


class LocalChatModel(BaseChatModel):
    """A converted local model folder (see rag/local_models.py), loaded on first use."""

    folder: Path
    max_new_tokens: int = 256
    threads: int = 1
    # 'auto': bfloat16 where the CPU has native bfloat16 arithmetic, else float32.
    dtype: Literal["auto", "float32", "bfloat16"] = "auto"
    # 'auto': CUDA when torch sees it, else the CPU (rag/devices.py).
    device: Literal["auto", "cpu", "cuda"] = "cpu"

    _model: Any = PrivateAttr(default=None)
    _tokenizer: Any = PrivateAttr(default=None)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @property
    def _llm_type(self) -> str:
        return "rag-local-transformers"

    def _load(self) -> tuple[Any, Any]:
        if self._model is None:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer
            from transformers.utils import logging

            logging.disable_progress_bar()  # a "Loading weights" bar would interleave the answer
            # Process-wide: prompt processing dominates and is compute-bound; see
            # bench/RESULTS.md for one thread against two on this machine.
            torch.set_num_threads(self.threads)
            self._tokenizer = AutoTokenizer.from_pretrained(self.folder)
            device = torch_device(self.device)
            chosen = weights_dtype(self.dtype, device)
            dtype = torch.bfloat16 if chosen == "bfloat16" else torch.float32
            model = AutoModelForCausalLM.from_pretrained(self.folder, dtype=dtype)
            self._model = model.to(device).eval()
        return self._model, self._tokenizer

    def _prompt_ids(self, messages: list[BaseMessage]) -> Any:
        """The prompt's token ids (a 1 x n tensor), formatted by the model's chat template."""
        _, tokenizer = self._load()
        chat = [{"role": _ROLES.get(m.type, "user"), "content": m.text} for m in messages]
        text = tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
        return tokenizer(text, return_tensors="pt", add_special_tokens=False)["input_ids"]

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return generate_from_stream(self._stream(messages, stop, run_manager, **kwargs))

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

        model, tokenizer = self._load()
        ids = self._prompt_ids(messages).to(model.device)
        cancelled = threading.Event()

        class Cancelled(StoppingCriteria):
            def __call__(self, input_ids: Any, scores: Any, **kw: Any) -> bool:
                return cancelled.is_set()

        streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
        failed: list[BaseException] = []

        def generate() -> None:
            try:
                with torch.inference_mode():
                    model.generate(
                        input_ids=ids,
                        attention_mask=torch.ones_like(ids),
                        max_new_tokens=self.max_new_tokens,
                        do_sample=False,
                        temperature=None,
                        top_p=None,
                        top_k=None,
                        pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id,
                        streamer=streamer,
                        stopping_criteria=StoppingCriteriaList([Cancelled()]),
                    )
            except BaseException as exc:  # reported in the caller's thread below
                failed.append(exc)
                streamer.end()

        with self._lock:  # one generation at a time: they would share the threads anyway
            thread = threading.Thread(target=generate, name="rag-local-generate", daemon=True)
            thread.start()
            try:
                for text in streamer:
                    if not text:
                        continue
                    chunk = ChatGenerationChunk(message=AIMessageChunk(content=text))
                    if run_manager:
                        run_manager.on_llm_new_token(text, chunk=chunk)
                    yield chunk
            finally:  # the reader stopped (done, Ctrl-C, an error): stop generating too
                cancelled.set()
                thread.join()
        if failed:
            raise failed[0]
