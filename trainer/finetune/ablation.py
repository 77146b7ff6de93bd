"""The seeds' ablation at small scale: pre-train the family of models (BERT, BERT-wwm, MacBERT, PERT, BERT (coarse),
AMBERT, AMBERT-Combo, AMBERT-Hybrid) on the same shards with the same budget, fine-tune each on labeled data with
several seeds, and report test accuracy / macro-F1 as mean ± std beside a no-pre-training control per architecture
and each model's held-out pre-training loss (results.md, results.png, results.json).

    ambert ablation --out out/ablation --steps 300 --seeds 3 --zh-shards out/shards-zh --zh-vocab out/vocab-zh \
        --zh-labeled data/labeled/zh_sentiment [--zh-heldout out/heldout-zh] [--models bert,bert-wwm,ambert]
AMBERT is fine-tuned once per seed and scored twice: from the concatenated classifier (AMBERT) and from the fine
classifier alone (AMBERT-Single, the fine encoder only at inference). A control is the same architecture with
`--max-steps 0` (random initial weights), fine-tuned alike.
"""

from __future__ import annotations

import dataclasses
import json
import os
import statistics
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Language:
    name: str  # en | zh
    shards: str
    vocab: str
    labeled: str  # prefix: PREFIX_train.tsv.gz, PREFIX_dev.tsv.gz, PREFIX_test.tsv.gz
    heldout: str = ""  # a shard set of the same vocab, never pre-trained on: each model's held-out loss


@dataclass(frozen=True)
class Model:
    """One model of the seeds: its name there, and the `ambert train` settings that make it."""

    name: str
    variant: str
    masking: str
    objective: str = "mlm"
    sop: bool = False

    @property
    def overrides(self) -> list[str]:
        return [
            f"model.variant={self.variant}",
            f"data.masking={self.masking}",
            f"model.objective={self.objective}",
            f"model.sop={str(self.sop).lower()}",
        ]

    @property
    def recipe(self) -> str:
        return f"{self.variant}, {self.masking} masking, {self.objective}" + (" + SOP" if self.sop else "")


MODELS = {
    "bert": Model("BERT (char)", "bert-fine", "token"),
    "bert-wwm": Model("BERT-wwm", "bert-fine", "word"),
    "macbert": Model("MacBERT", "bert-fine", "ngram", "mac", sop=True),
    "pert": Model("PERT", "bert-fine", "ngram", "perm"),
    "bert-coarse": Model("BERT (word)", "bert-coarse", "ambert"),
    "ambert": Model("AMBERT", "ambert", "ambert"),
    "combo": Model("AMBERT-Combo", "combo", "ambert"),
    "hybrid": Model("AMBERT-Hybrid", "hybrid", "ambert"),
}
ARCHITECTURES = {
    "bert-fine": "BERT (fine)",
    "bert-coarse": "BERT (coarse)",
    "ambert": "AMBERT",
    "combo": "AMBERT-Combo",
    "hybrid": "AMBERT-Hybrid",
}
SINGLE, SINGLE_RANDOM = "ambert-single", "ambert-random-single"  # AMBERT's, predicting from the fine classifier


def labeled_files(prefix: str) -> dict[str, str]:
    files = {split: f"{prefix}_{split}.tsv.gz" for split in ("train", "dev", "test")}
    missing = [path for path in files.values() if not os.path.exists(path)]
    if missing:
        raise ValueError(f"labeled files missing: {', '.join(missing)} (expected PREFIX_train/dev/test.tsv.gz)")
    return files


def check_models(models: tuple[str, ...]) -> None:
    unknown = [key for key in models if key not in MODELS]
    if unknown:
        raise ValueError(f"unknown model(s) {', '.join(unknown)}; known: {', '.join(MODELS)}")


