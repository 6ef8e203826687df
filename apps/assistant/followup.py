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
STANDALONE_MIN_WORDS = 3


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


def search_query(question: str, earlier_queries: list[str]) -> SearchQuery:
    """The text to search for `question`, given what the earlier questions of the
    conversation were searched for (oldest first)."""
    if not earlier_queries or not depends_on_conversation(question):
        return SearchQuery(question, rewritten=False)
    previous = earlier_queries[-1]
    mine = content_words(question)
    carried = [w for w in previous.split() if w.strip("?.,!;:").lower() not in mine]
    return SearchQuery(f"{question} {' '.join(carried)}".strip(), rewritten=True)
