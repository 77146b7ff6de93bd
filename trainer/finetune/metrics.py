"""Fine-tuning scores as `ambert evaluate` reports them: accuracy, macro-F1, F1 of the positive class, Matthews
correlation and a confusion matrix (and its PNG) for classification; Pearson and Spearman for regression.

    report = classification_report(gold_labels, predicted_labels, labels)   # JSON-ready dict
    report = classification_report(gold, predicted, ["0", "1"], positive="1")  # + "f1": F1 of class "1" (MRPC, QQP)
    report = regression_report(gold_values, predicted_values)                # {"pearson", "spearman", "mse"}
    plot_confusion_matrix(np.asarray(report["confusion"]), labels, "out/confusion.png", "dev")

Precision, recall and F1 of a class with no predictions / no gold examples are 0 (scikit-learn's zero_division=0).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# fonts with Chinese glyphs, used as fallbacks when installed (else Chinese labels draw as boxes)
CJK_FONTS = ("Noto Sans CJK SC", "Source Han Sans SC", "WenQuanYi Zen Hei", "SimHei", "Microsoft YaHei")


def accuracy(y_true: Sequence, y_pred: Sequence) -> float:
    """The fraction of positions where the prediction equals the gold label (0.0 for no examples)."""
    _check_lengths(y_true, y_pred)
    return sum(g == p for g, p in zip(y_true, y_pred, strict=True)) / len(y_true) if len(y_true) else 0.0


def confusion_matrix(y_true: Sequence, y_pred: Sequence, labels: Sequence) -> np.ndarray:
    """[len(labels), len(labels)] int64 counts: row = gold label, column = predicted label."""
    _check_lengths(y_true, y_pred)
    index = {label: i for i, label in enumerate(labels)}
    unknown = sorted({str(v) for v in [*y_true, *y_pred] if v not in index})
    if unknown:
        raise ValueError(f"labels {unknown[:5]} are not in the label list {list(labels)}")
    matrix = np.zeros((len(labels), len(labels)), dtype=np.int64)
    for gold, predicted in zip(y_true, y_pred, strict=True):
        matrix[index[gold], index[predicted]] += 1
    return matrix


def per_class_scores(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(precision, recall, f1, support) per class of a confusion matrix; 0 where a ratio has a zero denominator."""
    true_positive = np.diag(matrix).astype(np.float64)
    predicted, support = matrix.sum(axis=0), matrix.sum(axis=1)
    precision = np.divide(true_positive, predicted, out=np.zeros_like(true_positive), where=predicted > 0)
    recall = np.divide(true_positive, support, out=np.zeros_like(true_positive), where=support > 0)
    total = precision + recall
    f1 = np.divide(2 * precision * recall, total, out=np.zeros_like(true_positive), where=total > 0)
    return precision, recall, f1, support


def macro_f1(y_true: Sequence, y_pred: Sequence, labels: Sequence) -> float:
    """The unweighted mean of per-class F1 over `labels` (a label absent from both lists counts as F1 0)."""
    if not len(labels):
        raise ValueError("macro_f1 needs at least one label")
    return float(per_class_scores(confusion_matrix(y_true, y_pred, labels))[2].mean())


def matthews_corrcoef(matrix: np.ndarray) -> float:
    """Matthews correlation of a confusion matrix (Gorodkin's multi-class form; the binary MCC for 2 classes):
    (c·s − Σ_k p_k·t_k) / sqrt((s² − Σ p_k²)(s² − Σ t_k²)), c correct, s all, p predicted, t gold counts; 0 when
    a denominator factor is 0 (a constant prediction or gold), as scikit-learn."""
    matrix = np.asarray(matrix, dtype=np.float64)
    correct, total = np.trace(matrix), matrix.sum()
    predicted, gold = matrix.sum(axis=0), matrix.sum(axis=1)
    denominator = np.sqrt((total**2 - predicted @ predicted) * (total**2 - gold @ gold))
    return float((correct * total - predicted @ gold) / denominator) if denominator > 0 else 0.0


