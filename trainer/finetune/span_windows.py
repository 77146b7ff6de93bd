"""Span extraction (SQuAD v1.1 / v2.0 format): reading, sliding windows, labels, n-best decoding and EM/F1.

    windows = squad_windows(tokenizer, example, max_seq_len=384, stride=128)   # [CLS] question [SEP] context [SEP]
    start, end = answer_positions(windows[0], char_start, char_end)            # labels; (0, 0) = not in window
    text = predict_answer(example.context, windows, start_logits, end_logits)  # best span over all windows
    em, f1 = squad_em_f1(text, [answer for answer, _ in example.answers])
    scores = squad2_scores(predictions, null_odds, examples)  # v2.0: HasAns/NoAns, the best null threshold

A SQuAD 2.0 question without answers (is_impossible) has `answers == ()`; its training label is [CLS] (0, 0).

Follows Google BERT's run_squad.py (doc stride, "max context" positions, n-best search) on aligned examples:
windows cut only between coarse tokens, so both granularities stay aligned. Plain numpy; no model here.
"""

from __future__ import annotations

import json
import re
import string
from collections import Counter
from dataclasses import dataclass

import numpy as np

from vocab.aligned_codec import ShardExample

Span = tuple[int, int]


class SquadError(ValueError):
    """A SQuAD-format file that cannot be used (names the file and the question id)."""


@dataclass(frozen=True)
class SquadExample:
    """One question on one context; answers: (text, character start in the context), possibly several."""

    id: str
    question: str
    context: str
    answers: tuple[tuple[str, int], ...]


@dataclass(frozen=True, eq=False)
class SpanWindow:
    """One model input for a question: `example` is [CLS] question [SEP] context window [SEP] at both granularities.

    Per fine position of `example`: char_spans = the token's (start, end) characters in the context (None for
    question and special tokens); max_context = this window gives the token its most centred view (each context
    token is max-context in exactly one window). doc_start:doc_end = the window's fine tokens counted in the
    context alone (without [CLS]); doc_length = the context's fine tokens in all.
    """

    example: ShardExample
    char_spans: tuple[Span | None, ...]
    max_context: tuple[bool, ...]
    doc_start: int
    doc_end: int
    doc_length: int


# -- reading ----------------------------------------------------------------------------------------
def read_squad(path: str) -> list[SquadExample]:
    """The questions of a SQuAD v1.1 JSON file, in file order; every answer must match its context characters."""
    try:
        with open(path, encoding="utf-8") as handle:
            document = json.load(handle)
    except FileNotFoundError as error:
        raise SquadError(f"{path} not found") from error
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise SquadError(f"{path} is not UTF-8 JSON: {error}") from error
    if not isinstance(document, dict) or not isinstance(document.get("data"), list):
        raise SquadError(f"{path}: expected SQuAD format, an object with a 'data' list of articles")
    examples, seen = [], set()
    for article_number, article in enumerate(document["data"]):
        for paragraph_number, paragraph in enumerate(article.get("paragraphs", [])):
            context = paragraph.get("context")
            if not isinstance(context, str):
                raise SquadError(f"{path}: article {article_number}, paragraph {paragraph_number} has no context text")
            for qa in paragraph.get("qas", []):
                examples.append(_squad_example(path, context, qa))
                if examples[-1].id in seen:
                    raise SquadError(f"{path}: question id {examples[-1].id!r} appears twice; ids must be unique")
                seen.add(examples[-1].id)
    return examples


def _squad_example(path: str, context: str, qa: dict) -> SquadExample:
    qid = qa.get("id")
    if not isinstance(qid, str) or not qid:
        raise SquadError(f"{path}: a question without a string id: {str(qa)[:120]}")
    if not isinstance(qa.get("question"), str) or not qa["question"].strip():
        raise SquadError(f"{path}: question {qid} has no question text")
    answers = []
    for answer in qa.get("answers", []):
        text, start = answer.get("text"), answer.get("answer_start")
        if not isinstance(text, str) or not isinstance(start, int) or not text:
            raise SquadError(f"{path}: question {qid} has an answer without text and integer answer_start")
        if context[start : start + len(text)] != text:
            raise SquadError(
                f"{path}: question {qid}: answer {text!r} is not at answer_start {start} of its "
                f"context (found {context[start : start + len(text)]!r}); fix answer_start"
            )
        answers.append((text, start))
    return SquadExample(qid, qa["question"], context, tuple(answers))


