"""A follow-up question searched as the standalone question it stands for.

"And can I carry them over to next year?" finds nothing on its own words. When a question
depends on the conversation, the search runs on the question together with the words the
previous question was searched for. The rule (chosen on the answer dev sets over a
rewrite by the local model, see README "Answers"): a question depends on the conversation
when it opens like a continuation ("and", "what about", …), points back with a pronoun or
"that/those", or is too short to stand on its own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from apps.assistant.sentences import content_words

_OPENERS = re.compile(
    r"^\s*(and|but|also|so|then|or|what about|how about|what if|same for)\b", re.IGNORECASE
)
_POINTERS = re.compile(
    r"\b(it|its|they|them|their|theirs|that|those|these|he|she|him|his|same|else|instead|"
    r"too|either)\b",
    re.IGNORECASE,
)
# A question with fewer content words than this cannot stand on its own.
STANDALONE_MIN_WORDS = 2


@dataclass(frozen=True)
class SearchQuery:
    text: str  # what is searched
    rewritten: bool  # True when earlier turns were added to the question


def depends_on_conversation(question: str) -> bool:
    return (
        bool(_OPENERS.search(question))
        or bool(_POINTERS.search(question))
        or len(content_words(question)) < STANDALONE_MIN_WORDS
    )


# How many earlier questions a follow-up may lean on: "And can I carry them over?" can
# point past a question in between ("vacation days", then "first day", then this).
LOOK_BACK = 3


def search_queries(question: str, earlier_queries: list[str]) -> list[SearchQuery]:
    """What to search for `question`, given what the earlier questions of the conversation
    were searched for (oldest first): the question itself when it stands alone; otherwise
    the question with the words of each of the last `LOOK_BACK` earlier questions, most
    recent first. The caller searches each and keeps the one with the best evidence."""
    if not earlier_queries or not depends_on_conversation(question):
        return [SearchQuery(question, rewritten=False)]
    mine = content_words(question)
    out: list[SearchQuery] = []
    for previous in reversed(earlier_queries[-LOOK_BACK:]):
        carried = [w for w in previous.split() if w.strip("?.,!;:").lower() not in mine]
        query = SearchQuery(f"{question} {' '.join(carried)}".strip(), rewritten=True)
        if query not in out:
            out.append(query)
    return out


def search_query(question: str, earlier_queries: list[str]) -> SearchQuery:
    """The first of `search_queries`: the question with the previous question's words."""
    return search_queries(question, earlier_queries)[0]
