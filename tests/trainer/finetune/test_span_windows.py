"""Span extraction: SQuAD reading, sliding windows, labels, n-best decoding and EM/F1, on English and Chinese."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trainer.finetune.span_windows import (
    SquadError,
    SquadExample,
    answer_positions,
    best_answer,
    best_spans,
    make_windows,
    predict_answer,
    read_squad,
    squad2_scores,
    squad_em_f1,
    squad_scores,
    squad_windows,
)
from vocab.aligned_codec import alignment_faults

SAMPLE = Path(__file__).resolve().parents[3] / "data" / "squad_sample.json"


EXAMPLES = read_squad(str(SAMPLE))
BY_ID = {example.id: example for example in EXAMPLES}


def tokenizer_for(tokenizers, example):
    return tokenizers[example.id.split("-")[0]]


def peaked(window, start: int, end: int, height: float = 10.0):
    starts, ends = np.zeros(len(window.char_spans)), np.zeros(len(window.char_spans))
    starts[start] += height
    ends[end] += height
    return starts, ends


# -- reading ----------------------------------------------------------------------------------------
def test_read_sample():
    assert len(EXAMPLES) == 15
    assert [e.id for e in EXAMPLES[:2]] == ["en-1", "en-2"]
    assert sum(e.id.startswith("zh") for e in EXAMPLES) == 8
    context = BY_ID["en-1"].context
    assert BY_ID["en-1"].answers == (
        ("Margaret Ellery", context.index("Margaret")),
        ("the engineer Margaret Ellery", context.index("the engineer")),
    )
    for example in EXAMPLES:
        for text, start in example.answers:
            assert example.context[start : start + len(text)] == text


def test_read_errors(tmp_path):
    document = json.loads(SAMPLE.read_text(encoding="utf-8"))
    document["data"][2]["paragraphs"][0]["qas"][1]["answers"][0]["answer_start"] += 1
    (tmp_path / "shifted.json").write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(SquadError, match=r"shifted.json: question zh-2: answer '云雾青' is not at answer_start"):
        read_squad(str(tmp_path / "shifted.json"))
    (tmp_path / "broken.json").write_text('{"data": [', encoding="utf-8")
    with pytest.raises(SquadError, match="broken.json is not UTF-8 JSON"):
        read_squad(str(tmp_path / "broken.json"))
    with pytest.raises(SquadError, match="absent.json not found"):
        read_squad(str(tmp_path / "absent.json"))
    (tmp_path / "list.json").write_text("[]", encoding="utf-8")
    with pytest.raises(SquadError, match="'data' list"):
        read_squad(str(tmp_path / "list.json"))


# -- windows ----------------------------------------------------------------------------------------
def check_windows(windows, question, context, max_seq_len: int, stride: int) -> None:
    doc_length = len(context.fine_ids) - 2
    covered = np.zeros(doc_length, dtype=np.int64)
    max_context = np.zeros(doc_length, dtype=np.int64)
    context_starts = {start for start, _ in context.align[1:-1]} | {len(context.fine_ids) - 1}
    for number, window in enumerate(windows):
        example = window.example
        assert alignment_faults(example) == []
        assert len(example.fine_ids) <= max_seq_len and len(example.coarse_ids) <= max_seq_len
        assert example.key.endswith(f"-{number}")
        q_side = len(example.fine_ids) - (window.doc_end - window.doc_start) - 1
        assert example.fine_ids[: q_side - 1].tolist() == list(question.fine_ids[: q_side - 1])
        assert example.fine_ids[q_side:-1].tolist() == list(context.fine_ids[window.doc_start + 1 : window.doc_end + 1])
        assert example.fine_type.tolist() == [0] * q_side + [1] * (len(example.fine_ids) - q_side)
        assert window.char_spans == (None,) * q_side + tuple(
            context.fine_offsets[window.doc_start + 1 : window.doc_end + 1]
        ) + (None,)
        # never cut inside a coarse token of the context, unless it is wider than the room for context
        room = max_seq_len - 1 - q_side
        for cut in (window.doc_start + 1, window.doc_end + 1):
            assert cut in context_starts or any(s < cut < e and e - s > room for s, e in context.align[1:-1])
        covered[window.doc_start : window.doc_end] += 1
        flags = np.asarray(window.max_context[q_side:-1], dtype=np.int64)
        assert not any(window.max_context[:q_side]) and not window.max_context[-1]
        max_context[window.doc_start : window.doc_end] += flags
        assert window.doc_length == doc_length
        if number:  # the next start: `stride` on, rounded down to a coarse boundary, but at least one token on
            previous = windows[number - 1]
            first_coarse = int(np.sum(previous.example.coarse_type == 0))
            first_width = int(previous.example.align[first_coarse, 1] - previous.example.align[first_coarse, 0])
            assert previous.doc_start < window.doc_start <= previous.doc_start + max(stride, first_width)
            units = len(previous.example.coarse_ids) - first_coarse - 1
            if stride < previous.doc_end - previous.doc_start and units > 1:
                assert window.doc_start < previous.doc_end  # neighbours overlap
            assert window.doc_start <= previous.doc_end
    assert covered.min(initial=1) >= 1  # every context token is in some window
    assert max_context.tolist() == [1] * doc_length  # and has exactly one max-context window
    assert windows[-1].doc_end == doc_length and windows[0].doc_start == 0


@pytest.mark.parametrize("qid", ["en-1", "en-5", "zh-2", "zh-6", "zh-7"])
@pytest.mark.parametrize(("max_seq_len", "stride"), [(64, 16), (64, 40), (48, 8), (384, 128)])
def test_windows_cover_the_context(qid, max_seq_len, stride, tokenizers):
    example = BY_ID[qid]
    tokenizer = tokenizer_for(tokenizers, example)
    question, context = tokenizer.encode(example.question), tokenizer.encode(example.context)
    windows = make_windows(question, context, max_seq_len, stride, key=qid)
    check_windows(windows, question, context, max_seq_len, stride)
    if max_seq_len == 64 and qid in ("en-1", "zh-2"):
        assert len(windows) >= 3  # the long contexts need several windows


def test_max_context_is_googles_score(tokenizers):
    """Each token's max-context window maximises min(left, right) + 0.01 * length (run_squad.py), first on ties."""
    example = BY_ID["en-1"]
    windows = squad_windows(tokenizer_for(tokenizers, example), example, max_seq_len=64, stride=16)
    for token in range(windows[0].doc_length):
        best, best_score = None, None
        for number, window in enumerate(windows):
            if window.doc_start <= token < window.doc_end:
                score = min(token - window.doc_start, window.doc_end - 1 - token) + 0.01 * (
                    window.doc_end - window.doc_start
                )
                if best_score is None or score > best_score:
                    best, best_score = number, score
        for number, window in enumerate(windows):
            if window.doc_start <= token < window.doc_end:
                q_side = len(window.char_spans) - (window.doc_end - window.doc_start) - 1
                assert window.max_context[q_side + token - window.doc_start] == (number == best)
    first, second = windows[0], windows[1]
    q_side = len(first.char_spans) - (first.doc_end - first.doc_start) - 1
    assert all(first.max_context[q_side : q_side + second.doc_start])  # only window 0 holds the first tokens
    assert not first.max_context[q_side + first.doc_end - first.doc_start - 2]  # near its end: not centred