# -- windows ----------------------------------------------------------------------------------------
def squad_windows(
    tokenizer, example: SquadExample, max_seq_len: int, stride: int, max_question_len: int = 64
) -> list[SpanWindow]:
    """make_windows over `tokenizer.encode` (a vocab.multigrained.MultiGrainedTokenizer) of question and context."""
    return make_windows(
        tokenizer.encode(example.question),
        tokenizer.encode(example.context),
        max_seq_len,
        stride,
        max_question_len,
        key=example.id,
    )


def make_windows(
    question, context, max_seq_len: int, stride: int, max_question_len: int = 64, key: str = "window"
) -> list[SpanWindow]:
    """Windows [CLS] question [SEP] context[doc_start:doc_end] [SEP] of ≤ max_seq_len tokens on both sides.

    `question` and `context` are AlignedExamples of one text each ([CLS] text [SEP]). The question keeps its
    first whole coarse tokens within max_question_len fine tokens. `stride` is Google's doc_stride: the step
    between window starts in fine tokens, moved back to a coarse boundary but at least one coarse token on (so
    neighbours overlap by about window - stride tokens). Windows never cut inside a coarse token; one longer
    than a whole window falls back to its fine pieces as coarse tokens (as the tokenizer does for units outside
    the coarse vocabulary), which keeps every context token in some window. Window keys are f"{key}-{number}".
    """
    if stride < 1:
        raise ValueError(f"stride {stride} must be at least 1 fine token")
    if max_seq_len < 4:
        raise ValueError(f"max_seq_len {max_seq_len} leaves no room for a context token besides [CLS] and two [SEP]")
    q_align = np.asarray(question.align, dtype=np.int64)
    q_ends = q_align[1:-1, 1] - 1  # fine end of each question coarse token, counted without [CLS]
    q_keep = int(np.searchsorted(q_ends, min(max_question_len, max_seq_len - 4), side="right"))
    q_fine = int(q_ends[q_keep - 1]) if q_keep else 0
    budget = max_seq_len - 3 - q_fine
    units = _context_units(context, budget)  # (coarse id, coarse offsets, fine start, fine end), without [CLS]
    starts = np.asarray([unit[2] for unit in units], dtype=np.int64)
    ends = np.asarray([unit[3] for unit in units], dtype=np.int64)
    spans = [(0, 0)]  # unit ranges [a, b)
    if units:
        spans, first = [], 0
        while True:
            last = int(np.searchsorted(ends, starts[first] + budget, side="right"))
            spans.append((first, last))
            if last >= len(units):
                break
            target = starts[first] + min(int(ends[last - 1] - starts[first]), stride)
            first = max(int(np.searchsorted(starts, target, side="right")) - 1, first + 1)
    doc_length = len(context.fine_ids) - 2
    doc_ranges = [(int(starts[a]), int(ends[b - 1])) if b > a else (0, 0) for a, b in spans]
    best = _max_context_windows(doc_ranges, doc_length)
    return [
        _assemble(question, context, q_keep, q_fine, units[a:b], doc_range, best, number, key)
        for number, ((a, b), doc_range) in enumerate(zip(spans, doc_ranges, strict=True))
    ]


def _context_units(context, budget: int) -> list[tuple[int, Span, int, int]]:
    units = []
    for j in range(1, len(context.coarse_ids) - 1):
        start, end = context.align[j]
        if end - start <= budget:
            units.append((context.coarse_ids[j], context.coarse_offsets[j], start - 1, end - 1))
        else:  # wider than any window: its fine pieces, one coarse token each (coarse vocab ⊇ fine vocab)
            units += [(context.fine_ids[p], context.fine_offsets[p], p - 1, p) for p in range(start, end)]
    return units


def _max_context_windows(doc_ranges: list[Span], doc_length: int) -> np.ndarray:
    """For each context fine token, the window where min(left, right context) + 0.01 * window length is
    largest (the first such window on ties), as run_squad.py's _check_is_max_context. [doc_length]"""
    tokens = np.arange(doc_length)
    scores = np.full((len(doc_ranges), doc_length), -np.inf)  # (W, T)
    for number, (start, end) in enumerate(doc_ranges):
        inside = (tokens >= start) & (tokens < end)
        left, right = tokens - start, end - 1 - tokens
        scores[number, inside] = (np.minimum(left, right) + 0.01 * (end - start))[inside]
    return scores.argmax(axis=0) if doc_length else np.zeros(0, dtype=np.int64)


