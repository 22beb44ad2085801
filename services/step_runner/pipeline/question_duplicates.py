"""Questions that repeat an earlier one: the same text after normalising width, case, punctuation and
spaces, or nearly so (character-bigram Jaccard >= 0.9 with the same numbers in the same order)."""

from __future__ import annotations

import re
import unicodedata

_DUP_THRESHOLD = 0.9


def normalise_question(question: str) -> str:
    text = unicodedata.normalize("NFKC", question).lower()
    return "".join(ch for ch in text if ch.isalnum())


def _bigrams(text: str) -> frozenset[str]:
    return frozenset(text[i : i + 2] for i in range(len(text) - 1)) or frozenset({text})


def find_duplicates(questions: list[str]) -> dict[int, int]:
    """index -> the index of the earlier question it repeats (same normalised text, or bigram Jaccard >=
    0.9 with the same numbers in the same order)."""
    norm = [normalise_question(q) for q in questions]
    grams = [_bigrams(n) for n in norm]
    digits = [tuple(re.findall(r"\d+", n)) for n in norm]
    first: dict[str, int] = {}
    out: dict[int, int] = {}
    kept: list[int] = []
    for i, n in enumerate(norm):
        if n in first:
            out[i] = first[n]
            continue
        for j in kept:
            if digits[i] != digits[j] or min(len(norm[i]), len(norm[j])) < _DUP_THRESHOLD * max(
                len(norm[i]), len(norm[j])
            ):
                continue
            inter = len(grams[i] & grams[j])
            if inter / len(grams[i] | grams[j]) >= _DUP_THRESHOLD:
                out[i] = j
                break
        else:
            first[n] = i
            kept.append(i)
    return out
