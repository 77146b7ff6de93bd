"""Hugging Face interop: start AMBERT from a BERT checkpoint, export the fine encoder as a transformers BertModel.

    counts = init_from_hf(model, "path/to/bert", fine_vocab, coarse_vocab, "vocab/fine/tokenizer.json")
    export_hf(model, "out/hf-bert", "vocab/fine/vocab.txt", "vocab/fine/tokenizer.json")
Encoder weights go to every encoder of the variant; fine word vectors are copied by token string; a coarse token
missing from the BERT vocabulary starts as the mean of its fine pieces' vectors.
"""

from __future__ import annotations

import json
import os
import shutil

import torch

from trainer.model import AmbertModel, Encoder

_LAYER = {  # our name inside encoder.layers.{i} → transformers' inside encoder.layer.{i}
    "attention.query": "attention.self.query", "attention.key": "attention.self.key",
    "attention.value": "attention.self.value", "attention_output": "attention.output.dense",
    "attention_norm": "attention.output.LayerNorm", "intermediate": "intermediate.dense",
    "output": "output.dense", "output_norm": "output.LayerNorm",
}
_CONFIG_FIELDS = {"hidden_size": "hidden_size", "num_hidden_layers": "num_layers",
                  "num_attention_heads": "num_heads", "intermediate_size": "intermediate_size",
                  "max_position_embeddings": "max_position", "type_vocab_size": "type_vocab_size"}


def encoder_names(encoder: Encoder) -> dict[str, torch.Tensor]:
    """An Encoder's tensors under BertModel names (without the word embeddings)."""
    names = {
        "embeddings.position_embeddings.weight": encoder.embeddings.position_embeddings.weight,
        "embeddings.token_type_embeddings.weight": encoder.embeddings.token_type_embeddings.weight,
        "embeddings.LayerNorm.weight": encoder.embeddings.LayerNorm.weight,
        "embeddings.LayerNorm.bias": encoder.embeddings.LayerNorm.bias,
        "pooler.dense.weight": encoder.pooler.weight, "pooler.dense.bias": encoder.pooler.bias,
    }
    for index, layer in enumerate(encoder.layers):
        for ours, theirs in _LAYER.items():
            module = layer.get_submodule(ours)
            for kind in ("weight", "bias"):
                names[f"encoder.layer.{index}.{theirs}.{kind}"] = getattr(module, kind)
    return names


def _fine_encoder(model: AmbertModel) -> Encoder:
    if "fine" not in model.sides:
        raise ValueError(f"a {model.cfg.variant} model has no fine-grained encoder to export")
    return model.encoder_of("fine")


def hf_state_dict(model: AmbertModel) -> dict[str, torch.Tensor]:
    """The fine path of `model` as a transformers BertModel state dict."""
    names = encoder_names(_fine_encoder(model))
    names["embeddings.word_embeddings.weight"] = model.word_embeddings["fine"].weight
    return {name: tensor.detach().clone().contiguous() for name, tensor in names.items()}


def hf_config(model: AmbertModel) -> dict:
    cfg = model.cfg
    return {"model_type": "bert", "architectures": ["BertModel"], "hidden_act": "gelu",
            "vocab_size": cfg.fine_vocab_size, "hidden_size": cfg.hidden_size, "num_hidden_layers": cfg.num_layers,
            "num_attention_heads": cfg.num_heads, "intermediate_size": cfg.intermediate_size,
            "max_position_embeddings": cfg.max_position, "type_vocab_size": cfg.type_vocab_size,
            "layer_norm_eps": cfg.layer_norm_eps, "hidden_dropout_prob": cfg.dropout,
            "attention_probs_dropout_prob": cfg.attention_dropout, "initializer_range": cfg.initializer_range,
            "pad_token_id": cfg.pad_id, "position_embedding_type": "absolute"}


def read_hf_checkpoint(hf_dir: str) -> tuple[dict, dict[str, torch.Tensor], list[str]]:
    """(config.json, tensors without a "bert." prefix, vocab.txt lines) of a Hugging Face BERT directory."""
    from safetensors.torch import load_file

    from vocab.artifact import read_vocab_lines

    paths = {name: os.path.join(hf_dir, name) for name in ("config.json", "vocab.txt")}
    for path in paths.values():
        if not os.path.exists(path):
            raise ValueError(f"{path} is missing: --init-from needs a Hugging Face BERT directory "
                             "(config.json, model.safetensors or pytorch_model.bin, vocab.txt)")
    with open(paths["config.json"], encoding="utf-8") as handle:
        config = json.load(handle)
    if os.path.exists(os.path.join(hf_dir, "model.safetensors")):
        tensors = load_file(os.path.join(hf_dir, "model.safetensors"))
    elif os.path.exists(os.path.join(hf_dir, "pytorch_model.bin")):
        tensors = torch.load(os.path.join(hf_dir, "pytorch_model.bin"), map_location="cpu", weights_only=True)
    else:
        raise ValueError(f"{hf_dir} has neither model.safetensors nor pytorch_model.bin")
    tensors = {name.removeprefix("bert."): tensor for name, tensor in tensors.items()}
    return config, tensors, read_vocab_lines(paths["vocab.txt"])


