"""Fine-tuning: the three-head loss with the agreement regularizer by hand, a tiny real fine-tune that beats the
majority class, `ambert evaluate`, and the AMBERT-Single export as a transformers BertForSequenceClassification."""

from __future__ import annotations

import dataclasses
import json
import math
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from trainer.config import load_config
from trainer.finetune.classify import classification_loss, predict
from trainer.finetune.config import FinetuneConfig
from trainer.finetune.loop import finetune_classifier, load_finetuned
from trainer.finetune.span import finetune_span
from trainer.train import train

AMBERT = str(Path(sys.executable).parent / "ambert")
TINY = [
    "model.hidden_size=32",
    "model.num_layers=2",
    "model.num_heads=2",
    "model.intermediate_size=64",
    "data.batch_size=8",
    "run.log_every=5",
    "optim.warmup_steps=2",
    "optim.max_steps=6",
]


def test_three_heads_and_agreement_regularizer_by_hand():
    fine = torch.tensor([[2.0, 0.0]])
    coarse = torch.tensor([[0.0, 0.0]])
    concat = torch.tensor([[0.0, 1.0]])
    labels = torch.tensor([0])
    loss = classification_loss({"fine": fine, "coarse": coarse, "concat": concat}, labels, reg_lambda=0.5)
    p_fine = math.exp(2) / (math.exp(2) + 1)  # softmax of [2, 0]
    ce = -math.log(p_fine) - math.log(0.5) - math.log(1 / (1 + math.e))
    agreement = (p_fine - 0.5) ** 2 + ((1 - p_fine) - 0.5) ** 2
    assert loss.item() == pytest.approx(ce + 0.5 * agreement, rel=1e-6)
    single = classification_loss({"fine": fine}, labels, reg_lambda=0.5)  # one side: no regularizer
    assert single.item() == pytest.approx(-math.log(p_fine), rel=1e-6)


