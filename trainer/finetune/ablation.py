"""The paper's ablation at small scale: pre-train every variant on the same shards with the same budget, fine-tune
each on labeled data with several seeds, and report test accuracy / macro-F1 as mean ± std (results.md + PNG).

    ambert ablation --lang zh --shards out/shards-zh --vocab out/vocab-zh --labeled data/labeled/zh_sentiment \\
        --out out/ablation --steps 300 --seeds 3
AMBERT is fine-tuned once per seed and scored twice: from the concatenated classifier (AMBERT) and from the fine
classifier alone (AMBERT-Single, the fine encoder only at inference).
"""

from __future__ import annotations

import dataclasses
import json
import os
import statistics
from collections.abc import Callable
from dataclasses import dataclass

from trainer.config import VARIANTS


@dataclass(frozen=True)
class Language:
    name: str  # en | zh
    shards: str
    vocab: str
    labeled: str  # prefix: PREFIX_train.tsv.gz, PREFIX_dev.tsv.gz, PREFIX_test.tsv.gz


def labeled_files(prefix: str) -> dict[str, str]:
    files = {split: f"{prefix}_{split}.tsv.gz" for split in ("train", "dev", "test")}
    missing = [path for path in files.values() if not os.path.exists(path)]
    if missing:
        raise ValueError(f"labeled files missing: {', '.join(missing)} (expected PREFIX_train/dev/test.tsv.gz)")
    return files


def run_ablation(
    languages: list[Language],
    out: str,
    *,
    steps: int,
    seeds: int,
    pretrain_overrides: list[str],
    tuning,
    variants: tuple[str, ...] = VARIANTS,
    report: Callable[[str], None] = print,
) -> dict:
    """Pre-train and fine-tune every (language, variant); returns and writes OUT/results.json, results.md, PNG."""
    from trainer.finetune.loop import evaluate_classifier, finetune_classifier

    results: dict = {"steps": steps, "seeds": seeds, "finetune": dataclasses.asdict(tuning), "scores": {}}
    for language in languages:
        files = labeled_files(language.labeled)
        for variant in variants:
            run = os.path.join(out, "pretrain", f"{language.name}-{variant}")
            pretrain(language, variant, run, steps, pretrain_overrides, report)
            names = [variant, "ambert-single"] if variant == "ambert" else [variant]
            for seed in range(1, seeds + 1):
                tuned = os.path.join(out, "finetune", f"{language.name}-{variant}-seed{seed}")
                record_path = os.path.join(tuned, "finetune.json")
                if not os.path.exists(record_path):  # written last (the directory is swapped in whole)
                    finetune_classifier(
                        files["train"],
                        files["dev"],
                        run,
                        tuned,
                        dataclasses.replace(tuning, seed=seed),
                        test_path=files["test"],
                    )
                with open(record_path, encoding="utf-8") as handle:
                    tested = json.load(handle)["scores"]["test"]  # scored at fine-tuning, with its default head
                for name in names:
                    # AMBERT-Single: the same fine-tuned model, predicting from the fine classifier alone
                    scores = evaluate_classifier(tuned, files["test"], "fine") if name == "ambert-single" else tested
                    entry = results["scores"].setdefault(language.name, {}).setdefault(name, [])
                    entry.append({"seed": seed, "accuracy": scores["accuracy"], "macro_f1": scores["macro_f1"]})
                    report(
                        f"{language.name} {name} seed {seed}: test accuracy {scores['accuracy']:.4f}, "
                        f"macro-F1 {scores['macro_f1']:.4f}"
                    )
    summarize(results)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "results.json"), "w", encoding="utf-8") as handle:
        json.dump(results, handle, indent=2)
    with open(os.path.join(out, "results.md"), "w", encoding="utf-8") as handle:
        handle.write(results_markdown(results))
    plot_results(results, os.path.join(out, "results.png"))
    return results


def pretrain(language: Language, variant: str, run: str, steps: int, overrides: list[str], report) -> None:
    """Pre-train `variant` to `steps` in `run`; a run stopped part-way is resumed, a finished one left as it is."""
    from trainer.checkpoint import latest_checkpoint, read_state
    from trainer.config import load_config
    from trainer.train import resumed_config, train

    checkpoint = latest_checkpoint(run)
    if checkpoint and read_state(checkpoint)["step"] >= steps:
        return
    report(f"pre-train {language.name} {variant}: {steps} steps")
    if os.path.exists(os.path.join(run, "config.json")):
        train(resumed_config(run, [f"optim.max_steps={steps}"]), run, resume=True)
    else:
        cfg = load_config(
            "tiny",
            None,
            [*overrides, f"data.data={language.shards}", f"model.variant={variant}", f"optim.max_steps={steps}"],
        )
        train(cfg, run, vocab_dir=language.vocab)


def mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def summarize(results: dict) -> None:
    results["summary"] = {
        language: {
            name: {metric: mean_std([run[metric] for run in runs]) for metric in ("accuracy", "macro_f1")}
            for name, runs in models.items()
        }
        for language, models in results["scores"].items()
    }


def results_markdown(results: dict) -> str:
    lines = [
        f"# Ablation at small scale ({results['steps']} pre-training steps, tiny preset, "
        f"{results['seeds']} fine-tuning seeds)",
        "",
        "Test accuracy and macro-F1, mean ± std over seeds.",
        "",
        "| language | model | accuracy | macro-F1 |",
        "|---|---|---|---|",
    ]
    for language, models in results["summary"].items():
        for name, metrics in models.items():
            (acc, acc_sd), (f1, f1_sd) = metrics["accuracy"], metrics["macro_f1"]
            lines.append(f"| {language} | {name} | {acc:.4f} ± {acc_sd:.4f} | {f1:.4f} ± {f1_sd:.4f} |")
    return "\n".join(lines) + "\n"


def plot_results(results: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from trainer.plots import save_figure

    languages = list(results["summary"])
    figure, axes = plt.subplots(1, len(languages), figsize=(6 * len(languages), 4), squeeze=False)
    for axis, language in zip(axes[0], languages, strict=True):
        models = results["summary"][language]
        names = list(models)
        means = [models[name]["accuracy"][0] for name in names]
        spreads = [models[name]["accuracy"][1] for name in names]
        axis.bar(names, means, yerr=spreads, capsize=4, color="tab:blue")
        axis.set_ylim(min(means) - 0.1 if means else 0, 1.0)
        axis.set_title(f"{language}: test accuracy (mean ± std)")
        axis.tick_params(axis="x", rotation=30)
    save_figure(figure, path)