def test_a_coarse_token_wider_than_the_window_falls_back_to_fine_pieces(tokenizers):
    tokenizer = tokenizers["en"]
    question, context = tokenizer.encode("where?"), tokenizer.encode("we saw new york city today")
    assert "new york city" in context.coarse_tokens
    windows = make_windows(question, context, max_seq_len=6, stride=1)  # 1 context token per window
    check_windows(windows, question, context, 6, 1)
    assert len(windows) == len(context.fine_ids) - 2
    for window in windows:
        assert window.example.coarse_ids[-2] == window.example.fine_ids[-2]  # one fine piece as its coarse token


def test_question_is_truncated_on_coarse_boundaries(tokenizers):
    tokenizer = tokenizers["en"]
    question = tokenizer.encode("did they sell ice cream in new york city during the festival of that year")
    context = tokenizer.encode(BY_ID["en-6"].context)
    windows = make_windows(question, context, max_seq_len=64, stride=32, max_question_len=7)
    q_fine = int(np.sum(windows[0].example.fine_type == 0)) - 2
    assert 5 <= q_fine <= 7  # "new york city" (3 pieces) is kept or dropped whole
    check_windows(windows, question, context, 64, 32)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    qid=st.sampled_from(["en-2", "zh-4", "en-7"]),
    max_seq_len=st.integers(8, 96),
    stride=st.integers(1, 48),
    max_question_len=st.integers(1, 64),
)
def test_window_invariants(tokenizers, qid, max_seq_len, stride, max_question_len):
    example = BY_ID[qid]
    tokenizer = tokenizer_for(tokenizers, example)
    question, context = tokenizer.encode(example.question), tokenizer.encode(example.context)
    windows = make_windows(question, context, max_seq_len, stride, max_question_len)
    check_windows(windows, question, context, max_seq_len, stride)


