"""Corpus BLEU (Papineni et al., 2002), computed as nltk's `corpus_bleu` computes it.

No smoothing and uniform weights: BLEU-n is the geometric mean of the modified 1..n-gram
precisions, times the brevity penalty. For each n, a hypothesis n-gram counts at most as many
times as it occurs in the one reference that has it most often ("clipping"); the clipped counts
and the hypothesis n-gram counts are summed over the whole corpus before dividing (a corpus
score, not a mean of sentence scores). The brevity penalty compares the summed hypothesis
length c with the summed effective reference length r, where each sentence contributes the
length of its reference closest in length to the hypothesis (the shorter one on a tie):
BP = 1 when c > r, else exp(1 - r / c) (0 when c is 0).

Details that follow nltk exactly: a hypothesis shorter than n contributes one to the n-gram
denominator (nltk divides by max(1, count) per sentence before summing), and a score is 0 when
the corpus has no matching unigram. Where a higher-order precision is 0, nltk (without
smoothing) warns and substitutes the smallest positive float, which yields about 1e-77 for
BLEU-4; this module returns exactly 0.0 there, the same value to any printed precision.

Pure Python (collections + math): no nltk, no data downloads, cheap to import anywhere.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

Tokens = Sequence[str]


def ngrams(tokens: Tokens, n: int) -> Counter:
    """Counts of the n-grams (as tuples) in one token sequence."""
    return Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


def closest_reference_length(references: Sequence[Tokens], hypothesis_length: int) -> int:
    """The reference length nearest the hypothesis length; the shorter one on a tie (as nltk)."""
    return min((len(ref) for ref in references), key=lambda length: (abs(length - hypothesis_length), length))


def brevity_penalty(reference_length: int, hypothesis_length: int) -> float:
    if hypothesis_length > reference_length:
        return 1.0
    if hypothesis_length == 0:
        return 0.0
    return math.exp(1.0 - reference_length / hypothesis_length)


def corpus_statistics(references: Sequence[Sequence[Tokens]], hypotheses: Sequence[Tokens],
                      max_n: int = 4) -> dict:
    """The sums BLEU is made of: clipped matches and n-gram totals per n, and the two lengths.

    {"matches": [m1..m_max_n], "totals": [t1..t_max_n], "hypothesis_length": c, "reference_length": r}.
    """
    if len(references) != len(hypotheses):
        raise ValueError(f"BLEU needs one list of references per hypothesis; got {len(references)} reference "
                         f"lists for {len(hypotheses)} hypotheses.")
    if max_n < 1:
        raise ValueError("BLEU needs n-grams of at least one word (max_n >= 1).")
    matches, totals = [0] * max_n, [0] * max_n
    hyp_length = ref_length = 0
    for refs, hyp in zip(references, hypotheses, strict=True):
        if not refs:
            raise ValueError("Every hypothesis needs at least one reference.")
        for n in range(1, max_n + 1):
            counts = ngrams(hyp, n)
            best: Counter = Counter()
            for ref in refs:
                best |= ngrams(ref, n)  # `|` keeps the larger count of each n-gram
            matches[n - 1] += sum(min(count, best[gram]) for gram, count in counts.items())
            totals[n - 1] += max(1, sum(counts.values()))
        hyp_length += len(hyp)
        ref_length += closest_reference_length(refs, len(hyp))
    return {"matches": matches, "totals": totals, "hypothesis_length": hyp_length, "reference_length": ref_length}


def bleu_from_statistics(stats: dict, n: int) -> float:
    """BLEU-n with uniform weights 1/n from `corpus_statistics` (which must reach n-grams of n)."""
    matches, totals = stats["matches"][:n], stats["totals"][:n]
    if len(matches) < n:
        raise ValueError(f"The statistics stop at {len(stats['matches'])}-grams; BLEU-{n} needs {n}-grams.")
    if any(m == 0 for m in matches):
        return 0.0
    log_precision = math.fsum(math.log(m / t) for m, t in zip(matches, totals, strict=True)) / n
    return brevity_penalty(stats["reference_length"], stats["hypothesis_length"]) * math.exp(log_precision)


def corpus_bleu(references: list[list[list[str]]], hypotheses: list[list[str]], max_n: int = 4) -> dict[str, float]:
    """{"bleu1": .., ..., "bleu<max_n>": ..}: corpus BLEU-1..max_n of tokenised hypotheses.

    `references[i]` is the list of tokenised references of `hypotheses[i]` (all of them count).
    An empty corpus scores 0.
    """
    stats = corpus_statistics(references, hypotheses, max_n)
    return {f"bleu{n}": bleu_from_statistics(stats, n) for n in range(1, max_n + 1)}
