"""Training curves of a run as one PNG (`ambert plot RUN`): losses per granularity, masked accuracy, lr, tokens/s,
and the held-out ones (eval_*, `ambert train --eval-data`) beside the training ones; save_figure() writes every PNG
of the trainer (curves, confusion matrices, ablation bars) atomically.

    plot_training_curves("out/run/metrics.jsonl", "out/run/curves.png")
"""

from __future__ import annotations

import json
import os


def read_metrics(path: str) -> list[dict]:
    """The records of metrics.jsonl; a torn last line (a run killed, or still writing it) is left out."""
    try:
        with open(path, encoding="utf-8") as handle:
            lines = [line for line in handle if line.strip()]
    except FileNotFoundError as error:
        raise ValueError(f"{path} not found: is this a run directory of `ambert train`?") from error
    records = []
    for number, line in enumerate(lines, 1):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as error:
            if number < len(lines):
                raise ValueError(f"{path} line {number} is not JSON ({error})") from error
    if not records:
        raise ValueError(f"{path} holds no logged steps yet")
    return records


def plot_training_curves(metrics_path: str, png_path: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = read_metrics(metrics_path)
    panels = [
        ("loss", ["loss", "fine_loss", "coarse_loss", "nsp_loss", "sop_loss"], ["eval_fine_loss", "eval_coarse_loss"]),
        ("masked accuracy", ["fine_acc", "coarse_acc"], ["eval_fine_acc", "eval_coarse_acc"]),
        ("learning rate", ["lr"], []),
        ("tokens/s", ["tokens_per_s"], []),
    ]
    figure, axes = plt.subplots(2, 2, figsize=(11, 7))
    for axis, (title, names, held_out) in zip(axes.flat, panels, strict=True):
        for name in names + held_out:
            points = [(r["step"], r[name]) for r in records if r.get(name) is not None]
            if any(value for _, value in points):
                style = {"linestyle": "--", "marker": "o", "markersize": 3} if name in held_out else {}
                axis.plot(*zip(*points, strict=True), label=name.replace("eval_", "held-out "), **style)
        axis.set_title(title)
        axis.set_xlabel("step")
        if len(names) + len(held_out) > 1:
            axis.legend()
    return save_figure(figure, png_path)


def save_figure(figure, path: str) -> str:
    """Write a matplotlib figure as PNG under a temporary name, move it into place, and close it."""
    import matplotlib.pyplot as plt

    figure.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    staging = path + ".tmp.png"
    figure.savefig(staging, dpi=100)
    plt.close(figure)
    os.replace(staging, path)
    return path