# -- labels and decoding ----------------------------------------------------------------------------
@pytest.mark.parametrize("example", EXAMPLES, ids=[e.id for e in EXAMPLES])
def test_labels_decode_back_to_the_answer(example, tokenizers):
    windows = squad_windows(tokenizer_for(tokenizers, example), example, max_seq_len=64, stride=16)
    for text, char_start in example.answers:
        logits, holding = [], 0
        for window in windows:
            start, end = answer_positions(window, char_start, char_start + len(text))
            assert start <= end
            if (start, end) != (0, 0):
                holding += 1
                assert window.char_spans[start][0] == char_start
                assert window.char_spans[end][1] == char_start + len(text)
                assert window.example.fine_type[start] == 1
            logits.append(peaked(window, start, end))
        assert holding >= 1
        assert predict_answer(example.context, windows, [s for s, _ in logits], [e for _, e in logits]) == text
        assert squad_em_f1(text, [answer for answer, _ in example.answers]) == (1.0, 1.0)


def test_answer_outside_a_window_is_labelled_cls(tokenizers):
    example = BY_ID["en-5"]  # "142" near the end of the long context
    windows = squad_windows(tokenizer_for(tokenizers, example), example, max_seq_len=64, stride=16)
    text, char_start = example.answers[0]
    assert answer_positions(windows[0], char_start, char_start + len(text)) == (0, 0)
    assert answer_positions(windows[-1], char_start, char_start + len(text)) != (0, 0)
    # an answer straddling a window's end is not inside it
    last_char = windows[0].char_spans[len(windows[0].char_spans) - 2][1]
    assert answer_positions(windows[0], last_char - 1, last_char + 5) == (0, 0)


def test_partial_token_answers_extend_to_whole_tokens(tokenizers):
    example = BY_ID["en-2"]
    windows = squad_windows(tokenizer_for(tokenizers, example), example, max_seq_len=384, stride=128)
    char_start = example.context.index("metres")
    start, end = answer_positions(windows[0], char_start + 1, char_start + 3)  # "et"
    assert windows[0].char_spans[start] == windows[0].char_spans[end] == (char_start, char_start + 6)


def test_best_spans_nbest_by_hand(tokenizers):
    example = BY_ID["en-6"]
    window = squad_windows(tokenizer_for(tokenizers, example), example, max_seq_len=64, stride=32)[0]
    q_side = next(p for p, span in enumerate(window.char_spans) if span is not None)
    a, b, c = q_side + 2, q_side + 4, q_side + 6
    starts, ends = np.full(len(window.char_spans), -10.0), np.full(len(window.char_spans), -10.0)
    starts[a], starts[b] = 5.0, 3.0
    ends[a], ends[c] = 4.0, 2.0
    spans = lambda s, e: (window.char_spans[s][0], window.char_spans[e][1])  # noqa: E731
    assert best_spans(starts, ends, window, n_best=2) == [(*spans(a, a), 9.0), (*spans(a, c), 7.0)]
    assert best_spans(starts, ends, window, n_best=3)[:3] == [
        (*spans(a, a), 9.0),
        (*spans(a, c), 7.0),
        (*spans(b, c), 5.0),
    ]
    # max_answer_len counts fine tokens: a..c is 5 tokens
    assert (*spans(a, c), 7.0) not in best_spans(starts, ends, window, n_best=2, max_answer_len=4)
    # an end before the start never pairs: the best start with only earlier ends gives nothing
    starts[:], ends[:] = -10.0, -10.0
    starts[c], ends[a] = 5.0, 5.0
    assert best_spans(starts, ends, window, n_best=1) == []
    # question and special positions are never answers
    starts[:], ends[:] = -10.0, -10.0
    starts[1], ends[1] = 50.0, 50.0
    assert predict_answer(example.context, [window], [starts], [ends], n_best=1) == ""
    # padding beyond the window is ignored
    padded = np.concatenate([starts, [99.0] * 5])
    assert best_spans(padded, np.concatenate([ends, [99.0] * 5]), window, n_best=1) == []


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_best=st.integers(1, 25), max_answer_len=st.integers(1, 12))
def test_best_spans_respect_the_limits(seed, n_best, max_answer_len, tokenizers):
    example = BY_ID["zh-1"]
    windows = squad_windows(tokenizer_for(tokenizers, example), example, max_seq_len=48, stride=12)
    rng = np.random.default_rng(seed)
    for window in windows:
        position = {span: p for p, span in enumerate(window.char_spans) if span is not None}
        by_start = {span[0]: p for span, p in position.items()}
        by_end = {span[1]: p for span, p in position.items()}
        length = len(window.char_spans)
        result = best_spans(rng.normal(size=length), rng.normal(size=length), window, n_best, max_answer_len)
        assert len(result) <= n_best
        assert [score for *_, score in result] == sorted((score for *_, score in result), reverse=True)
        for char_start, char_end, _ in result:
            start, end = by_start[char_start], by_end[char_end]
            assert start <= end and end - start + 1 <= max_answer_len
            assert window.max_context[start]


