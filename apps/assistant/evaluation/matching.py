"""Whether a text holds an acceptable answer, as whole words.

Both sides are lower-cased and every run of whitespace and punctuation becomes one space,
so "27 days" is found in "27 days' annual leave" and "Vacation: 27 Days", while "50" is
not found in "500". Punctuation inside a figure splits it too: "£1,980" reads "1 980", so
an answer file gives "1,980" (which reads the same), and "1980" only if the documents
write it so.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# Anything that is not a letter or a digit, in any script; "_" counts as punctuation here.
_SEPARATORS = re.compile(r"[\W_]+")


def normalise(text: str) -> str:
    return _SEPARATORS.sub(" ", text.lower()).strip()


def contains_answer(text: str, answers: Iterable[str]) -> bool:
    """True when any acceptable answer occurs in text as whole words."""
    haystack = f" {normalise(text)} "
    for answer in answers:
        needle = normalise(answer)
        if needle and f" {needle} " in haystack:
            return True
    return False