def _assemble(
    question, context, q_keep: int, q_fine: int, units, doc_range: Span, best: np.ndarray, number: int, key: str
) -> SpanWindow:
    doc_start, doc_end = doc_range
    fine_cls, fine_sep = question.fine_ids[0], question.fine_ids[-1]
    coarse_cls, coarse_sep = question.coarse_ids[0], question.coarse_ids[-1]
    none = (0, 0)
    context_fine = range(doc_start + 1, doc_end + 1)  # positions in `context` (after its [CLS])
    fine_ids = [
        fine_cls,
        *question.fine_ids[1 : 1 + q_fine],
        fine_sep,
        *(context.fine_ids[p] for p in context_fine),
        fine_sep,
    ]
    fine_offsets = [
        none,
        *question.fine_offsets[1 : 1 + q_fine],
        none,
        *(context.fine_offsets[p] for p in context_fine),
        none,
    ]
    coarse_ids = [coarse_cls, *question.coarse_ids[1 : 1 + q_keep], coarse_sep, *(u[0] for u in units), coarse_sep]
    coarse_offsets = [none, *question.coarse_offsets[1 : 1 + q_keep], none, *(u[1] for u in units), none]
    widths = [1, *(e - s for s, e in question.align[1 : 1 + q_keep]), 1, *(u[3] - u[2] for u in units), 1]
    ends = np.cumsum(widths)
    q_side = q_fine + 2
    window_length = doc_end - doc_start
    example = ShardExample(
        key=f"{key}-{number}",
        doc_id="",
        fine_ids=np.asarray(fine_ids, dtype=np.int32),
        coarse_ids=np.asarray(coarse_ids, dtype=np.int32),
        align=np.stack([ends - np.asarray(widths), ends], axis=1).astype(np.int32),
        fine_type=np.asarray([0] * q_side + [1] * (window_length + 1), dtype=np.uint8),
        coarse_type=np.asarray([0] * (q_keep + 2) + [1] * (len(units) + 1), dtype=np.uint8),
        fine_offsets=np.asarray(fine_offsets, dtype=np.int32).reshape(-1, 2),
        coarse_offsets=np.asarray(coarse_offsets, dtype=np.int32).reshape(-1, 2),
    )
    char_spans = [None] * q_side + [tuple(context.fine_offsets[p]) for p in context_fine] + [None]
    max_context = [False] * q_side + [bool(best[p - 1] == number) for p in context_fine] + [False]
    return SpanWindow(example, tuple(char_spans), tuple(max_context), doc_start, doc_end, len(best))


# -- labels and decoding ----------------------------------------------------------------------------
def answer_positions(window: SpanWindow, char_start: int, char_end: int) -> tuple[int, int]:
    """The answer's first and last fine positions in the window (inclusive), or (0, 0) ([CLS]) when the
    window does not hold all of it: its characters must lie within the window's context tokens (extended to
    the context's ends for the first and last windows)."""
    context = [p for p, span in enumerate(window.char_spans) if span is not None]
    if not context:
        return 0, 0
    low = 0 if window.doc_start == 0 else window.char_spans[context[0]][0]
    high = None if window.doc_end == window.doc_length else window.char_spans[context[-1]][1]
    if char_start < low or (high is not None and char_end > high):
        return 0, 0
    covering = [p for p in context if window.char_spans[p][1] > char_start and window.char_spans[p][0] < char_end]
    if not covering:
        if window.doc_start == 0 and window.doc_end == window.doc_length:
            raise ValueError(
                f"answer characters [{char_start}, {char_end}) cover no token of the context (whitespace only?)"
            )
        return 0, 0
    return covering[0], covering[-1]


def best_spans(
    start_logits, end_logits, window: SpanWindow, n_best: int = 20, max_answer_len: int = 30
) -> list[tuple[int, int, float]]:
    """Up to n_best (char_start, char_end, start + end logit) answers in the window, best first.

    As run_squad.py: pairs of the n_best highest start and end positions with start ≤ end, at most
    max_answer_len fine tokens, both on context tokens, and the start on one of its max-context positions.
    Logits beyond the window's length (padding) are ignored.
    """
    length = len(window.char_spans)
    start = np.asarray(start_logits, dtype=np.float64)[:length]
    end = np.asarray(end_logits, dtype=np.float64)[:length]
    top_starts = np.argsort(-start, kind="stable")[:n_best]
    top_ends = np.argsort(-end, kind="stable")[:n_best]
    candidates = []
    for s in top_starts.tolist():
        if window.char_spans[s] is None or not window.max_context[s]:
            continue
        for e in top_ends.tolist():
            if window.char_spans[e] is None or e < s or e - s + 1 > max_answer_len:
                continue
            candidates.append((window.char_spans[s][0], window.char_spans[e][1], float(start[s] + end[e])))
    candidates.sort(key=lambda candidate: -candidate[2])
    return candidates[:n_best]