@torch.no_grad()
def init_from_hf(model: AmbertModel, hf_dir: str, fine_vocab: list[str], coarse_vocab: list[str],
                 fine_tokenizer_json: str) -> dict:
    """Load a Hugging Face BERT into every encoder of `model` and both word tables; returns counts."""
    from tokenizers import Tokenizer

    config, tensors, hf_vocab = read_hf_checkpoint(hf_dir)
    for theirs, ours in _CONFIG_FIELDS.items():
        if config.get(theirs) != getattr(model.cfg, ours):
            raise ValueError(f"{hf_dir}/config.json has {theirs}={config.get(theirs)} but the model has "
                             f"model.{ours}={getattr(model.cfg, ours)}: set model.{ours}={config.get(theirs)}")
    encoders = {id(model.encoder_of(side)): model.encoder_of(side) for side in model.sides}.values()
    for encoder in encoders:
        for name, target in encoder_names(encoder).items():
            if name not in tensors:
                raise ValueError(f"{hf_dir} lacks tensor {name}: not a BERT checkpoint")
            target.copy_(tensors[name])
    table = tensors["embeddings.word_embeddings.weight"]
    hf_index = {token: i for i, token in enumerate(hf_vocab)}
    counts = {"fine_copied": 0, "fine_missing": 0, "coarse_copied": 0, "coarse_from_pieces": 0, "coarse_missing": 0}
    if "fine" in model.sides:
        weight = model.word_embeddings["fine"].weight
        for row, token in enumerate(fine_vocab):
            if token in hf_index:
                weight[row] = table[hf_index[token]]
                counts["fine_copied"] += 1
            else:
                counts["fine_missing"] += 1
    if "coarse" in model.sides:
        pieces_of = Tokenizer.from_file(fine_tokenizer_json)
        weight = model.word_embeddings["coarse"].weight
        for row, token in enumerate(coarse_vocab):
            if token in hf_index:
                weight[row] = table[hf_index[token]]
                counts["coarse_copied"] += 1
                continue
            pieces = [hf_index[p] for p in pieces_of.encode(token, add_special_tokens=False).tokens if p in hf_index]
            if pieces:
                weight[row] = table[pieces].mean(0)
                counts["coarse_from_pieces"] += 1
            else:
                counts["coarse_missing"] += 1
    transform = {"cls.predictions.transform.dense.weight": "dense.weight",
                 "cls.predictions.transform.dense.bias": "dense.bias",
                 "cls.predictions.transform.LayerNorm.weight": "LayerNorm.weight",
                 "cls.predictions.transform.LayerNorm.bias": "LayerNorm.bias"}
    if all(name in tensors for name in transform):
        for head in model.mlm_heads.values():
            for theirs, ours in transform.items():
                head.get_parameter(ours).copy_(tensors[theirs])
        counts["mlm_transform"] = 1
    return counts


def export_hf(model: AmbertModel, out_dir: str, fine_vocab_file: str, fine_tokenizer_json: str) -> None:
    """The fine encoder as a transformers BertModel directory (config.json, model.safetensors, vocab.txt,
    tokenizer.json), written beside out_dir and moved into place. For hybrid it is the encoder run on fine only."""
    from safetensors.torch import save_file

    weights = hf_state_dict(model)
    staging = out_dir.rstrip("/") + ".partial"
    shutil.rmtree(staging, ignore_errors=True)
    os.makedirs(staging)
    save_file(weights, os.path.join(staging, "model.safetensors"), metadata={"format": "pt"})
    with open(os.path.join(staging, "config.json"), "w", encoding="utf-8") as handle:
        json.dump(hf_config(model), handle, indent=2)
    shutil.copy(fine_vocab_file, os.path.join(staging, "vocab.txt"))
    shutil.copy(fine_tokenizer_json, os.path.join(staging, "tokenizer.json"))
    shutil.rmtree(out_dir, ignore_errors=True)
    os.replace(staging, out_dir)
