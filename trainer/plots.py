"""Training curves of a run as one PNG (`ambert plot RUN`): losses per granularity, masked accuracy, lr, tokens/s;
save_figure() writes every PNG of the trainer (curves, confusion matrices, ablation bars) atomically.

    plot_training_curves("out/run/metrics.jsonl", "out/run/curves.png")
"""

from __future__ import annotations

import json
import os


def read_metrics(path: str) -> list[dict]:
    try:
        with open(path, encoding="utf-8") as handle:
            records = [json.loads(line) for line in handle if line.strip()]
    except FileNotFoundError as error:
        raise ValueError(f"{path} not found: is this a run directory of `ambert train`?") from error
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} has a line that is not JSON ({error})") from error
    if not records:
        raise ValueError(f"{path} holds no logged steps yet")
    return records


def plot_training_curves(metrics_path: str, png_path: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = read_metrics(metrics_path)
    steps = [r["step"] for r in records]
    panels = [
        ("loss", ["loss", "fine_loss", "coarse_loss", "nsp_loss"]),
        ("masked accuracy", ["fine_acc", "coarse_acc"]),
        ("learning rate", ["lr"]),
        ("tokens/s", ["tokens_per_s"]),
    ]
    figure, axes = plt.subplots(2, 2, figsize=(11, 7))
    for axis, (title, names) in zip(axes.flat, panels, strict=True):
        for name in names:
            values = [r.get(name) for r in records]
            if any(v for v in values):
                axis.plot(steps, values, label=name)
        axis.set_title(title)
        axis.set_xlabel("step")
        if len(names) > 1:
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
