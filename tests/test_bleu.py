"""Corpus BLEU against hand-computed examples (nltk's documented ones and our own).

Every expected number below is derived in the comments from clipped n-gram counts, the
brevity penalty and the geometric mean, so a reader can check it with a pencil.
"""

from __future__ import annotations

import math

import pytest

from jobs.ml.bleu import closest_reference_length, corpus_bleu, corpus_statistics


def tok(text: str) -> list[str]:
    return text.split()


# nltk's documented example (nltk.translate.bleu_score, sentence_bleu / corpus_bleu docstrings).
HYP1 = tok("It is a guide to action which ensures that the military always obeys the commands of the party")
REF1A = tok("It is a guide to action that ensures that the military will forever heed Party commands")
REF1B = tok("It is the guiding principle which guarantees the military forces always being under the command "
            "of the Party")
REF1C = tok("It is the practical guide for the army always to heed the directions of the party")
HYP2 = tok("he read the book because he was interested in world history")
REF2A = tok("he was interested in world history because he read the book")


def test_nltk_sentence_example_by_hand():
    # Hypothesis: 18 tokens; references: 16, 18 and 16 tokens -> closest 18, c = r = 18, BP = 1.
    # Unigrams: all but "obeys" occur in some reference; "the" x3 is clipped by ref1b/ref1c (4 each)
    #   so stays 3; "party" (lowercase) is in ref1c. p1 = 17/18.
    # Bigrams (17): It is, is a, a guide, guide to, to action, ensures that, that the, the military,
    #   of the, the party match -> p2 = 10/17.
    # Trigrams (16): It is a, is a guide, a guide to, guide to action, ensures that the,
    #   that the military, of the party -> p3 = 7/16.
    # 4-grams (15): It is a guide, is a guide to, a guide to action, ensures that the military
    #   -> p4 = 4/15.
    # BLEU-4 = (17/18 * 10/17 * 7/16 * 4/15) ** (1/4) = (280/4320) ** 0.25 = 0.5045666840058485 (nltk's value).
    stats = corpus_statistics([[REF1A, REF1B, REF1C]], [HYP1])
    assert stats["matches"] == [17, 10, 7, 4]
    assert stats["totals"] == [18, 17, 16, 15]
    assert stats["hypothesis_length"] == stats["reference_length"] == 18
    scores = corpus_bleu([[REF1A, REF1B, REF1C]], [HYP1])
    assert scores["bleu4"] == pytest.approx(0.5045666840058485, abs=1e-15)
    assert scores["bleu1"] == pytest.approx(17 / 18)  # 0.9444...
    assert scores["bleu2"] == pytest.approx(math.sqrt(17 / 18 * 10 / 17))  # 0.7453559924999299
    assert scores["bleu3"] == pytest.approx((17 / 18 * 10 / 17 * 7 / 16) ** (1 / 3))  # 0.6240726989348756


def test_nltk_corpus_example_by_hand():
    # Adds hyp2 (11 tokens) against ref2a (11 tokens, the same words reordered):
    #   unigrams 11/11; bigrams 9/10 (all but "book because"); trigrams 6/9 (he read the, read the book,
    #   he was interested, was interested in, interested in world, in world history);
    #   4-grams 4/8 (he read the book, he was interested in, was interested in world,
    #   interested in world history).
    # Corpus sums: p1 = 28/29, p2 = 19/27, p3 = 13/25, p4 = 8/23; c = r = 29, BP = 1.
    # BLEU-4 = (28/29 * 19/27 * 13/25 * 8/23) ** 0.25 = (55328/450225) ** 0.25 = 0.5920778868801042,
    # nltk's documented corpus_bleu value (0.5920...). It is NOT the mean of the sentence scores.
    stats = corpus_statistics([[REF1A, REF1B, REF1C], [REF2A]], [HYP1, HYP2])
    assert stats["matches"] == [28, 19, 13, 8]
    assert stats["totals"] == [29, 27, 25, 23]
    scores = corpus_bleu([[REF1A, REF1B, REF1C], [REF2A]], [HYP1, HYP2])
    assert scores["bleu4"] == pytest.approx(0.5920778868801042, abs=1e-15)