def null_score(start_logits, end_logits) -> float:
    """The no-answer score of a window: start + end logit at [CLS] (position 0), as BERT's SQuAD 2.0 recipe."""
    return float(start_logits[0]) + float(end_logits[0])


def predict_answer(
    context: str,
    windows: list[SpanWindow],
    start_logits_list,
    end_logits_list,
    n_best: int = 20,
    max_answer_len: int = 30,
) -> str:
    """The best-scoring span over all windows of one question, as context text ("" when no window has one)."""
    candidates = [
        span
        for window, start, end in zip(windows, start_logits_list, end_logits_list, strict=True)
        for span in best_spans(start, end, window, n_best, max_answer_len)
    ]
    if not candidates:
        return ""
    char_start, char_end, _ = max(candidates, key=lambda candidate: candidate[2])
    return context[char_start:char_end]


def best_answer(
    context: str,
    windows: list[SpanWindow],
    start_logits_list,
    end_logits_list,
    n_best: int = 20,
    max_answer_len: int = 30,
) -> tuple[str, float]:
    """(best span text, null odds) of one question: null odds = the lowest window null score − the best span
    score (+inf when no window has a span); SQuAD 2.0 answers "" when the odds exceed a threshold tuned on dev."""
    best_text, best_score = "", -np.inf
    lowest_null = np.inf
    for window, start, end in zip(windows, start_logits_list, end_logits_list, strict=True):
        lowest_null = min(lowest_null, null_score(start, end))
        spans = best_spans(start, end, window, n_best, max_answer_len)
        if spans and spans[0][2] > best_score:
            best_text, best_score = context[spans[0][0] : spans[0][1]], spans[0][2]
    return best_text, float(lowest_null - best_score) if np.isfinite(best_score) else float("inf")


# -- evaluation -------------------------------------------------------------------------------------
_CJK = re.compile(r"[\u4e00-\u9fa5]")  # the CMRC 2018 script's test for a Chinese character
# CMRC 2018's punctuation list (its "……" never matches a single character and is left out)
_CMRC_PUNCTUATION = set("-:_*^/\\~`+=，。：？！“”；’《》·、「」（）－～『』")
_NON_CJK_WORD = re.compile(r"\w+|[^\w\s]")


def squad_em_f1(prediction: str, ground_truths: list[str]) -> tuple[float, float]:
    """(exact match, F1), each in [0, 1], maximised over the ground truths.

    If the prediction or any ground truth has a Chinese character, CMRC 2018's rule: lowercase, drop its
    Chinese/ASCII punctuation list; EM compares the remaining strings, F1 is the longest common run of
    tokens, each Chinese character a token and other text split into words (nltk.word_tokenize in CMRC;
    here words and single punctuation marks). Otherwise the official SQuAD v1.1 rule: lowercase, remove
    ASCII punctuation and the articles a/an/the, collapse whitespace; F1 over the bag of words.
    """
    if not ground_truths:
        raise ValueError("squad_em_f1 needs at least one ground truth answer")
    if any(_CJK.search(text) for text in [prediction, *ground_truths]):
        return (
            max(_cmrc_em(prediction, truth) for truth in ground_truths),
            max(_cmrc_f1(prediction, truth) for truth in ground_truths),
        )
    return (
        max(float(_squad_normalize(prediction) == _squad_normalize(truth)) for truth in ground_truths),
        max(_squad_f1(prediction, truth) for truth in ground_truths),
    )


def squad_scores(predictions: dict[str, str], examples: list[SquadExample]) -> dict:
    """The SQuAD evaluation script's totals: {"exact_match", "f1"} in percent over all examples (a question
    without a prediction scores 0 and is counted in "missing"), and "count"."""
    em = f1 = 0.0
    missing = 0
    for example in examples:
        if example.id not in predictions:
            missing += 1
            continue
        score = squad_em_f1(predictions[example.id], [text for text, _ in example.answers])
        em, f1 = em + score[0], f1 + score[1]
    count = len(examples)
    return {
        "exact_match": 100.0 * em / count if count else 0.0,
        "f1": 100.0 * f1 / count if count else 0.0,
        "count": count,
        "missing": missing,
    }


def _squad_normalize(text: str) -> str:
    text = "".join(char for char in text.lower() if char not in string.punctuation)
    return " ".join(re.sub(r"\b(a|an|the)\b", " ", text).split())