def test_start_outside_max_context_is_skipped(tokenizers):
    example = BY_ID["zh-6"]
    windows = squad_windows(tokenizer_for(tokenizers, example), example, max_seq_len=64, stride=16)
    window = windows[1]
    q_side = next(p for p, span in enumerate(window.char_spans) if span is not None)
    assert not window.max_context[q_side]  # its first context token is better centred in window 0
    starts, ends = peaked(window, q_side, q_side + 1)
    assert all(start != window.char_spans[q_side][0] for start, _, _ in best_spans(starts, ends, window))


def test_predict_answer_takes_the_best_window(tokenizers):
    example = BY_ID["zh-3"]
    windows = squad_windows(tokenizer_for(tokenizers, example), example, max_seq_len=64, stride=16)
    text, char_start = example.answers[0]
    holding = [w for w in windows if answer_positions(w, char_start, char_start + len(text)) != (0, 0)]
    assert len(holding) >= 2
    logits = []
    for window in windows:  # each window peaks on its first context token; the answer's windows peak higher
        first = next(p for p, span in enumerate(window.char_spans) if span is not None)
        positions = answer_positions(window, char_start, char_start + len(text))
        logits.append(peaked(window, *positions, 20.0) if positions != (0, 0) else peaked(window, first, first))
    assert predict_answer(example.context, windows, *zip(*logits, strict=True)) == text


# -- evaluation -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("prediction", "truths", "em", "f1"),
    [
        ("the Eiffel Tower!", ["Eiffel tower"], 1.0, 1.0),  # articles, punctuation, case
        ("a red  car", ["the blue car"], 0.0, 0.5),  # {red, car} vs {blue, car}: P = R = 1/2
        ("in 1871 by Ellery", ["1871", "Margaret Ellery"], 0.0, 0.4),  # best of P 1/4 R 1 (0.4) and P 1/4 R 1/2 (1/3)
        ("an", ["the"], 1.0, 0.0),  # both normalise to "": equal strings, but no common token
        ("王秀兰。", ["王秀兰"], 1.0, 1.0),  # CMRC: Chinese punctuation dropped
        ("馆长王秀兰", ["王秀兰"], 0.0, 0.75),  # characters: P 3/5, R 1
        ("秀兰王", ["王秀兰"], 0.0, 2 / 3),  # longest common run 秀兰, not the bag of characters
        ("300多件", ["三百多件", "300多件工具"], 0.0, 0.75),  # 300|多|件 vs 300|多|件|工|具: P 1, R 3/5
        ("Margaret", ["王秀兰"], 0.0, 0.0),  # a Chinese ground truth selects the CMRC rule
        ("the 王", ["the"], 0.0, 2 / 3),  # so does a Chinese prediction: the|王 vs the (SQuAD would drop "the": 0)
    ],
)
def test_squad_em_f1_by_hand(prediction, truths, em, f1):
    got_em, got_f1 = squad_em_f1(prediction, truths)
    assert got_em == em and got_f1 == pytest.approx(f1)