def test_tiny_corpus_fully_by_hand_with_brevity_penalty():
    # Sentence 1: hyp "a red circle on the left" (6) vs "a red circle on the left side" (7) and
    #   "there is a red disc to the left" (8): every hypothesis n-gram is in the first reference:
    #   1-grams 6/6, 2-grams 5/5, 3-grams 4/4, 4-grams 3/3. Closest reference length: 7.
    # Sentence 2: hyp "a blue square" (3) vs "a big blue square at the top" (7) and
    #   "blue square near the top" (5): 1-grams 3/3, 2-grams 1/2 ("blue square"; not "a blue"),
    #   3-grams 0/1, 4-grams 0/1 (no 4-gram in 3 words: nltk counts a denominator of max(1, 0) = 1).
    #   Closest reference length: 5 (|5-3| = 2 < |7-3| = 4).
    # Corpus: p1 = 9/9, p2 = 6/7, p3 = 4/5, p4 = 3/4; c = 9, r = 7 + 5 = 12, BP = exp(1 - 12/9) = exp(-1/3)
    #   = 0.7165313105737893.
    # BLEU-1 = BP = 0.7165313105737893
    # BLEU-2 = BP * (6/7) ** (1/2) = 0.6633790894455827
    # BLEU-3 = BP * (6/7 * 4/5) ** (1/3) = 0.6318532715573542
    # BLEU-4 = BP * (6/7 * 4/5 * 3/4) ** (1/4) = 0.6067870281358011
    refs = [[tok("a red circle on the left side"), tok("there is a red disc to the left")],
            [tok("a big blue square at the top"), tok("blue square near the top")]]
    hyps = [tok("a red circle on the left"), tok("a blue square")]
    stats = corpus_statistics(refs, hyps)
    assert stats == {"matches": [9, 6, 4, 3], "totals": [9, 7, 5, 4], "hypothesis_length": 9,
                     "reference_length": 12}
    scores = corpus_bleu(refs, hyps)
    assert scores == pytest.approx({"bleu1": 0.7165313105737893, "bleu2": 0.6633790894455827,
                                    "bleu3": 0.6318532715573542, "bleu4": 0.6067870281358011}, abs=1e-12)


def test_brevity_penalty_of_a_short_hypothesis():
    # "the cat sat" (3) vs "the cat sat on the mat" (6): p1 = p2 = p3 = 1, BP = exp(1 - 6/3) = 1/e.
    # p4 = 0/1 (three words have no 4-gram) -> BLEU-4 = 0.
    scores = corpus_bleu([[tok("the cat sat on the mat")]], [tok("the cat sat")])
    assert scores["bleu1"] == pytest.approx(math.exp(-1))  # 0.36787944117144233
    assert scores["bleu3"] == pytest.approx(math.exp(-1))
    assert scores["bleu4"] == 0.0


def test_closest_reference_length_prefers_the_shorter_on_a_tie():
    # Hypothesis of 5 words, references of 4 and 6: both 1 away -> 4, so c = 5 > r = 4 and BP = 1.
    # (Taking 6 would give BP = exp(1 - 6/5) = 0.8187.)
    assert closest_reference_length([tok("a b c d e f"), tok("a b c d")], 5) == 4
    scores = corpus_bleu([[tok("w x y z v u"), tok("a b c d")]], [tok("a b c d e")])
    assert scores["bleu1"] == pytest.approx(4 / 5)  # BP 1 times 4 matching unigrams out of 5


def test_perfect_match_is_one_and_no_overlap_is_zero():
    refs = [[tok("a red circle on the left"), tok("a small red disc at the left side")]]
    perfect = corpus_bleu(refs, [tok("a red circle on the left")])
    assert perfect == {"bleu1": 1.0, "bleu2": 1.0, "bleu3": 1.0, "bleu4": 1.0}
    nothing = corpus_bleu(refs, [tok("green square bottom")])
    assert nothing == {"bleu1": 0.0, "bleu2": 0.0, "bleu3": 0.0, "bleu4": 0.0}


def test_clipping_repeated_words():
    # Papineni's example: "the" x7 against "the cat is on the mat" ("the" twice) and
    # "there is a cat on the mat" ("the" once): clipped to 2, p1 = 2/7. c = 7, closest r = 7, BP = 1.
    refs = [[tok("the cat is on the mat"), tok("there is a cat on the mat")]]
    scores = corpus_bleu(refs, [tok("the the the the the the the")])
    assert scores["bleu1"] == pytest.approx(2 / 7)  # 0.2857142857142857, not 7/7
    assert scores["bleu2"] == 0.0  # "the the" is in no reference


def test_empty_hypothesis_and_corpus_and_errors():
    assert corpus_bleu([[tok("a cat")]], [[]])["bleu1"] == 0.0
    assert corpus_bleu([], []) == {"bleu1": 0.0, "bleu2": 0.0, "bleu3": 0.0, "bleu4": 0.0}
    assert set(corpus_bleu([[tok("a b")]], [tok("a b")], max_n=2)) == {"bleu1", "bleu2"}
    with pytest.raises(ValueError):
        corpus_bleu([[tok("a")]], [tok("a"), tok("b")])
    with pytest.raises(ValueError):
        corpus_bleu([[]], [tok("a")])