def run_ablation(
    languages: list[Language],
    out: str,
    *,
    steps: int,
    seeds: int,
    pretrain_overrides: list[str],
    tuning,
    models: tuple[str, ...],
    controls: bool,
    report: Callable[[str], None] = print,
) -> dict:
    """Pre-train and fine-tune every (language, model) and, with `controls`, every architecture among them from
    random init; returns and writes OUT/results.json, results.md, results.png."""
    from trainer.finetune.loop import evaluate_classifier, finetune_classifier

    check_models(models)
    results: dict = {
        "steps": steps,
        "seeds": seeds,
        "finetune": dataclasses.asdict(tuning),
        "pretrain_overrides": list(pretrain_overrides),
        "models": {},
        "scores": {},
        "heldout": {},
    }
    runs: list[tuple[str, str, list[str], int]] = []  # (key, label, train overrides, steps)
    for key in models:
        model = MODELS[key]
        runs.append((key, model.name, model.overrides, steps))
        results["models"][key] = {"name": model.name, "recipe": model.recipe, "pre-training steps": steps}
    if controls:
        for variant in dict.fromkeys(MODELS[key].variant for key in models):
            key = f"{variant}-random"
            runs.append((key, f"{ARCHITECTURES[variant]}, no pre-training", [f"model.variant={variant}"], 0))
            results["models"][key] = {"name": f"{ARCHITECTURES[variant]}, no pre-training", "recipe": "random init"}
    for language in languages:
        files = labeled_files(language.labeled)
        for key, label, overrides, budget in runs:
            run = os.path.join(out, "pretrain", f"{language.name}-{key}")
            pretrain(language, label, run, budget, [*pretrain_overrides, *overrides], report)
            if budget and language.heldout:
                loss = heldout_loss(run, language.heldout)
                results["heldout"].setdefault(language.name, {})[key] = loss
                report(f"{language.name} {label}: held-out pre-training loss {loss['loss']:.4f}")
            names = [key, f"{key}-single"] if key in ("ambert", "ambert-random") else [key]  # + AMBERT-Single
            if key == "ambert-random":
                results["models"][SINGLE_RANDOM] = {"name": "AMBERT-Single, no pre-training", "recipe": "random init"}
            elif key == "ambert":
                results["models"][SINGLE] = {"name": "AMBERT-Single", "recipe": MODELS["ambert"].recipe}
            for seed in range(1, seeds + 1):
                tuned = os.path.join(out, "finetune", f"{language.name}-{key}-seed{seed}")
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
                    scores = evaluate_classifier(tuned, files["test"], "fine") if name != key else tested
                    entry = results["scores"].setdefault(language.name, {}).setdefault(name, [])
                    entry.append({"seed": seed, "accuracy": scores["accuracy"], "macro_f1": scores["macro_f1"]})
                    report(
                        f"{language.name} {results['models'][name]['name']} seed {seed}: test accuracy "
                        f"{scores['accuracy']:.4f}, macro-F1 {scores['macro_f1']:.4f}"
                    )
    summarize(results)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "results.json"), "w", encoding="utf-8") as handle:
        json.dump(results, handle, indent=2)
    with open(os.path.join(out, "results.md"), "w", encoding="utf-8") as handle:
        handle.write(results_markdown(results))
    plot_results(results, os.path.join(out, "results.png"))
    return results


def pretrain(language: Language, label: str, run: str, steps: int, overrides: list[str], report) -> None:
    """Pre-train to `steps` in `run` (0: random init, saved); a run stopped part-way is resumed, a finished one kept."""
    from trainer.checkpoint import latest_checkpoint, read_state
    from trainer.config import load_config
    from trainer.train import TrainError, resumed_config, train

    checkpoint = latest_checkpoint(run)
    if checkpoint and read_state(checkpoint)["step"] >= steps:
        return
    report(f"pre-train {language.name} {label}: {steps} steps")
    if os.path.exists(os.path.join(run, "config.json")):
        train(resumed_config(run, [f"optim.max_steps={steps}"]), run, resume=True)
    else:
        cfg = load_config("tiny", None, [*overrides, f"data.data={language.shards}", f"optim.max_steps={steps}"])
        train(cfg, run, vocab_dir=language.vocab)
    reached = read_state(latest_checkpoint(run))["step"]
    if reached < steps:  # SIGTERM / SIGUSR1: train() checkpointed and returned; fine-tuning this would be wrong
        raise TrainError(
            f"pre-training of {language.name} {label} stopped at step {reached} of {steps} (a stop signal); "
            "rerun the same `ambert ablation` command to continue where it stopped"
        )


