"""Adapting the embedder to a company's own corpus, with pseudo-queries made from it.

No judged question is ever used. The pairs come from the passages alone:
- heading → passage: a section heading (or the document title of a passage without one)
  paired with the passage's text *without* that heading, so the model learns to find a
  passage from words that are not in it;
- sentence → rest (the inverse cloze task): one sentence taken out of a passage, paired
  with what is left of it.

Training is sentence-transformers' own trainer with MultipleNegativesRankingLoss: every
other passage of the batch is a negative (in-batch negatives), batches without duplicate
texts. On the CPU, in bounded time: the run stops at `max_seconds` whatever the step, and
saves what it has. torch and sentence-transformers are imported inside `train` only.
"""

from __future__ import annotations

import hashlib
import os
import random
import re
import resource
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9`\"'(])")
WORD = re.compile(r"\w+")
# A heading this generic says nothing about its passage.
GENERIC = frozenset(
    "example examples usage overview introduction note notes summary see also parameters "
    "returns options api reference index contents changes changelog".split()
)


@dataclass(frozen=True)
class Passage:
    title: str  # the document's title
    section: str  # the heading the chunk sits under ("" or the title when none)
    text: str


@dataclass(frozen=True)
class TrainReport:
    pairs: int
    steps: int
    seconds: float
    stopped_early: bool  # max_seconds was reached before the last step
    peak_rss_mb: float
    weights_sha256: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _words(text: str) -> list[str]:
    return WORD.findall(text.lower())


def normalised(text: str) -> str:
    return " ".join(_words(text))


def _heading(p: Passage) -> str:
    heading = p.section if p.section and p.section != p.title else p.title
    # "guide/tasks.rst › Retrying" → "Retrying"; a file name alone is not a question.
    heading = heading.rsplit("›", 1)[-1].strip()
    words = _words(heading)
    if len(words) < 2 or all(w in GENERIC for w in words):
        return ""
    if re.fullmatch(r"[\w/.-]+\.(rst|txt|md|html|pdf|docx?)", heading):
        return ""
    return heading


def pseudo_pairs(
    passages: Iterable[Passage],
    *,
    exclude: Sequence[str] = (),
    seed: int = 0,
    max_pairs: int | None = None,
) -> list[tuple[str, str]]:
    """(pseudo-query, passage) pairs; any pair whose query matches one of `exclude`
    (normalised: an evaluation's judged questions) is left out."""
    rng = random.Random(seed)
    banned = {normalised(q) for q in exclude}
    pairs: list[tuple[str, str]] = []
    for p in passages:
        text = p.text.strip()
        if len(_words(text)) < 8:
            continue
        heading = _heading(p)
        if heading and normalised(heading) not in banned:
            pairs.append((heading, text))
        sentences = [s for s in SENTENCE.split(text) if len(_words(s)) >= 5]
        if len(sentences) >= 3:
            i = rng.randrange(len(sentences))
            rest = " ".join(sentences[:i] + sentences[i + 1 :])
            if normalised(sentences[i]) not in banned:
                pairs.append((sentences[i], rest))
    rng.shuffle(pairs)
    return pairs[:max_pairs] if max_pairs else pairs


def _freeze_lower(model: Any, trainable: int) -> None:
    """Train only the top `trainable` transformer layers: half the backward pass on the
    CPU, and the lower layers' general English stays as it was."""
    encoder = getattr(model[0], "auto_model", None)
    layers = getattr(getattr(encoder, "encoder", None), "layer", None)
    if encoder is None or layers is None:
        return  # not a BERT-shaped model: train all of it
    for param in encoder.embeddings.parameters():
        param.requires_grad = False
    for layer in list(layers)[: max(0, len(layers) - trainable)]:
        for param in layer.parameters():
            param.requires_grad = False


def weights_sha256(directory: Path) -> str:
    """SHA-256 over the model's weight files, in name order (what the register records)."""
    digest = hashlib.sha256()
    for path in sorted(directory.rglob("*.safetensors")) + sorted(directory.rglob("*.bin")):
        digest.update(path.relative_to(directory).as_posix().encode())
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def train(
    pairs: Sequence[tuple[str, str]],
    *,
    base_path: str,
    out_dir: Path,
    batch_size: int = 32,
    epochs: int = 1,
    learning_rate: float = 2e-5,
    max_seconds: float = 1800.0,
    max_seq_length: int = 128,
    trainable_layers: int = 3,
    threads: int | None = None,
    progress: bool = True,
    log: Callable[[str], object] = print,
) -> TrainReport:
    """Fine-tune the model at `base_path` on `pairs` and save it to `out_dir`."""
    if len(pairs) < batch_size:
        raise ValueError(
            f"{len(pairs)} training pairs: too few for one batch of {batch_size}; "
            "the corpus needs more passages with headings or sentences"
        )
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import torch  # heavy
    from datasets import Dataset  # heavy
    from sentence_transformers import (  # heavy
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from sentence_transformers.sentence_transformer.losses import (  # heavy
        MultipleNegativesRankingLoss,
    )
    from sentence_transformers.sentence_transformer.training_args import (  # heavy
        BatchSamplers,
    )
    from transformers import TrainerCallback  # heavy: transformers' trainer

    torch.set_num_threads(threads or os.cpu_count() or 1)
    model = SentenceTransformer(base_path, device="cpu")
    model.max_seq_length = max_seq_length
    _freeze_lower(model, trainable_layers)
    data = Dataset.from_dict({"anchor": [q for q, _ in pairs], "positive": [p for _, p in pairs]})
    started = time.monotonic()
    stopped = {"early": False}

    class Deadline(TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
            if time.monotonic() - started > max_seconds:
                stopped["early"] = state.global_step < state.max_steps
                control.should_training_stop = True
            return control

    work = out_dir.parent / f".{out_dir.name}-trainer"
    args = SentenceTransformerTrainingArguments(
        output_dir=str(work),
        num_train_epochs=epochs,
        per_device_train_batch_size=batch_size,
        learning_rate=learning_rate,
        warmup_steps=0.1,
        batch_sampler=BatchSamplers.NO_DUPLICATES,
        save_strategy="no",
        report_to="none",
        logging_steps=50,
        disable_tqdm=not progress,
        use_cpu=True,
        seed=0,
        data_seed=0,
        dataloader_num_workers=0,
    )
    trainer = SentenceTransformerTrainer(
        model=model,
        args=args,
        train_dataset=data,
        loss=MultipleNegativesRankingLoss(model),
        callbacks=[Deadline()],
    )
    result = trainer.train()
    model.save(str(out_dir))
    seconds = time.monotonic() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    report = TrainReport(
        pairs=len(pairs),
        steps=int(result.global_step),
        seconds=round(seconds, 1),
        stopped_early=stopped["early"],
        peak_rss_mb=round(peak, 1),
        weights_sha256=weights_sha256(out_dir),
    )
    log(
        f"trained {report.steps} steps on {report.pairs} pairs in {report.seconds:.0f} s"
        + (" (stopped at the time limit)" if report.stopped_early else "")
        + f", peak RSS {report.peak_rss_mb:.0f} MB"
    )
    return report