def classification_report(y_true: Sequence, y_pred: Sequence, labels: Sequence, positive=None) -> dict:
    """{"accuracy", "macro_f1", "matthews", "per_class": {label: {precision, recall, f1, support}}, "labels",
    "confusion": [[gold × predicted counts]]}, plus "f1" (F1 of the `positive` class, as GLUE scores MRPC and QQP)
    when `positive` is given: plain floats, ints and lists (JSON-ready)."""
    matrix = confusion_matrix(y_true, y_pred, labels)
    precision, recall, f1, support = per_class_scores(matrix)
    extra = {}
    if positive is not None:
        if positive not in labels:
            raise ValueError(f"positive class {positive!r} is not in the label list {list(labels)}")
        extra["f1"] = float(f1[list(labels).index(positive)])
    return {
        "accuracy": accuracy(y_true, y_pred),
        "macro_f1": float(f1.mean()) if len(labels) else 0.0,
        "matthews": matthews_corrcoef(matrix),
        **extra,
        "per_class": {
            str(label): {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, label in enumerate(labels)
        },
        "labels": [str(label) for label in labels],
        "confusion": matrix.tolist(),
    }


def pearson(x: Sequence[float], y: Sequence[float]) -> float:
    """Pearson's correlation coefficient; 0 when either side is constant (no linear relation to measure)."""
    _check_lengths(x, y)
    a, b = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    a, b = a - a.mean(), b - b.mean()
    scale = np.sqrt((a @ a) * (b @ b))
    return float(a @ b / scale) if scale > 0 else 0.0


def average_ranks(values: Sequence[float]) -> np.ndarray:
    """1-based ranks, ties sharing their mean rank (scipy.stats.rankdata's "average")."""
    values = np.asarray(values, dtype=np.float64)
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])  # first position of each run of equal values
    ends = np.r_[starts[1:], len(values)]
    mean_rank = (starts + ends + 1) / 2  # mean of the 1-based positions start+1 … end
    ranks = np.empty(len(values))
    ranks[order] = np.repeat(mean_rank, ends - starts)
    return ranks


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rank correlation: Pearson's over average ranks (ties share a rank)."""
    _check_lengths(x, y)
    return pearson(average_ranks(x), average_ranks(y))


def regression_report(y_true: Sequence[float], y_pred: Sequence[float]) -> dict:
    """{"pearson", "spearman", "mse", "count"} (STS-B is scored by Pearson and Spearman), JSON-ready."""
    _check_lengths(y_true, y_pred)
    errors = np.asarray(y_pred, dtype=np.float64) - np.asarray(y_true, dtype=np.float64)
    return {
        "pearson": pearson(y_true, y_pred),
        "spearman": spearman(y_true, y_pred),
        "mse": float(errors @ errors / len(errors)) if len(errors) else 0.0,
        "count": len(errors),
    }


def plot_confusion_matrix(matrix: np.ndarray, labels: Sequence, path: str, title: str = "") -> str:
    """A heat map of gold (rows) × predicted (columns) counts with the counts written in the cells, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import font_manager

    matrix = np.asarray(matrix)
    if matrix.shape != (len(labels), len(labels)):
        raise ValueError(f"confusion matrix of shape {matrix.shape} does not match {len(labels)} labels")
    installed = {font.name for font in font_manager.fontManager.ttflist}
    with plt.rc_context({"font.family": ["DejaVu Sans", *(name for name in CJK_FONTS if name in installed)]}):
        return _draw_confusion(plt, matrix, labels, path, title)


def _draw_confusion(plt, matrix: np.ndarray, labels: Sequence, path: str, title: str) -> str:
    side = min(2.5 + 0.5 * len(labels), 20)
    figure, axis = plt.subplots(figsize=(side + 1, side))
    image = axis.imshow(matrix, cmap="Blues")
    figure.colorbar(image, ax=axis)
    ticks = range(len(labels))
    axis.set_xticks(ticks, [str(label) for label in labels], rotation=45, ha="right")
    axis.set_yticks(ticks, [str(label) for label in labels])
    axis.set_xlabel("predicted")
    axis.set_ylabel("gold")
    axis.set_title(title)
    threshold = matrix.max() / 2 if matrix.size else 0
    if len(labels) <= 30:
        for gold in ticks:
            for predicted in ticks:
                value = matrix[gold, predicted]
                axis.text(
                    predicted,
                    gold,
                    str(value),
                    ha="center",
                    va="center",
                    color="white" if value > threshold else "black",
                )
    from trainer.plots import save_figure

    return save_figure(figure, path)


def _check_lengths(y_true: Sequence, y_pred: Sequence) -> None:
    if len(y_true) != len(y_pred):
        raise ValueError(f"{len(y_true)} gold labels but {len(y_pred)} predictions")