def heldout_loss(run: str, shards: str, max_batches: int = 50) -> dict:
    """The run's own pre-training loss on the shard set `shards` (trainer.evaluation, as `ambert train --eval-data`
    evaluates it: fixed masks, no dropout), over at most max_batches batches: {"loss", "fine_loss", "coarse_loss",
    "fine_acc", "coarse_acc"}, 0 for a side the model lacks. The side losses are MLM cross-entropy (mlm, mac) or the
    pointer's (perm)."""
    from trainer.checkpoint import load_run_model
    from trainer.config import read_config
    from trainer.evaluation import HeldOut

    model, run_dir, _ = load_run_model(run)
    cfg = read_config(os.path.join(run_dir, "config.json"))
    heldout = HeldOut.open(
        cfg, shards, vocab_dir=os.path.join(run_dir, "vocab"), rank=0, world_size=1, max_batches=max_batches
    )
    record = heldout.evaluate(model)
    result = {"loss": record["eval_loss"]}
    for side in ("fine", "coarse"):
        for name in ("loss", "acc"):
            result[f"{side}_{name}"] = record.get(f"eval_{side}_{name}", 0.0)
    return result


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
        f"# Ablation at small scale ({results['steps']} pre-training steps of the tiny preset, the same shards; "
        f"{results['seeds']} fine-tuning seeds)",
        "",
        "Test accuracy and macro-F1, mean ± std over seeds; held-out: each pre-trained model's own loss (its masking "
        "and objective; fine + coarse side) on a shard set it was not trained on. A control (no pre-training) is "
        "its architecture from random initial weights, fine-tuned alike.",
        "",
        *results_table(results),
    ]
    return "\n".join(lines) + "\n"


def results_table(results: dict) -> list[str]:
    """The results as markdown table lines, then the verdicts (results.md without its heading and explanation)."""
    lines = [
        "| language | model | pre-training | accuracy | macro-F1 | held-out loss |",
        "|---|---|---|---|---|---|",
    ]
    for language, models in results["summary"].items():
        heldout = results.get("heldout", {}).get(language, {})
        for key, metrics in models.items():
            (acc, acc_sd), (f1, f1_sd) = metrics["accuracy"], metrics["macro_f1"]
            about = results["models"].get(key, {"name": key, "recipe": ""})
            loss = heldout.get(key.removesuffix("-single"), {}).get("loss")
            shown = f"{loss:.4f}" if loss is not None else "–"
            lines.append(
                f"| {language} | {about['name']} | {about['recipe']} | {acc:.4f} ± {acc_sd:.4f} | "
                f"{f1:.4f} ± {f1_sd:.4f} | {shown} |"
            )
    return [*lines, "", *verdicts(results)]


def verdicts(results: dict) -> list[str]:
    """One line per (language, pre-trained model): does it beat its architecture's control by > 2 std?"""
    lines = []
    for language, models in results["summary"].items():
        for key, metrics in models.items():
            control_key = f"{MODELS[key].variant}-random" if key in MODELS else SINGLE_RANDOM if key == SINGLE else ""
            if control_key not in models:
                continue
            mean, sd = metrics["accuracy"]
            control, control_sd = models[control_key]["accuracy"]
            if results["seeds"] < 2:  # no spread: a difference of one seed says nothing
                lines.append(
                    f"- {language} {results['models'][key]['name']}: {mean:.4f} vs its control {control:.4f} "
                    "(one seed: no standard deviation to judge by; --seeds 3)"
                )
                continue
            margin = 2 * max(sd, control_sd)
            verdict = "beats" if mean - control > margin else "does not beat"
            lines.append(
                f"- {language} {results['models'][key]['name']}: {verdict} its control by more than two standard "
                f"deviations ({mean:.4f} vs {control:.4f}, 2 std = {margin:.4f})"
            )
    return lines


def plot_results(results: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from trainer.plots import save_figure

    languages = list(results["summary"])
    figure, axes = plt.subplots(1, len(languages), figsize=(9 * len(languages), 5), squeeze=False)
    for axis, language in zip(axes[0], languages, strict=True):
        models = results["summary"][language]
        keys = list(models)
        names = [results["models"].get(key, {"name": key})["name"] for key in keys]
        means = [models[key]["accuracy"][0] for key in keys]
        spreads = [models[key]["accuracy"][1] for key in keys]
        colors = ["tab:gray" if "random" in key else "tab:blue" for key in keys]
        axis.bar(names, means, yerr=spreads, capsize=4, color=colors)
        axis.set_ylim(min(means) - 0.1 if means else 0, 1.0)
        axis.set_title(f"{language}: test accuracy (mean ± std; gray: no pre-training)")
        axis.tick_params(axis="x", rotation=40, labelsize=8)
    save_figure(figure, path)
