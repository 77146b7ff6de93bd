"""hf-ambert round trips within 1e-5 for every variant (ambert, combo, hybrid, bert-fine, bert-coarse): AutoModel
against AmbertModel.encode, and the fine-tuned heads (random, small models on the Chinese test artifact) through
AutoModelForSequenceClassification, AutoModelForMultipleChoice and AutoModelForQuestionAnswering, with inputs from
the export's own tokenize_ambert.py. The run → export → load path through the CLI is in finetune/test_loop.py."""

from __future__ import annotations

import gzip
import sys
from pathlib import Path

import pytest
import torch
from transformers import (
    AutoModel,
    AutoModelForMultipleChoice,
    AutoModelForQuestionAnswering,
    AutoModelForSequenceClassification,
)

from tests.vocab.conftest import build_zh
from trainer.config import ModelConfig
from trainer.finetune.loop import SequenceClassifier, heads_of
from trainer.finetune.readers import LabeledExample, encode_labeled
from trainer.finetune.span import SpanExtractor, span_heads
from trainer.hf_interop import write_hf_ambert
from trainer.masking import MaskingSpec, pad_examples
from trainer.model import AmbertModel
from vocab.multigrained import MultiGrainedTokenizer

REPO = Path(__file__).resolve().parents[2]
VARIANTS = ("ambert", "combo", "hybrid", "bert-fine", "bert-coarse")


@pytest.fixture(scope="module")
def zh(tmp_path_factory) -> dict:
    """The Chinese test artifact, its tokenizer, and a padded batch of bundled sentences (pairs as choice options)."""
    vocab = tmp_path_factory.mktemp("hf-ambert") / "vocab"
    build_zh(vocab)
    tokenizer = MultiGrainedTokenizer.from_artifact(str(vocab))
    with gzip.open(REPO / "data" / "zh" / "pku199801_sample.txt.gz", "rt", encoding="utf-8") as lines:
        texts = [line.strip()[:40] for _, line in zip(range(12), lines, strict=False) if line.strip()][:6]
    pairs = [LabeledExample(text=texts[0], label="0", text_b=texts[k]) for k in range(1, 5)]  # 2 × 2 options
    spec = MaskingSpec.from_artifact(str(vocab))
    return {
        "vocab": vocab,
        "texts": texts,
        "batch": pad_examples(encode_labeled(tokenizer, [LabeledExample(t, "0") for t in texts], 64), spec),
        "pairs": pad_examples(encode_labeled(tokenizer, pairs, 64), spec),
    }


def small(variant: str, seed: int) -> AmbertModel:
    torch.manual_seed(seed)
    model = AmbertModel(
        ModelConfig(
            variant=variant,
            fine_vocab_size=21128,
            coarse_vocab_size=21138,
            hidden_size=32,
            num_layers=2,
            num_heads=2,
            intermediate_size=64,
            max_position=64,
        )
    )
    with torch.no_grad():  # no LayerNorm at identity, no bias at zero
        for parameter in model.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.05)
    return model.eval()


def inputs_of(batch) -> dict[str, torch.Tensor]:
    return {
        "input_ids": batch.fine_ids,
        "attention_mask": batch.fine_mask.long(),
        "token_type_ids": batch.fine_type,
        "coarse_input_ids": batch.coarse_ids,
        "coarse_attention_mask": batch.coarse_mask.long(),
        "coarse_token_type_ids": batch.coarse_type,
    }


def record(task: str, head: str) -> dict:
    return {"task": task, "head": head, "labels": ["a", "b", "c"], "finetune": {"dropout": 0.1}, "threshold": 0.5}


