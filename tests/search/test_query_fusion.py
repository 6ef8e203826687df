"""The per-query fusion weight and the offline scoring of fusion rules, on lists built by hand."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command

from apps.retrieval.store.protocol import ScoredPoint
from apps.search.evaluation.lists import load
from apps.search.evaluation.query_fusions import parse_rule
from apps.search.fusion import QueryFusion, QueryWeight, content_words, heading_match, sureness


def _points(*scores: float) -> list[ScoredPoint]:
    return [ScoredPoint(id=f"p{i}", score=s, payload={}) for i, s in enumerate(scores)]


def test_sureness_is_the_leaders_lead_over_the_head_mean_relative_to_the_heads_span():
    # head 10, 4, 2, 0: lead over the mean of the rest (2) is 8, span 10 - 0 = 10.
    assert sureness(_points(10, 4, 2, 0)) == pytest.approx(0.8)
    # a flat head and a single candidate say nothing
    assert sureness(_points(3, 3, 3)) == 0.0
    assert sureness(_points(5)) == 0.0
    # only the first `depth` scores count: 10, 4 → lead 6 over a span of 6
    assert sureness(_points(10, 4, 2, 0), depth=2) == pytest.approx(1.0)


def test_query_weight_follows_the_dense_cosine_and_stays_in_bounds():
    weight = QueryWeight(base=0.6, cosine_slope=1.0, cosine_mid=0.6, low=0.3, high=0.9)
    keyword = _points(8, 2, 1)
    assert weight(_points(0.6, 0.5), keyword) == pytest.approx(0.6)
    assert weight(_points(0.8, 0.5), keyword) == pytest.approx(0.8)
    assert weight(_points(0.95, 0.5), keyword) == pytest.approx(0.9)  # capped at high
    assert weight(_points(0.2, 0.1), keyword) == pytest.approx(0.3)  # floored at low
    # one list missing: all weight to the other
    assert weight(_points(0.7), []) == 1.0
    assert weight([], keyword) == 0.0


def test_a_sure_keyword_list_takes_weight_from_a_flat_dense_one():
    weight = QueryWeight(base=0.6, slope=0.5, cosine_slope=0.0, low=0.0, high=1.0)
    flat_dense = _points(0.50, 0.50, 0.49, 0.49)  # sureness 1/3 (lead 0.0067 over span 0.01)
    sure_keyword = _points(20, 2, 1, 0)  # sureness (20 - 1) / 20 = 0.95
    expected = 0.6 + 0.5 * (sureness(flat_dense) - sureness(sure_keyword))
    assert weight(flat_dense, sure_keyword) == pytest.approx(expected)
    assert expected < 0.6
    # and the other way round: a sure dense list against a flat keyword one
    assert weight(_points(0.9, 0.1, 0.1, 0.1), _points(3, 3, 3, 2)) > 0.6


@pytest.fixture
def lists_file(tmp_path):
    """Two queries: dense finds q1's passage first, the keywords find q2's."""
    data = {
        "name": "hand",
        "splits": {
            "test": {
                "qrels": {"q1": {"d1": 2}, "q2": {"d2": 2}},
                "queries": {
                    "q1": {
                        "text": "plain words",
                        "terms": 2,
                        "dense": [["a", "d1", 0.8], ["b", "d2", 0.5], ["c", "d3", 0.4]],
                        "sparse": [["b", "d2", 9.0], ["a", "d1", 8.9], ["c", "d3", 1.0]],
                    },
                    "q2": {
                        "text": "SO_REUSEADDR",
                        "terms": 1,
                        "dense": [["c", "d3", 0.41], ["b", "d2", 0.40], ["a", "d1", 0.39]],
                        "sparse": [["b", "d2", 15.0], ["a", "d1", 1.0]],
                    },
                },
            }
        },
    }
    path = tmp_path / "hand.json"
    path.write_text(json.dumps(data))
    return path


def test_rules_scored_offline_match_the_lists(lists_file):
    (split,) = load(lists_file)
    dense = split.score(parse_rule("dense"))
    sparse = split.score(parse_rule("sparse"))
    # dense: q1's d1 first, q2's d2 second; sparse: q1's d1 second, q2's d2 first.
    assert dense["MRR@10"] == pytest.approx((1 + 0.5) / 2)
    assert sparse["MRR@10"] == pytest.approx((0.5 + 1) / 2)
    # Fused at 0.5 (min-max per list): q1 a = 0.5 + 0.5 * 0.99 beats b = 0.125 + 0.5;
    # q2 b = 0.25 + 0.5 beats c = 0.5. Each query gets its answer first.
    assert split.score(parse_rule("fixed:w=0.5"))["MRR@10"] == pytest.approx(1.0)
    with pytest.raises(Exception, match="unknown rule"):
        parse_rule("nonsense")


def test_evaluate_fusion_prints_each_rule_with_its_worst_split(lists_file, capsys):
    call_command("evaluate_fusion", "--lists", str(lists_file), "--rule", "fixed:w=0.5")
    out = capsys.readouterr().out
    rows = {line.split()[0]: line.split() for line in out.splitlines()[2:]}
    assert set(rows) == {"dense", "sparse", "fixed:w=0.5"}
    # columns: rule, hand/test, worst, margin, R@100 worst
    assert float(rows["fixed:w=0.5"][1]) == pytest.approx(1.0)
    assert float(rows["fixed:w=0.5"][3]) > 0  # beats the better single list


def _chunk(pid: str, score: float, title: str, section: str = "") -> ScoredPoint:
    return ScoredPoint(id=pid, score=score, payload={"title": title, "section": section})


def test_the_heading_match_lifts_the_chunk_whose_heading_asks_the_question():
    fusion = QueryFusion(weight=QueryWeight(base=1.0), heading=0.2)
    dense = [
        _chunk("a", 0.70, "Worker guide", "Concurrency"),
        _chunk("b", 0.68, "FAQ", "How do I retry a failed task?"),
        _chunk("c", 0.30, "Changelog"),
    ]
    # content words of the question: retry, failed, task; "b"'s heading holds all three.
    # dense only (w = 1): a = 1, b = (0.68 - 0.3) / 0.4 = 0.95; b gains 0.2 → 1.15.
    ranked = fusion.rank(dense, [], "How do I retry a failed task?")
    assert [p.id for p, _ in ranked] == ["b", "a", "c"]
    assert dict((p.id, s) for p, s in ranked)["b"] == pytest.approx(0.95 + 0.2)
    # switched off, or a question of function words only: the plain fusion
    assert [p.id for p, _ in QueryFusion(heading=0.0).rank(dense, [], "retry task")][0] == "a"
    assert [p.id for p, _ in fusion.rank(dense, [], "how do I?")][0] == "a"


def test_heading_words_ignore_case_punctuation_and_function_words():
    words = content_words("What does `SO_REUSEADDR` do, and why?")
    assert words == {"so_reuseaddr"}
    assert heading_match(words, "Sockets › so_reuseaddr and friends") == 1.0
    assert heading_match(words, "Sockets") == 0.0
    assert heading_match(frozenset(), "anything") == 0.0