def test_squad_scores_totals():
    examples = [BY_ID["en-1"], BY_ID["en-2"], BY_ID["zh-4"], BY_ID["zh-7"]]
    predictions = {"en-1": "Ellery", "en-2": "38 metres tall", "zh-4": "王秀兰"}
    scores = squad_scores(predictions, examples)
    # en-1: F1 max(2/3 vs "margaret ellery", 0.5 vs "engineer margaret ellery"); en-2, zh-4 exact; zh-7 missing
    assert scores == {
        "exact_match": pytest.approx(50.0),
        "f1": pytest.approx(100 * (2 / 3 + 1 + 1) / 4),
        "count": 4,
        "missing": 1,
    }


def test_squad2_hasans_noans_and_the_best_threshold_by_hand():
    examples = [
        SquadExample("a1", "q", "Ellery", (("Ellery", 0),)),
        SquadExample("a2", "q", "blue tower", (("blue tower", 0),)),
        SquadExample("n1", "q", "lamp", ()),
        SquadExample("n2", "q", "lamp", ()),
    ]
    predictions = {"a1": "Ellery", "a2": "red tower", "n1": "lamp", "n2": ""}
    odds = {"a1": -3.0, "a2": 1.0, "n1": 2.0, "n2": -1.0}
    scores = squad2_scores(predictions, odds, examples)
    # threshold 0: a1 answered (1), a2 and n1 nulled (0 and 1), n2 answered "" (1)
    assert scores["exact_match"] == pytest.approx(75.0) and scores["f1"] == pytest.approx(75.0)
    assert scores["HasAns_exact_match"] == pytest.approx(50.0) and scores["NoAns_exact_match"] == pytest.approx(100.0)
    assert (scores["HasAns_count"], scores["NoAns_count"], scores["missing"]) == (2, 2, 0)
    # best threshold: all null (2), answer a1 (+1 → 3 at -3), n2 (+0), a2 (+0 EM / +0.5 F1 at 1), n1 (−1)
    assert (scores["best_exact_match"], scores["best_exact_match_thresh"]) == (pytest.approx(75.0), -3.0)
    assert (scores["best_f1"], scores["best_f1_thresh"]) == (pytest.approx(87.5), 1.0)
    tuned = squad2_scores(predictions, odds, examples, threshold=1.0)
    assert tuned["f1"] == pytest.approx(87.5) and tuned["HasAns_f1"] == pytest.approx(75.0)


def test_best_answer_null_odds(tokenizers):
    example = BY_ID["en-1"]
    window = squad_windows(tokenizer_for(tokenizers, example), example, 384, 128)[0]
    position = window.max_context.index(True)
    starts, ends = peaked(window, position, position, height=5.0)
    starts[0] += 2.0
    ends[0] += 1.0
    text, odds = best_answer(example.context, [window], [starts], [ends])
    assert text == example.context[slice(*window.char_spans[position])]
    assert odds == pytest.approx(3.0 - 10.0)


def test_empty_context_gives_one_window_without_answers(tokenizers):
    tokenizer = tokenizers["zh"]
    windows = make_windows(tokenizer.encode("谁？"), tokenizer.encode(""), max_seq_len=16, stride=4)
    assert len(windows) == 1 and windows[0].doc_length == 0
    assert alignment_faults(windows[0].example) == []
    assert windows[0].example.fine_type.tolist() == [0, 0, 0, 0, 1]
    starts, ends = peaked(windows[0], 1, 1)
    assert best_spans(starts, ends, windows[0]) == []
    assert predict_answer("", windows, [starts], [ends]) == ""


def test_span_decoding_time_is_linear_in_windows(tokenizers):
    """decode_answers groups windows by question in one pass: 8x the questions (2 windows each) takes well under
    the 64x an O(questions x windows) matching would (generous bound: 24x, for a loaded machine)."""
    import time

    from trainer.finetune.span import decode_answers

    example = BY_ID["en-1"]
    window = squad_windows(tokenizer_for(tokenizers, example), example, 384, 128)[0]
    logits = np.random.default_rng(0).normal(size=(len(window.char_spans), 2))

    def decode_time(count):
        examples = [SquadExample(f"q{i}", "q", example.context, example.answers) for i in range(count)]
        windows = [(i // 2, window) for i in range(2 * count)]
        start = time.perf_counter()
        predictions, odds = decode_answers(examples, windows, [logits] * len(windows))
        assert len(predictions) == len(odds) == count
        return time.perf_counter() - start

    small, large = min(decode_time(250) for _ in range(3)), min(decode_time(2000) for _ in range(3))
    assert large < 24 * small, (small, large)
