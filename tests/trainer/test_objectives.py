"""Every masking strategy × objective trains: a tiny run (in-process, real shards of a zh artifact with similar
words) whose loss falls; the PERT pointer head and the SOP head on their own; the errors of unusable settings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tests.trainer.conftest import REPO, make_shard_set, write_first_lines
from tests.vocab.conftest import build_zh
from trainer.batch import IGNORE
from trainer.config import ConfigError, ModelConfig, load_config, masking_of
from trainer.objectives import PointerHead
from trainer.train import train
from vocab.artifact import ArtifactError

SIMILAR = [("北京", "中国"), ("中国", "北京"), ("我们", "人民"), ("人民", "我们"), ("经济", "发展"), ("今天", "记者")]
TINY = [
    "model.hidden_size=32",
    "model.num_layers=1",
    "model.num_heads=2",
    "model.intermediate_size=64",
    "data.batch_size=16",
    "data.shuffle_buffer=50",
    "data.num_workers=0",
    "run.log_every=1",
    "run.save_every=1000",
    "optim.warmup_steps=3",
    "optim.lr=3e-3",
    "run.device=cpu",
]
# a variant per strategy, so that each path through the model is run (perm is refused with hybrid)
VARIANT = {"token": "bert-fine", "word": "hybrid", "ngram": "combo", "ambert": "ambert"}


@pytest.fixture(scope="module")
def similar_data(tmp_path_factory) -> dict[str, Path]:
    """A zh artifact with similar.tsv (the test words' neighbours) and its shard set (NSP pairs)."""
    root = tmp_path_factory.mktemp("objectives")
    build_zh(root / "vocab", "".join(f"{a}\t{b}\t0.5000\n" for a, b in SIMILAR).encode())
    corpus = write_first_lines(REPO / "data" / "zh" / "pku199801_sample.txt.gz", root / "zh.txt", 120)
    return {"vocab": root / "vocab", "shards": make_shard_set(root / "vocab", corpus, root / "shards", 64)}


def run_records(run: Path) -> list[dict]:
    with open(run / "metrics.jsonl", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


@pytest.mark.parametrize("objective", ["mlm", "mac", "perm"])
@pytest.mark.parametrize("masking", ["token", "word", "ngram", "ambert"])
def test_every_strategy_and_objective_trains(similar_data, tmp_path, masking, objective):
    variant = "bert-coarse" if (VARIANT[masking], objective) == ("hybrid", "perm") else VARIANT[masking]
    settings = [f"model.variant={variant}", f"data.masking={masking}", f"model.objective={objective}"]
    steps = 30
    data = f"data.data={similar_data['shards']}"
    cfg = load_config("tiny", None, [*TINY, *settings, "model.sop=true", data, f"optim.max_steps={steps}"])
    last = train(cfg, str(tmp_path / "run"), vocab_dir=str(similar_data["vocab"]))
    records = run_records(tmp_path / "run")
    assert len(records) == steps and last["sop_loss"] > 0
    losses = [record["fine_loss"] + record["coarse_loss"] for record in records]  # the objective's, without SOP
    first, final = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    # MLM falls fast; PERT's pointer over the sequence's positions starts near log(length) and falls slowly at
    # this size (it must find the tokens out of place); test_pointer_head_fits_a_batch checks that it can learn
    # (over 30 steps it falls by about 0.1%, within the noise of the data order: only a fall is required)
    assert final < (1.0 if objective == "perm" else 0.9) * first, (masking, objective, variant, losses)


def test_pointer_head_fits_a_batch(similar_data):
    """PERT's objective on one collated batch of real shards: the pointer loss of a tiny model falls by half."""
    from trainer.data import pretraining_loader
    from trainer.masking import BatchShape, MaskingCollator
    from trainer.masking_strategies import Corruption
    from trainer.model import AmbertModel
    from vocab.artifact import read_artifact

    cfg = load_config("tiny", None, [*TINY, "model.variant=bert-fine", "data.masking=ngram", "model.objective=perm"])
    corruption = Corruption.from_config(str(similar_data["vocab"]), cfg)
    artifact = read_artifact(str(similar_data["vocab"]))
    batch = next(
        iter(
            pretraining_loader(
                str(similar_data["shards"]),
                expect_vocab_id=artifact["id"],
                collator=MaskingCollator(corruption, 1, 0, BatchShape.for_run(8, 64, "bert-fine")),
                batch_size=8,
                num_workers=0,
                shuffle_buffer=10,
                seed=1,
                epoch=0,
                rank=0,
                world_size=1,
            )
        )
    )
    chosen = batch.fine_labels != IGNORE
    assert chosen.any() and torch.all(batch.fine_mask[chosen])
    sizes = {"fine_vocab_size": artifact["sizes"]["fine"], "coarse_vocab_size": artifact["sizes"]["coarse"]}
    torch.manual_seed(0)
    model = AmbertModel(ModelConfig(**{**cfg.model.__dict__, **sizes, "dropout": 0.0, "attention_dropout": 0.0}))
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(60):
        optimizer.zero_grad()
        output = model(batch)
        output.loss.backward()
        optimizer.step()
        losses.append(float(output.fine_loss.detach()))
    assert output.fine_count == chosen.sum() and losses[-1] < 0.5 * losses[0], losses


def test_pointer_logits_never_point_at_padding():
    head = PointerHead(ModelConfig(hidden_size=8, num_heads=2))
    hidden = torch.randn(2, 5, 8)
    mask = torch.tensor([[True] * 5, [True, True, True, False, False]])
    where = torch.tensor([[False, True, False, False, False], [True, False, True, False, False]])
    logits = head(hidden, mask, where)
    assert logits.shape == (3, 5) and torch.all(logits[1:, 3:] < -1e30)
    targets = torch.full((2, 5), IGNORE)
    targets[where] = torch.tensor([3, 2, 0])
    loss, correct, count = head.loss(hidden, mask, targets)
    assert count == 3 and torch.isfinite(loss)


def test_settings_that_cannot_work_are_refused(similar_data, trainer_data, tmp_path):
    cfg = load_config("tiny", None, [*TINY, "model.variant=bert-fine"])
    assert masking_of(cfg) == "token" and masking_of(load_config("tiny", None, TINY)) == "ambert"
    assert masking_of(load_config("tiny", None, [*TINY, "data.masking=ambert-ngram"])) == "ambert-ngram"
    for overrides, message in [
        (["model.objective=perm", "model.variant=hybrid"], "perm with model.variant=hybrid"),
        (["model.objective=pert"], "model.objective 'pert' is not one of mlm, mac, perm"),
        (["data.masking=wwm"], "data.masking 'wwm' is not one of token, word, ngram, ambert, ambert-ngram, auto"),
    ]:
        with pytest.raises(ConfigError, match=message):
            load_config("tiny", None, [*TINY, *overrides])
    no_table = load_config("tiny", None, [*TINY, "model.objective=mac", f"data.data={trainer_data['zh_shards']}"])
    with pytest.raises(ArtifactError, match="needs similar words.*--similar-words"):
        train(no_table, str(tmp_path / "run"), vocab_dir=str(trainer_data["zh_vocab"]))
    assert not (tmp_path / "run" / "config.json").exists()  # refused before the run is written


def test_exports_leave_the_pointer_and_sop_heads_out():
    from trainer.hf_interop import _base_weights
    from trainer.model import AmbertModel

    cfg = ModelConfig(hidden_size=8, num_layers=1, num_heads=2, intermediate_size=16, fine_vocab_size=20)
    model = AmbertModel(ModelConfig(**{**cfg.__dict__, "coarse_vocab_size": 30, "objective": "perm", "sop": True}))
    names = set(model.state_dict())
    assert any(n.startswith("pointer_heads.") for n in names) and any(n.startswith("sop_head.") for n in names)
    kept = set(_base_weights(model))
    assert kept and not any(n.startswith(("pointer_heads.", "sop_head.", "mlm_heads.")) for n in kept)