def _squad_f1(prediction: str, truth: str) -> float:
    predicted, gold = _squad_normalize(prediction).split(), _squad_normalize(truth).split()
    same = sum((Counter(predicted) & Counter(gold)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(predicted), same / len(gold)
    return 2 * precision * recall / (precision + recall)


def _cmrc_strip(text: str) -> str:
    return "".join(char for char in text.lower().strip() if char not in _CMRC_PUNCTUATION)


def _cmrc_tokens(text: str) -> list[str]:
    tokens, pending = [], ""
    for char in _cmrc_strip(text):
        if _CJK.match(char):
            tokens += _NON_CJK_WORD.findall(pending) + [char]
            pending = ""
        else:
            pending += char
    return tokens + _NON_CJK_WORD.findall(pending)


def _cmrc_em(prediction: str, truth: str) -> float:
    return float(_cmrc_strip(prediction) == _cmrc_strip(truth))


def _cmrc_f1(prediction: str, truth: str) -> float:
    predicted, gold = _cmrc_tokens(prediction), _cmrc_tokens(truth)
    longest = 0  # longest common run of tokens (CMRC's find_lcs), by dynamic programming over rows
    previous = [0] * (len(predicted) + 1)
    for token in gold:
        current = [0] * (len(predicted) + 1)
        for j, other in enumerate(predicted):
            if token == other:
                current[j + 1] = previous[j] + 1
                longest = max(longest, current[j + 1])
        previous = current
    if longest == 0:
        return 0.0
    precision, recall = longest / len(predicted), longest / len(gold)
    return 2 * precision * recall / (precision + recall)


def squad2_raw_scores(predictions: dict[str, str], examples: list[SquadExample]) -> dict[str, tuple[float, float]]:
    """{id: (exact, F1)} as the official v2.0 script: a question without answers scores 1 for "" and 0 otherwise;
    a question without a prediction is left out (and counted as wrong by squad2_scores)."""
    scores = {}
    for example in examples:
        if example.id not in predictions:
            continue
        prediction = predictions[example.id]
        if example.answers:
            scores[example.id] = squad_em_f1(prediction, [text for text, _ in example.answers])
        else:
            empty = float(not _squad_normalize(prediction))
            scores[example.id] = (empty, empty)
    return scores


def squad2_scores(
    predictions: dict[str, str],
    null_odds: dict[str, float],
    examples: list[SquadExample],
    threshold: float | None = None,
) -> dict:
    """SQuAD 2.0 totals in percent, as the official evaluate-v2.0.py: "exact_match", "f1" with the prediction
    replaced by "" where null_odds > threshold (default 0.0), "HasAns_*" / "NoAns_*" the same over answerable /
    unanswerable questions, and "best_exact_match"/"best_f1" with their "*_thresh": the threshold that would
    have scored best on these examples (tune it on dev, pass it for test)."""
    threshold = 0.0 if threshold is None else threshold
    raw = squad2_raw_scores(predictions, examples)
    has_answer = {example.id: bool(example.answers) for example in examples}
    applied = {}
    for qid, (em, f1) in raw.items():
        if null_odds.get(qid, -np.inf) > threshold:
            em = f1 = float(not has_answer[qid])
        applied[qid] = (em, f1)
    count = len(examples)

    def total(ids, which):
        return 100.0 * sum(applied[qid][which] for qid in ids if qid in applied) / len(ids) if ids else 0.0

    answerable = [qid for qid, has in has_answer.items() if has]
    unanswerable = [qid for qid, has in has_answer.items() if not has]
    result = {
        "exact_match": total(list(has_answer), 0),
        "f1": total(list(has_answer), 1),
        "HasAns_exact_match": total(answerable, 0),
        "HasAns_f1": total(answerable, 1),
        "HasAns_count": len(answerable),
        "NoAns_exact_match": total(unanswerable, 0),
        "NoAns_f1": total(unanswerable, 1),
        "NoAns_count": len(unanswerable),
        "count": count,
        "missing": count - len(raw),
        "threshold": threshold,
    }
    for which, name in ((0, "exact_match"), (1, "f1")):
        best, best_threshold = _best_threshold(predictions, raw, null_odds, has_answer, which)
        result[f"best_{name}"], result[f"best_{name}_thresh"] = 100.0 * best / count if count else 0.0, best_threshold
    return result


def _best_threshold(predictions, raw, null_odds, has_answer, which) -> tuple[float, float]:
    """evaluate-v2.0.py's find_best_thresh: start from "all questions answered ''" (the unanswerable ones count
    1), lower the bar one question at a time in order of null odds, keep the best running score."""
    score = best = float(sum(not has for has in has_answer.values()))
    best_threshold = 0.0
    for qid in sorted(raw, key=lambda q: null_odds.get(q, -np.inf)):
        if has_answer[qid]:
            score += raw[qid][which]
        elif predictions[qid]:
            score -= 1
        if score > best:
            best, best_threshold = score, float(null_odds.get(qid, -np.inf))
    return best, best_threshold