@pytest.fixture(scope="module")
def pretrained(trainer_data, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("ft") / "run"
    train(
        load_config("tiny", None, [*TINY, f"data.data={trainer_data['zh_shards']}"]),
        str(run),
        vocab_dir=str(trainer_data["zh_vocab"]),
    )
    return run


def write_toy_set(path: Path, count: int, seed: int) -> None:
    """Separable Chinese sentiment: 好/喜欢 versus 坏/讨厌 inside neutral filler."""
    rng = random.Random(seed)
    filler = list("今天我们在北京看了这个电影还有经济发展记者工作")
    with open(path, "w", encoding="utf-8") as handle:
        for _ in range(count):
            label = rng.choice(["pos", "neg"])
            cue = rng.choice(["好", "喜欢"] if label == "pos" else ["坏", "讨厌"])
            words = rng.sample(filler, 6)
            words.insert(rng.randint(0, 6), cue)
            handle.write(f"{label}\t{''.join(words)}\n")


def test_tiny_finetune_beats_the_majority_class_and_exports(pretrained, tmp_path):
    for name, count, seed in (("train", 240, 1), ("dev", 60, 2), ("test", 60, 3)):
        write_toy_set(tmp_path / f"{name}.tsv", count, seed)
    out = tmp_path / "ft"
    tuning = FinetuneConfig(epochs=8, batch_size=16, lr=3e-3, max_seq_len=32, seed=1)
    record = finetune_classifier(
        str(tmp_path / "train.tsv"),
        str(tmp_path / "dev.tsv"),
        str(pretrained),
        str(out),
        tuning,
        test_path=str(tmp_path / "test.tsv"),
    )
    gold = [line.split("\t")[0] for line in (tmp_path / "test.tsv").read_text().splitlines()]
    majority = max(gold.count("pos"), gold.count("neg")) / len(gold)
    assert record["scores"]["test"]["accuracy"] > majority + 0.15, record["history"]
    assert (out / "confusion-test.png").stat().st_size > 5000 and record["head"] == "concat"

    evaluated = subprocess.run(
        [
            AMBERT,
            "evaluate",
            "--model",
            str(out),
            "--data",
            str(tmp_path / "test.tsv"),
            "--predict-from",
            "fine",
            "--json",
            str(tmp_path / "scores.json"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert evaluated.returncode == 0, evaluated.stderr
    scores = json.loads((tmp_path / "scores.json").read_text())
    assert scores["head"] == "fine" and 0 <= scores["accuracy"] <= 1

    exported = tmp_path / "hf-classifier"
    result = subprocess.run(
        [AMBERT, "export", "--format", "hf", str(out), str(exported)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    from transformers import BertForSequenceClassification

    from trainer.finetune.readers import encode_labeled, read_labeled
    from trainer.masking import MaskingSpec, pad_examples
    from vocab.multigrained import MultiGrainedTokenizer

    classifier, saved = load_finetuned(str(out))
    vocab = str(out / "vocab")
    examples = encode_labeled(
        MultiGrainedTokenizer.from_artifact(vocab), read_labeled(str(tmp_path / "test.tsv")), 32, "test"
    )
    spec = MaskingSpec.from_artifact(vocab)
    ours = predict(classifier, examples, spec, "fine")
    hf = BertForSequenceClassification.from_pretrained(str(exported)).eval()
    batch = pad_examples(examples, spec)
    with torch.no_grad():
        logits = hf(
            input_ids=batch.fine_ids, attention_mask=batch.fine_mask.long(), token_type_ids=batch.fine_type
        ).logits
        reference = classifier(batch, heads=("fine",))["fine"]
    assert logits.argmax(-1).tolist() == ours
    assert torch.allclose(logits, reference, atol=1e-5)
    assert hf.config.id2label == dict(enumerate(saved["labels"]))


def test_unknown_dev_labels_are_refused(pretrained, tmp_path):
    write_toy_set(tmp_path / "train.tsv", 20, 1)
    (tmp_path / "dev.tsv").write_text("neutral\t今天\n", encoding="utf-8")
    with pytest.raises(ValueError, match="neutral"):
        finetune_classifier(
            str(tmp_path / "train.tsv"),
            str(tmp_path / "dev.tsv"),
            str(pretrained),
            str(tmp_path / "ft"),
            FinetuneConfig(epochs=1),
        )


def test_covering_coarse_token_of_each_fine_position():
    from trainer.ambert_encoder import covering_coarse

    align = torch.tensor([[[0, 1], [1, 3], [3, 4], [4, 5], [0, 0]]])  # [CLS] (ab) c [SEP] pad
    assert covering_coarse(align, 6).tolist() == [[0, 1, 1, 2, 3, 0]]


def test_span_finetune_learns_the_hand_written_squad_file(pretrained, tmp_path):
    """Train and dev on the same small file: a real run through windows, heads, n-best and EM/F1 that must fit it."""
    squad = str(Path(__file__).resolve().parents[3] / "data" / "squad_sample.json")
    tuning = FinetuneConfig(
        task="span", epochs=12, batch_size=8, lr=3e-3, max_seq_len=64, doc_stride=24, seed=1, warmup_ratio=0.0
    )
    record = finetune_span(squad, squad, str(pretrained), str(tmp_path / "span"), tuning)
    first, best = record["history"][0], record["scores"]["dev"]
    print("span F1 per epoch:", [round(epoch["f1"], 1) for epoch in record["history"]])
    assert best["f1"] > max(first["f1"] + 20, 40), record["history"]
    predictions = json.loads((tmp_path / "span" / "dev_predictions.json").read_text())
    assert len(predictions) == best["count"] == 15 and best["missing"] == 0
    assert record["head"] == "concat" and record["threshold"] is None

    evaluated = subprocess.run(
        [AMBERT, "evaluate", "--model", str(tmp_path / "span"), "--data", squad, "--json", str(tmp_path / "s.json")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert evaluated.returncode == 0, evaluated.stderr
    assert json.loads((tmp_path / "s.json").read_text())["f1"] == pytest.approx(best["f1"])


def test_squad2_span_finetune_tunes_a_threshold_and_single_reads_the_fine_side_only(pretrained, tmp_path):
    from trainer.finetune.span import load_span_model
    from trainer.finetune.span_windows import read_squad, squad_windows
    from trainer.masking import MaskingSpec, pad_examples
    from vocab.multigrained import MultiGrainedTokenizer

    document = json.loads((Path(__file__).resolve().parents[3] / "data" / "squad_sample.json").read_text())
    for article in document["data"]:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"][::3]:  # a third unanswerable, as SQuAD 2.0 marks them
                qa["answers"], qa["is_impossible"] = [], True
    squad2 = tmp_path / "squad2.json"
    squad2.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    tuning = FinetuneConfig(
        task="span", epochs=2, batch_size=8, lr=3e-3, max_seq_len=64, doc_stride=24, predict_from="fine"
    )
    record = finetune_span(
        str(squad2), str(squad2), str(pretrained), str(tmp_path / "v2"), tuning, test_path=str(squad2)
    )
    dev = record["scores"]["dev"]
    assert record["head"] == "fine" and record["threshold"] == dev["best_f1_thresh"]
    assert (
        dev["NoAns_count"] == 6
        and dev["HasAns_count"] == 9
        and record["scores"]["test"]["threshold"] == record["threshold"]
    )
    assert (tmp_path / "v2" / "test_null_odds.json").exists()

    model, _ = load_span_model(str(tmp_path / "v2"))
    vocab = str(tmp_path / "v2" / "vocab")
    example = read_squad(str(squad2))[0]
    window = squad_windows(MultiGrainedTokenizer.from_artifact(vocab), example, 64, 24)[0]
    batch = pad_examples([window.example], MaskingSpec.from_artifact(vocab))
    scrambled = dataclasses.replace(batch, coarse_ids=torch.randint_like(batch.coarse_ids, 5, 50))
    with torch.no_grad():
        fine, fine_scrambled = model(batch, heads=("fine",))["fine"], model(scrambled, heads=("fine",))["fine"]
        concat, concat_scrambled = model(batch)["concat"], model(scrambled)["concat"]
    assert torch.equal(fine, fine_scrambled)  # AMBERT-Single: nothing of the coarse side reaches the fine head
    assert not torch.equal(concat, concat_scrambled)
    no_coarse = dataclasses.replace(batch, coarse_ids=None, coarse_type=None, coarse_mask=None, align=None)
    with torch.no_grad():  # and the coarse side does not run at all: it has no inputs
        assert torch.equal(model(no_coarse, heads=("fine",))["fine"], fine)

    from transformers import AutoModelForQuestionAnswering

    from trainer.hf_interop import export_hf_ambert

    assert export_hf_ambert(str(tmp_path / "v2"), str(tmp_path / "hf-v2")) == "AmbertForQuestionAnswering"
    hf = AutoModelForQuestionAnswering.from_pretrained(str(tmp_path / "hf-v2"), trust_remote_code=True).eval()
    assert hf.config.prediction_head == "fine" and hf.config.null_score_threshold == record["threshold"]
    with torch.no_grad():
        theirs = hf(input_ids=batch.fine_ids, attention_mask=batch.fine_mask.long(), token_type_ids=batch.fine_type)
    assert (theirs.start_logits - fine[..., 0]).abs().max() < 1e-5  # AMBERT-Single: no coarse inputs needed
    assert (theirs.end_logits - fine[..., 1]).abs().max() < 1e-5


def test_ablation_writes_mean_and_std_and_a_rerun_reuses_finished_work(trainer_data, tmp_path):
    import gzip

    from trainer.finetune.ablation import Language, run_ablation

    for split, count, seed in (("train", 80, 1), ("dev", 30, 2), ("test", 30, 3)):
        write_toy_set(tmp_path / "toy.tsv", count, seed)
        with gzip.open(tmp_path / f"toy_{split}.tsv.gz", "wb") as handle:
            handle.write((tmp_path / "toy.tsv").read_bytes())
    shards, vocab = str(trainer_data["zh_shards"]), str(trainer_data["zh_vocab"])
    language = Language("zh", shards, vocab, str(tmp_path / "toy"), heldout=shards)
    tiny = [o for o in TINY if not o.startswith("optim.max_steps")]
    lines: list[str] = []
    results = run_ablation(
        [language],
        str(tmp_path / "ablation"),
        steps=4,
        seeds=2,
        pretrain_overrides=tiny,
        tuning=FinetuneConfig(epochs=1, batch_size=16, lr=1e-3, max_seq_len=32),
        models=("ambert", "bert"),
        controls=True,
        report=lines.append,
    )
    summary = results["summary"]["zh"]
    assert set(summary) == {
        "ambert",
        "ambert-single",
        "bert",
        "ambert-random",
        "ambert-random-single",
        "bert-fine-random",
    }
    heldout = results["heldout"]["zh"]
    assert set(heldout) == {"ambert", "bert"} and all(0 < entry["loss"] < 30 for entry in heldout.values())
    assert heldout["bert"]["coarse_loss"] == 0  # bert-fine has no coarse side
    runs = results["scores"]["zh"]["ambert"]
    accuracies = [run["accuracy"] for run in runs]
    assert [run["seed"] for run in runs] == [1, 2]
    assert summary["ambert"]["accuracy"][0] == pytest.approx(sum(accuracies) / 2)
    tuned = json.loads((tmp_path / "ablation" / "finetune" / "zh-ambert-seed1" / "finetune.json").read_text())
    assert runs[0]["accuracy"] == tuned["scores"]["test"]["accuracy"]  # the concat head's score at fine-tuning
    for name in ("results.md", "results.json", "results.png"):
        assert (tmp_path / "ablation" / name).stat().st_size > 100
    markdown = (tmp_path / "ablation" / "results.md").read_text()
    assert "| zh | AMBERT-Single | ambert, ambert masking, mlm |" in markdown
    assert "| zh | BERT (char) | bert-fine, token masking, mlm |" in markdown
    assert "| zh | BERT (fine), no pre-training | random init |" in markdown
    assert "- zh BERT (char): " in markdown and "its control by more than two standard deviations" in markdown
    assert sum(line.startswith("pre-train ") for line in lines) == 4  # two models, two controls

    lines.clear()
    again = run_ablation(
        [language],
        str(tmp_path / "ablation"),
        steps=4,
        seeds=2,
        pretrain_overrides=tiny,
        tuning=FinetuneConfig(epochs=1, batch_size=16, lr=1e-3, max_seq_len=32),
        models=("ambert", "bert"),
        controls=True,
        report=lines.append,
    )
    assert not any(line.startswith("pre-train ") for line in lines) and again["summary"] == results["summary"]

    from trainer.checkpoint import latest_checkpoint, read_state

    lines.clear()  # a pre-training run short of the budget (stopped part-way) is resumed, not taken as finished
    run_ablation(
        [language],
        str(tmp_path / "ablation"),
        steps=6,
        seeds=1,
        pretrain_overrides=tiny,
        tuning=FinetuneConfig(epochs=1, batch_size=16, lr=1e-3, max_seq_len=32),
        models=("bert",),
        controls=False,
        report=lines.append,
    )
    assert sum(line.startswith("pre-train ") for line in lines) == 1
    assert read_state(latest_checkpoint(str(tmp_path / "ablation" / "pretrain" / "zh-bert")))["step"] == 6


def test_a_one_seed_ablation_makes_no_two_std_claim():
    from trainer.finetune.ablation import verdicts

    summary = {"en": {"bert": {"accuracy": (0.91, 0.0)}, "bert-fine-random": {"accuracy": (0.9, 0.0)}}}
    results = {"seeds": 1, "summary": summary, "models": {"bert": {"name": "BERT (char)"}}}
    assert verdicts(results) == ["- en BERT (char): 0.9100 vs its control 0.9000 (one seed: no standard deviation "
                                 "to judge by; --seeds 3)"]  # fmt: skip
    assert "beats its control by more than two" in verdicts({**results, "seeds": 3})[0]


def test_an_ablation_stopped_by_sigterm_fine_tunes_nothing_and_a_rerun_continues(trainer_data, tmp_path):
    """SIGTERM to the ablation's whole process group (its loader workers too) while it pre-trains: the pre-training
    checkpoints and the ablation stops with a line saying how to continue, before fine-tuning a half-trained model;
    the same command again finishes the budget."""
    import gzip
    import os
    import signal
    import time

    for split, count, seed in (("train", 40, 1), ("dev", 20, 2), ("test", 20, 3)):
        write_toy_set(tmp_path / "toy.tsv", count, seed)
        with gzip.open(tmp_path / f"toy_{split}.tsv.gz", "wb") as handle:
            handle.write((tmp_path / "toy.tsv").read_bytes())
    out = tmp_path / "ablation"
    pretraining = [f"--pretrain={o}" for o in TINY if not o.startswith("optim.max_steps")]
    command = [AMBERT, "ablation", "--out", str(out), "--steps", "400", "--seeds", "1", "--epochs", "1"]
    command += ["--models", "bert", "--no-controls", "--zh-shards", str(trainer_data["zh_shards"])]
    command += ["--zh-vocab", str(trainer_data["zh_vocab"]), "--zh-labeled", str(tmp_path / "toy"), *pretraining]
    command += ["--pretrain=run.log_every=1", "--pretrain=data.num_workers=2", "--pretrain=run.save_every=1000"]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    metrics, deadline = out / "pretrain" / "zh-bert" / "metrics.jsonl", time.monotonic() + 240
    while not metrics.exists() or len(metrics.read_text().splitlines()) < 3:
        assert process.poll() is None, process.stdout.read()
        assert time.monotonic() < deadline, "no logged pre-training step in time"
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGTERM)
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 2 and "stopped at step" in output and "rerun the same" in output, output
    assert not (out / "finetune").exists()
    from trainer.checkpoint import latest_checkpoint, read_state

    stopped_at = read_state(latest_checkpoint(str(out / "pretrain" / "zh-bert")))["step"]
    assert 3 <= stopped_at < 400
    shorter = [*command[: command.index("400")], "20", *command[command.index("400") + 1 :]]
    again = subprocess.run(shorter, capture_output=True, text=True, timeout=300, check=False)
    assert again.returncode == 0, again.stdout + again.stderr
    assert read_state(latest_checkpoint(str(out / "pretrain" / "zh-bert")))["step"] == max(20, stopped_at)
    assert (out / "results.md").exists()


def test_regression_finetune_beats_a_constant_with_grad_accum_and_bf16(pretrained, tmp_path):
    """A score set by the cue word (好 5, 坏 0, none 2.5): Pearson well above a constant's 0; bf16 autocast and
    two micro-batches per step on the way."""
    from trainer.finetune import regress
    from trainer.finetune.loop import evaluate_finetuned, finetune_sequence
    from trainer.finetune.readers import LabeledExample

    rng = random.Random(4)
    filler = list("今天我们在北京看了这个电影还有经济发展记者工作")

    def rows(count):
        made = []
        for _ in range(count):
            cue, value = rng.choice([("好", 5.0), ("坏", 0.0), ("", 2.5)])
            words = rng.sample(filler, 6)
            words.insert(rng.randint(0, 6), cue)
            made.append(LabeledExample(text="".join(words), label=str(value + rng.uniform(-0.3, 0.3))))
        return made

    splits = {"train": rows(200), "dev": rows(40), "test": rows(40)}
    tuning = FinetuneConfig(
        task="regress", epochs=6, batch_size=8, grad_accum=2, precision="bf16", lr=3e-3, max_seq_len=32
    )
    record = finetune_sequence(regress.TASK, splits, str(pretrained), str(tmp_path / "reg"), tuning)
    assert record["task"] == "regress" and record["scores"]["test"]["pearson"] > 0.5, record["history"]
    scores = evaluate_finetuned(str(tmp_path / "reg"), splits["test"], predict_from="fine")
    assert scores["head"] == "fine" and set(scores) >= {"pearson", "spearman", "mse"}

    from transformers import AutoModelForSequenceClassification

    from trainer.finetune.regress import TASK
    from trainer.hf_interop import export_hf_ambert
    from trainer.masking import MaskingSpec, pad_examples
    from vocab.multigrained import MultiGrainedTokenizer

    assert export_hf_ambert(str(tmp_path / "reg"), str(tmp_path / "hf-reg")) == "AmbertForSequenceClassification"
    hf = AutoModelForSequenceClassification.from_pretrained(str(tmp_path / "hf-reg"), trust_remote_code=True).eval()
    vocab = str(tmp_path / "reg" / "vocab")
    examples = TASK.encode(MultiGrainedTokenizer.from_artifact(vocab), splits["test"][:8], 32, "test")
    batch = pad_examples(examples, MaskingSpec.from_artifact(vocab))
    classifier, _ = load_finetuned(str(tmp_path / "reg"))
    with torch.no_grad():
        ours = classifier(batch)["concat"]
        theirs = hf(
            input_ids=batch.fine_ids, attention_mask=batch.fine_mask.long(), token_type_ids=batch.fine_type,
            coarse_input_ids=batch.coarse_ids, coarse_attention_mask=batch.coarse_mask.long(),
            coarse_token_type_ids=batch.coarse_type,
        ).logits  # fmt: skip
    assert theirs.shape == (8, 1) and (ours - theirs).abs().max() < 1e-5


def test_choice_finetune_beats_chance(pretrained, tmp_path):
    """Three options, the right one holds 喜欢: accuracy well above 1/3 after a tiny fine-tune."""
    from trainer.finetune import choice
    from trainer.finetune.loop import evaluate_finetuned, finetune_sequence

    rng = random.Random(5)
    filler = list("今天我们在北京看了这个电影还有经济发展记者工作")

    def rows(count):
        made = []
        for number in range(count):
            options = ["".join(rng.sample(filler, 2)) for _ in range(3)]
            label = rng.randrange(3)
            options[label] = "喜欢" + options[label][:1]
            made.append(
                choice.ChoiceExample("".join(rng.sample(filler, 8)), "哪个", tuple(options), label, str(number))
            )
        return made

    splits = {"train": rows(150), "dev": rows(30), "test": rows(45)}
    tuning = FinetuneConfig(task="choice", epochs=5, batch_size=8, lr=3e-3, max_seq_len=32)
    record = finetune_sequence(choice.TASK, splits, str(pretrained), str(tmp_path / "choice"), tuning)
    assert record["scores"]["test"]["accuracy"] > 1 / 3 + 0.2, record["history"]
    assert (
        evaluate_finetuned(str(tmp_path / "choice"), splits["test"])["accuracy"] == record["scores"]["test"]["accuracy"]
    )
    exported = subprocess.run(
        [AMBERT, "export", "--format", "hf-ambert", str(tmp_path / "choice"), str(tmp_path / "hf-choice")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert exported.returncode == 0 and "AmbertForMultipleChoice" in exported.stderr, exported.stderr
    from transformers import AutoModelForMultipleChoice

    _, info = AutoModelForMultipleChoice.from_pretrained(
        str(tmp_path / "hf-choice"), trust_remote_code=True, output_loading_info=True
    )
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]


def test_option_scores_pad_missing_options():
    from trainer.finetune.choice import MISSING, option_scores

    scores = option_scores(torch.tensor([[1.0], [2.0], [3.0], [4.0], [5.0]]), [2, 3])
    assert scores.tolist() == [[1.0, 2.0, MISSING], [3.0, 4.0, 5.0]]


def test_named_tasks_through_the_cli_finetune_and_evaluate(pretrained, tmp_path):
    tasks = Path(__file__).resolve().parents[3] / "data" / "tasks"

    def ambert(*args):
        return subprocess.run([AMBERT, *map(str, args)], capture_output=True, text=True, check=False)

    for name, metric in (("glue/stsb", "pearson"), ("clue/c3", "accuracy"), ("glue/mrpc", "f1")):
        out = tmp_path / name.replace("/", "-")
        tuned = ambert(
            "finetune", "--task", name, "--data", tasks / name, "--init", pretrained, "--out", out,
            "--epochs", 1, "--batch-size", 2, "--max-seq-len", 32,
        )  # fmt: skip
        assert tuned.returncode == 0, tuned.stderr
        evaluated = ambert("evaluate", "--model", out, "--data", tasks / name, "--json", tmp_path / "scores.json")
        assert evaluated.returncode == 0, evaluated.stderr
        assert metric in json.loads((tmp_path / "scores.json").read_text()), name
    (tmp_path / "empty").mkdir()
    missing = ambert(
        "finetune", "--task", "clue/afqmc", "--data", tmp_path / "empty", "--init", pretrained, "--out", tmp_path / "x"
    )
    assert missing.returncode == 2 and "train.json is missing" in missing.stderr and "Traceback" not in missing.stderr


def test_hf_ambert_export_loads_with_automodel_and_matches_within_1e5(pretrained, tmp_path):
    from transformers import AutoModel, AutoModelForSequenceClassification

    from trainer.checkpoint import load_run_model
    from trainer.finetune.readers import encode_labeled, read_labeled
    from trainer.masking import MaskingSpec, pad_examples
    from vocab.multigrained import MultiGrainedTokenizer

    write_toy_set(tmp_path / "train.tsv", 40, 1)
    write_toy_set(tmp_path / "dev.tsv", 12, 2)
    vocab = str(pretrained / "vocab")
    examples = encode_labeled(MultiGrainedTokenizer.from_artifact(vocab), read_labeled(str(tmp_path / "dev.tsv")), 32)
    batch = pad_examples(examples, MaskingSpec.from_artifact(vocab))
    hf_inputs = {
        "input_ids": batch.fine_ids,
        "attention_mask": batch.fine_mask.long(),
        "token_type_ids": batch.fine_type,
        "coarse_input_ids": batch.coarse_ids,
        "coarse_attention_mask": batch.coarse_mask.long(),
        "coarse_token_type_ids": batch.coarse_type,
    }
    exported = subprocess.run(
        [AMBERT, "export", "--format", "hf-ambert", str(pretrained), str(tmp_path / "hf")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert exported.returncode == 0, exported.stderr
    assert {"modeling_ambert.py", "tokenize_ambert.py", "config.json", "model.safetensors", "vocab", "vocab.txt"} <= {
        p.name for p in (tmp_path / "hf").iterdir()
    }
    ours, _, _ = load_run_model(str(pretrained))
    theirs = AutoModel.from_pretrained(str(tmp_path / "hf"), trust_remote_code=True).eval()
    with torch.no_grad():
        expected = ours.encode(
            batch.fine_ids, batch.fine_type, batch.fine_mask, batch.coarse_ids, batch.coarse_type, batch.coarse_mask
        )
        got = theirs(**hf_inputs)
    for side in ("fine", "coarse"):
        mask = getattr(batch, f"{side}_mask")[..., None]
        hidden_ours, hidden_theirs = getattr(expected, f"{side}_hidden"), got[f"{side}_last_hidden_state"]
        assert (hidden_ours - hidden_theirs).mul(mask).abs().max() < 1e-5, side
        assert (getattr(expected, f"{side}_pooled") - got[f"{side}_pooler_output"]).abs().max() < 1e-5, side

    tuned = tmp_path / "ft"
    finetune_classifier(
        str(tmp_path / "train.tsv"),
        str(tmp_path / "dev.tsv"),
        str(pretrained),
        str(tuned),
        FinetuneConfig(epochs=1, max_seq_len=32),
    )
    exported = subprocess.run(
        [AMBERT, "export", "--format", "hf-ambert", str(tuned), str(tmp_path / "hf-ft")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert exported.returncode == 0, exported.stderr
    classifier, record = load_finetuned(str(tuned))
    hf_classifier = AutoModelForSequenceClassification.from_pretrained(
        str(tmp_path / "hf-ft"), trust_remote_code=True
    ).eval()
    with torch.no_grad():
        reference = classifier(batch)["concat"]
        logits = hf_classifier(**hf_inputs).logits
    assert (reference - logits).abs().max() < 1e-5
    assert hf_classifier.config.id2label == dict(enumerate(record["labels"]))
