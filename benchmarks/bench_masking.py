"""Masking throughput per strategy and objective (trainer/masking_strategies.py), in one process, against the
collator's default corruption (ambert masking, mlm: `Corruption`) on the same examples and against what a training
step consumes.

    .venv/bin/python -m benchmarks.bench_masking [--work out/bench-masking] [--examples 2000] [--repeats 3]

Data: vocab artifacts with similar words (`build_vocab --similar-words 10`) and shards of the bundled corpora
(data/zh, data/en; built once into --work). Each figure is the best of --repeats passes over the same examples,
the passes of all figures interleaved; a pass draws each example's rng (example_rng) and runs choose + corrupt.
--step-samples-per-s: samples/s one CPU training process consumes (benchmarks/README.md, bench_train_step:
18.3 at hidden 256, 4 layers, seq 128, batch 32). Target: ≥ 20× that. One JSON line per figure.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
AMBERT = str(Path(sys.executable).parent / "ambert")

BASELINE = "collator default (Corruption: ambert, mlm)"
# (name, strategy, objective, tie_coarse, ngram of coarse units): the seeds' models and AMBERT's
FIGURES = [
    ("bert (token)", "token", "mlm", False, False),
    ("bert-wwm (word)", "word", "mlm", False, False),
    ("macbert (ngram + mac)", "ngram", "mac", False, False),
    ("pert (ngram + perm)", "ngram", "perm", False, False),
    ("ambert (coarse units)", "ambert", "mlm", True, False),
    ("ambert (coarse n-grams)", "ambert", "mlm", True, True),
    ("ambert (word, tied)", "word", "mlm", True, False),
]


def prepare(work: Path, lang: str) -> tuple[str, list]:
    """(artifact dir, examples): the bundled corpus's artifact (with similar.tsv) and its first shard's examples."""
    from pipelines.vocab_build import VocabConfig, build_vocab
    from vocab.aligned_codec import decode_example

    vocab, shards = work / f"vocab-{lang}", work / f"shards-{lang}"
    corpus = str(REPO / "data" / lang)
    if not (vocab / "artifact.json").exists():
        build_vocab(VocabConfig(lang=lang, corpus=(corpus,), out=str(vocab), min_count=3, similar_words=10))
    if not (shards / "manifest.json").exists():
        subprocess.run(
            [AMBERT, "shard", "build", "--vocab", str(vocab), "--corpus", corpus, "--out", str(shards)]
            + ["--docs-per-line", "--samples-per-shard", "4000"],
            check=True,
            capture_output=True,
        )
    with tarfile.open(shards / "shard-00000.tar") as tar:
        members = [m for m in tar.getmembers() if m.isfile()]
        examples = [decode_example(tar.extractfile(m).read(), m.name.split(".")[0]) for m in members]
    return str(vocab), examples


def passes(vocab: str, examples: list) -> dict:
    """name → a function masking every example once."""
    from trainer.masking import example_rng
    from trainer.masking_strategies import (
        STRATEGIES,
        Corruption,
        UnitRules,
        corrupt_bert,
        corrupt_mac,
        permute_chosen,
    )
    from vocab.similar_words import SimilarWordTable

    table = SimilarWordTable.from_artifact(vocab)
    rules = {tie: UnitRules.from_artifact(vocab, tie_coarse=tie) for tie in (False, True)}

    default = Corruption(rules[True])

    def baseline():
        for example in examples:
            default(example, example_rng(1, 0, example.key))

    def figure(strategy: str, objective: str, tie: bool, ngram: bool):
        choose, unit_rules = STRATEGIES[strategy], rules[tie]
        options = {"ngram": True} if ngram else {}

        def run():
            for example in examples:
                rng = example_rng(1, 0, example.key, 1)
                chosen = choose(example, unit_rules, rng, **options)
                if objective == "mlm":
                    corrupt_bert(example, chosen, unit_rules, rng)
                elif objective == "mac":
                    corrupt_mac(example, chosen, unit_rules, table, rng)
                else:
                    permute_chosen(example, chosen, rng)

        return run

    runs = {BASELINE: baseline}
    for name, strategy, objective, tie, ngram in FIGURES:
        runs[name] = figure(strategy, objective, tie, ngram)
    return runs


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default="out/bench-masking")
    parser.add_argument("--examples", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--step-samples-per-s", type=float, default=18.3)
    args = parser.parse_args(argv)
    work = Path(args.work)
    os.makedirs(work, exist_ok=True)
    for lang in ("zh", "en"):
        vocab, examples = prepare(work, lang)
        examples = examples[: args.examples]
        runs = passes(vocab, examples)
        best = {name: float("inf") for name in runs}
        for _ in range(args.repeats):
            for name, run in runs.items():
                started = time.perf_counter()
                run()
                best[name] = min(best[name], time.perf_counter() - started)
        baseline = len(examples) / best[BASELINE]
        for name, seconds in best.items():
            rate = len(examples) / seconds
            record = {
                "lang": lang,
                "figure": name,
                "examples": len(examples),
                "examples_per_s": round(rate, 1),
                "vs_default": round(rate / baseline, 2),
                "vs_step_consumption": round(rate / args.step_samples_per_s, 1),
            }
            print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main()
