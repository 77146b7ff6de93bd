"""Classification metrics against hand-computed values, and the confusion-matrix PNG."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from trainer.finetune.metrics import (
    accuracy,
    average_ranks,
    classification_report,
    confusion_matrix,
    macro_f1,
    matthews_corrcoef,
    pearson,
    plot_confusion_matrix,
    regression_report,
    spearman,
)

GOLD = ["a", "a", "a", "b", "b", "c"]
PRED = ["a", "a", "b", "b", "c", "c"]
LABELS = ["a", "b", "c"]
# confusion (gold rows, predicted columns): a→a 2, a→b 1; b→b 1, b→c 1; c→c 1
# precision a 2/2, b 1/2, c 1/2; recall a 2/3, b 1/2, c 1/1; f1 a 0.8, b 0.5, c 2/3


def test_accuracy():
    assert accuracy(GOLD, PRED) == pytest.approx(4 / 6)
    assert accuracy([], []) == 0.0
    with pytest.raises(ValueError, match="6 gold labels but 5 predictions"):
        accuracy(GOLD, PRED[:5])


def test_confusion_matrix_rows_are_gold():
    matrix = confusion_matrix(GOLD, PRED, LABELS)
    assert matrix.tolist() == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    assert confusion_matrix(GOLD, PRED, ["c", "b", "a"]).tolist() == [[1, 0, 0], [1, 1, 0], [0, 1, 2]]
    with pytest.raises(ValueError, match=r"labels \['c'\] are not in the label list"):
        confusion_matrix(GOLD, PRED, ["a", "b"])


def test_macro_f1_by_hand():
    assert macro_f1(GOLD, PRED, LABELS) == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    # zero_division=0: a label with neither gold nor predictions counts as F1 0 in the mean
    assert macro_f1(GOLD, PRED, [*LABELS, "d"]) == pytest.approx((0.8 + 0.5 + 2 / 3) / 4)
    # a class never predicted: precision 0/0 → 0, so its F1 is 0; "b" is perfect
    assert macro_f1(["a", "a", "b"], ["b", "b", "b"], ["a", "b"]) == pytest.approx((0 + 0.5) / 2)
    assert macro_f1(["x", "y"], ["x", "y"], ["x", "y"]) == 1.0


def test_classification_report_is_json_ready():
    report = classification_report(GOLD, PRED, LABELS)
    assert json.loads(json.dumps(report)) == report
    assert report["accuracy"] == pytest.approx(4 / 6)
    assert report["macro_f1"] == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    assert report["confusion"] == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    assert report["labels"] == LABELS
    expected = {"a": (1.0, 2 / 3, 0.8, 3), "b": (0.5, 0.5, 0.5, 2), "c": (0.5, 1.0, 2 / 3, 1)}
    for label, (precision, recall, f1, support) in expected.items():
        scores = report["per_class"][label]
        assert scores["precision"] == pytest.approx(precision)
        assert scores["recall"] == pytest.approx(recall)
        assert scores["f1"] == pytest.approx(f1)
        assert scores["support"] == support


def test_positive_class_f1_and_matthews_by_hand():
    # TP 3, FN 1, FP 2, TN 4 with "1" the positive class
    gold = ["1"] * 4 + ["0"] * 6
    predicted = ["1", "1", "1", "0", "1", "1", "0", "0", "0", "0"]
    report = classification_report(gold, predicted, ["0", "1"], positive="1")
    assert report["f1"] == pytest.approx(2 * 0.6 * 0.75 / (0.6 + 0.75))  # P 3/5, R 3/4
    assert report["matthews"] == pytest.approx((3 * 4 - 2 * 1) / np.sqrt(5 * 4 * 6 * 5))
    assert report["accuracy"] == pytest.approx(0.7)
    with pytest.raises(ValueError, match="positive class 'yes' is not in the label list"):
        classification_report(gold, predicted, ["0", "1"], positive="yes")
    # the multi-class form: (c·s − Σ p_k t_k) / sqrt((s² − Σ p_k²)(s² − Σ t_k²)) on GOLD/PRED (c 4, s 6)
    # p = (2, 2, 2), t = (3, 2, 1): (24 − 12) / sqrt((36 − 12)(36 − 14))
    assert classification_report(GOLD, PRED, LABELS)["matthews"] == pytest.approx(12 / np.sqrt(24 * 22))
    assert matthews_corrcoef(np.array([[5, 0], [3, 0]])) == 0.0  # one class always predicted


def test_pearson_spearman_by_hand():
    # deviations (-1.5, -.5, .5, 1.5) and (-3, -1, 0, 4): Σ products 11, Σ squares 5 and 26
    assert pearson([1, 2, 3, 4], [2, 4, 5, 9]) == pytest.approx(11 / np.sqrt(5 * 26))
    assert spearman([1, 2, 3, 4], [2, 4, 5, 9]) == pytest.approx(1.0)
    # ties share their mean rank: (1, 2.5, 2.5, 4) vs (1, 3, 2, 4): Σ products 4.5, Σ squares 4.5 and 5
    assert average_ranks([1, 2, 2, 3]).tolist() == [1, 2.5, 2.5, 4]
    assert spearman([1, 2, 2, 3], [1, 3, 2, 4]) == pytest.approx(4.5 / np.sqrt(4.5 * 5))
    assert spearman([3, 1, 2], [1, 3, 2]) == pytest.approx(-1.0)
    assert pearson([1, 1, 1], [1, 2, 3]) == 0.0
    report = regression_report([0.0, 1.0, 2.0], [0.5, 1.0, 1.0])
    assert report["mse"] == pytest.approx((0.25 + 0 + 1) / 3)
    assert json.loads(json.dumps(report)) == report


@given(st.lists(st.tuples(st.sampled_from("pqr"), st.sampled_from("pqr")), max_size=40))
def test_scores_agree_with_the_matrix(pairs):
    gold, predicted = [g for g, _ in pairs], [p for _, p in pairs]
    matrix = confusion_matrix(gold, predicted, list("pqr"))
    assert matrix.sum() == len(pairs)
    assert matrix.sum(axis=1).tolist() == [gold.count(label) for label in "pqr"]
    assert accuracy(gold, predicted) == pytest.approx(np.trace(matrix) / len(pairs) if pairs else 0.0)
    report = classification_report(gold, predicted, list("pqr"))
    assert 0.0 <= report["macro_f1"] <= 1.0
    assert (report["macro_f1"] == 1.0) == (len(set(gold) | set(predicted)) == 3 and gold == predicted)


def test_confusion_png(tmp_path):
    path = tmp_path / "plots" / "confusion.png"
    labels = ["neg", "pos", "neutral"]
    returned = plot_confusion_matrix(np.array([[5, 1, 0], [2, 7, 1], [0, 0, 3]]), labels, str(path), "dev (fine)")
    assert returned == str(path)
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 1000
    assert sorted(p.name for p in path.parent.iterdir()) == ["confusion.png"]  # no staging file left
    with pytest.raises(ValueError, match=r"shape \(2, 2\) does not match 3 labels"):
        plot_confusion_matrix(np.eye(2), labels, str(tmp_path / "bad.png"))