@pytest.mark.parametrize("variant", VARIANTS)
def test_automodel_equals_encode_with_the_exports_own_tokenizer(zh, tmp_path, variant):
    model = small(variant, seed=VARIANTS.index(variant))
    out = tmp_path / f"hf-{variant}"
    assert write_hf_ambert(model, None, str(zh["vocab"]), str(out)) == "AmbertModel"
    sys.path.insert(0, str(out))
    try:
        from tokenize_ambert import AmbertTokenizer
    finally:
        sys.path.remove(str(out))
    inputs = AmbertTokenizer(str(out))(zh["texts"])
    batch = zh["batch"]
    for name, tensor in inputs_of(batch).items():  # the export's tokenizer gives our batch
        assert torch.equal(inputs[name], tensor), name
    assert torch.equal(inputs["align"], batch.align)
    theirs = AutoModel.from_pretrained(str(out), trust_remote_code=True).eval()
    with torch.no_grad():
        got = theirs(**inputs)
        expected = model.encode(
            *(getattr(batch, f"{s}_{p}") for s in ("fine", "coarse") for p in ("ids", "type", "mask"))
        )
    for side in model.sides if variant != "hybrid" else ("fine", "coarse"):
        keep = getattr(batch, f"{side}_mask")[..., None]
        gap = (getattr(expected, f"{side}_hidden") - got[f"{side}_last_hidden_state"]).mul(keep).abs().max()
        assert gap < 1e-5, side
        assert (getattr(expected, f"{side}_pooled") - got[f"{side}_pooler_output"]).abs().max() < 1e-5, side
    assert sorted(p.name for p in out.iterdir()) == [
        "ambert_encoder.py",
        "config.json",
        "model.safetensors",
        "modeling_ambert.py",
        "tokenize_ambert.py",
        "tokenizer.json",
        "vocab",
        "vocab.txt",
    ]


@pytest.mark.parametrize("variant", VARIANTS)
def test_finetuned_heads_load_with_their_auto_classes_and_equal_ours(zh, tmp_path, variant):
    cfg = small(variant, 0).cfg
    for head in heads_of(variant) if variant == "ambert" else heads_of(variant)[-1:]:  # ambert: AMBERT-Single too
        classifier = SequenceClassifier(small(variant, 1), cfg, 3, 0.1).eval()
        out = tmp_path / f"cls-{variant}-{head}"
        assert write_hf_ambert(classifier, record("classify", head), str(zh["vocab"]), str(out)).endswith(
            "Classification"
        )
        loaded = AutoModelForSequenceClassification.from_pretrained(str(out), trust_remote_code=True).eval()
        with torch.no_grad():
            gap = (classifier(zh["batch"])[head] - loaded(**inputs_of(zh["batch"])).logits).abs().max()
        assert gap < 1e-5, head
        assert loaded.config.id2label == {0: "a", 1: "b", 2: "c"}

    head = heads_of(variant)[-1]
    chooser = SequenceClassifier(small(variant, 2), cfg, 1, 0.1).eval()
    out = tmp_path / f"choice-{variant}"
    assert write_hf_ambert(chooser, record("choice", head), str(zh["vocab"]), str(out)) == "AmbertForMultipleChoice"
    loaded = AutoModelForMultipleChoice.from_pretrained(str(out), trust_remote_code=True).eval()
    pairs = zh["pairs"]
    with torch.no_grad():
        ours = chooser(pairs)[head].view(2, 2)
        theirs = loaded(**{name: t.view(2, 2, -1) for name, t in inputs_of(pairs).items()}).logits
    assert theirs.shape == (2, 2) and (ours - theirs).abs().max() < 1e-5

    head = span_heads(variant)[-1]
    spans = SpanExtractor(small(variant, 3), cfg).eval()
    out = tmp_path / f"span-{variant}"
    assert write_hf_ambert(spans, record("span", head), str(zh["vocab"]), str(out)) == "AmbertForQuestionAnswering"
    loaded = AutoModelForQuestionAnswering.from_pretrained(str(out), trust_remote_code=True).eval()
    assert loaded.config.null_score_threshold == 0.5
    with torch.no_grad():
        ours = spans(pairs)[head]
        theirs = loaded(**inputs_of(pairs), align=pairs.align)
    keep = pairs.fine_mask
    assert (ours[..., 0] - theirs.start_logits)[keep].abs().max() < 1e-5
    assert (ours[..., 1] - theirs.end_logits)[keep].abs().max() < 1e-5
    assert torch.equal(theirs.start_logits[~keep], ours[..., 0][~keep])  # -1e4 at padding
