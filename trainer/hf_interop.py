"""Hugging Face interop: start AMBERT from a BERT checkpoint, export the fine encoder as a transformers BertModel.

    counts = init_from_hf(model, "path/to/bert", fine_vocab, coarse_vocab, "vocab/fine/tokenizer.json")
    export_hf(model, "out/hf-bert", "vocab/fine/vocab.txt", "vocab/fine/tokenizer.json")
Encoder weights go to every encoder of the variant; fine word vectors are copied by token string; a coarse token
missing from the BERT vocabulary starts as the mean of its fine pieces' vectors. A checkpoint of another geometry is
refused with an error naming the field.
"""

from __future__ import annotations

import json
import os
import shutil

import torch

from trainer.ambert_encoder import Encoder
from trainer.model import AmbertModel

_LAYER = {  # our name inside encoder.layers.{i} → transformers' inside encoder.layer.{i}
    "attention.query": "attention.self.query",
    "attention.key": "attention.self.key",
    "attention.value": "attention.self.value",
    "attention_output": "attention.output.dense",
    "attention_norm": "attention.output.LayerNorm",
    "intermediate": "intermediate.dense",
    "output": "output.dense",
    "output_norm": "output.LayerNorm",
}
HF_CONFIG_FIELDS = {  # a transformers BertConfig field → ours (model.*): the encoder's geometry
    "hidden_size": "hidden_size",
    "num_hidden_layers": "num_layers",
    "num_attention_heads": "num_heads",
    "intermediate_size": "intermediate_size",
    "max_position_embeddings": "max_position",
    "type_vocab_size": "type_vocab_size",
}


def encoder_names(encoder: Encoder) -> dict[str, torch.Tensor]:
    """An Encoder's tensors under BertModel names (without the word embeddings)."""
    names = {
        "embeddings.position_embeddings.weight": encoder.embeddings.position_embeddings.weight,
        "embeddings.token_type_embeddings.weight": encoder.embeddings.token_type_embeddings.weight,
        "embeddings.LayerNorm.weight": encoder.embeddings.LayerNorm.weight,
        "embeddings.LayerNorm.bias": encoder.embeddings.LayerNorm.bias,
        "pooler.dense.weight": encoder.pooler.weight,
        "pooler.dense.bias": encoder.pooler.bias,
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
    return {name: tensor.detach().to("cpu", copy=True).contiguous() for name, tensor in names.items()}


def hf_config(model: AmbertModel) -> dict:
    cfg = model.cfg
    return {
        "model_type": "bert",
        "architectures": ["BertModel"],
        "hidden_act": "gelu",
        "vocab_size": cfg.fine_vocab_size,
        "hidden_size": cfg.hidden_size,
        "num_hidden_layers": cfg.num_layers,
        "num_attention_heads": cfg.num_heads,
        "intermediate_size": cfg.intermediate_size,
        "max_position_embeddings": cfg.max_position,
        "type_vocab_size": cfg.type_vocab_size,
        "layer_norm_eps": cfg.layer_norm_eps,
        "hidden_dropout_prob": cfg.dropout,
        "attention_probs_dropout_prob": cfg.attention_dropout,
        "initializer_range": cfg.initializer_range,
        "pad_token_id": cfg.pad_id,
        "position_embedding_type": "absolute",
    }


def read_hf_checkpoint(hf_dir: str) -> tuple[dict, dict[str, torch.Tensor], list[str]]:
    """(config.json, tensors without a "bert." prefix, vocab.txt lines) of a Hugging Face BERT directory."""
    from safetensors.torch import load_file

    from vocab.artifact import read_vocab_lines

    paths = {name: os.path.join(hf_dir, name) for name in ("config.json", "vocab.txt")}
    for path in paths.values():
        if not os.path.exists(path):
            raise ValueError(
                f"{path} is missing: --init-from needs a Hugging Face BERT directory "
                "(config.json, model.safetensors or pytorch_model.bin, vocab.txt)"
            )
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


def _check_geometry(
    model: AmbertModel, hf_dir: str, config: dict, fine_vocab: list[str], coarse_vocab: list[str]
) -> None:
    for theirs, ours in HF_CONFIG_FIELDS.items():
        if theirs not in config:
            raise ValueError(f"{hf_dir}/config.json has no {theirs}: not a BERT config")
        if config[theirs] != getattr(model.cfg, ours):
            raise ValueError(
                f"{hf_dir}/config.json has {theirs}={config[theirs]} but the model has "
                f"model.{ours}={getattr(model.cfg, ours)}: set model.{ours}={config[theirs]}"
            )
    for name, ours in (("hidden_act", "gelu"), ("position_embedding_type", "absolute")):
        if config.get(name, ours) != ours:
            raise ValueError(f"{hf_dir}/config.json has {name}={config[name]!r}; AMBERT only has {name}={ours!r}")
    for side, vocab in (("fine", fine_vocab), ("coarse", coarse_vocab)):
        size = getattr(model.cfg, f"{side}_vocab_size")
        if side in model.sides and len(vocab) != size:
            raise ValueError(
                f"the {side} vocabulary has {len(vocab)} tokens but model.{side}_vocab_size is {size}: "
                "pass the vocab files of the artifact the model was built for"
            )


def _hf_rows(vocab: list[str], hf_index: dict[str, int], pieces_of=None) -> dict[int, list[int]]:
    """{our row: the HF rows it starts from}: the same token string, else (with `pieces_of`) its fine pieces."""
    sources = {}
    for row, token in enumerate(vocab):
        if token in hf_index:
            sources[row] = [hf_index[token]]
        elif pieces_of is not None:
            pieces = [hf_index[p] for p in pieces_of.encode(token, add_special_tokens=False).tokens if p in hf_index]
            if pieces:
                sources[row] = pieces
    return sources


def _mean_rows(source: torch.Tensor, rows: dict[int, list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """(our row indices, the mean of each one's source rows), with one index_add rather than a loop over rows."""
    ours = torch.tensor(list(rows), dtype=torch.long)
    slot = torch.tensor([k for k, hf_rows in enumerate(rows.values()) for _ in hf_rows], dtype=torch.long)
    theirs = torch.tensor([i for hf_rows in rows.values() for i in hf_rows], dtype=torch.long)
    sums = torch.zeros(len(rows), *source.shape[1:]).index_add_(0, slot, source[theirs].float())
    sizes = torch.tensor([len(hf_rows) for hf_rows in rows.values()], dtype=torch.float)
    return ours, sums / sizes.view(-1, *[1] * (source.dim() - 1))  # (N, H) or (N,)


@torch.no_grad()
def init_from_hf(
    model: AmbertModel, hf_dir: str, fine_vocab: list[str], coarse_vocab: list[str], fine_tokenizer_json: str
) -> dict:
    """Load a Hugging Face BERT into every encoder of `model`, both word tables and the MLM heads; returns counts.

    Word rows (and, from a BertForMaskedLM checkpoint, MLM decoder biases) are copied by token string; a coarse token
    missing from the BERT vocabulary starts as the mean of the rows of its fine pieces; other rows keep their init."""
    from tokenizers import Tokenizer

    config, tensors, hf_vocab = read_hf_checkpoint(hf_dir)
    _check_geometry(model, hf_dir, config, fine_vocab, coarse_vocab)
    for name in [*encoder_names(model.encoder_of(model.sides[0])), "embeddings.word_embeddings.weight"]:
        if name not in tensors and not name.startswith("pooler."):  # BertForMaskedLM has no pooler: it keeps init
            raise ValueError(f"{hf_dir} lacks tensor {name}: not a BERT checkpoint")
    for encoder in {id(model.encoder_of(side)): model.encoder_of(side) for side in model.sides}.values():
        for name, target in encoder_names(encoder).items():
            if name in tensors:
                target.copy_(tensors[name])

    hf_index = {token: i for i, token in enumerate(hf_vocab)}
    sources = {}
    if "fine" in model.sides:
        sources["fine"] = _hf_rows(fine_vocab, hf_index)
    if "coarse" in model.sides:
        pieces_of = Tokenizer.from_file(fine_tokenizer_json)
        pieces_of.no_padding()  # a tokenizer.json may pad every encoding to a fixed length with [PAD] pieces
        pieces_of.no_truncation()
        sources["coarse"] = _hf_rows(coarse_vocab, hf_index, pieces_of)
    table, bias = tensors["embeddings.word_embeddings.weight"], tensors.get("cls.predictions.bias")
    vocabs, counts = {"fine": fine_vocab, "coarse": coarse_vocab}, {}
    for side, rows in sources.items():
        ours, start = _mean_rows(table, rows)
        model.word_embeddings[side].weight[ours] = start
        if bias is not None:  # BertForMaskedLM's decoder bias, row by row like the word vectors
            ours, start = _mean_rows(bias, rows)
            model.mlm_heads[side].bias[ours] = start
        copied = sum(vocabs[side][row] in hf_index for row in rows)
        counts[f"{side}_copied"], counts[f"{side}_missing"] = copied, len(vocabs[side]) - len(rows)
        if side == "coarse":
            counts["coarse_from_pieces"] = len(rows) - copied

    transform = {
        "cls.predictions.transform.dense.weight": "dense.weight",
        "cls.predictions.transform.dense.bias": "dense.bias",
        "cls.predictions.transform.LayerNorm.weight": "LayerNorm.weight",
        "cls.predictions.transform.LayerNorm.bias": "LayerNorm.bias",
    }
    if all(name in tensors for name in transform):  # a BertForMaskedLM checkpoint
        for head in model.mlm_heads.values():
            for theirs, ours in transform.items():
                head.get_parameter(ours).copy_(tensors[theirs])
        counts["mlm_transform"] = 1
    return counts


def export_hf(model: AmbertModel, out_dir: str, fine_vocab_file: str, fine_tokenizer_json: str) -> None:
    """The fine encoder as a transformers BertModel directory (config.json, model.safetensors, vocab.txt,
    tokenizer.json), written beside out_dir and moved into place.

    hybrid exports its joint encoder as a fine-only BertModel: it was pre-trained on [fine ; coarse], so its outputs
    on fine tokens alone are not those it gave with the coarse sequence beside them."""
    from safetensors.torch import save_file

    from trainer.staged_output import staged_directory

    weights = hf_state_dict(model)
    with staged_directory(out_dir) as staging:
        save_file(weights, os.path.join(staging, "model.safetensors"), metadata={"format": "pt"})
        with open(os.path.join(staging, "config.json"), "w", encoding="utf-8") as handle:
            json.dump(hf_config(model), handle, indent=2)
        shutil.copy(fine_vocab_file, os.path.join(staging, "vocab.txt"))
        shutil.copy(fine_tokenizer_json, os.path.join(staging, "tokenizer.json"))


EXPORTED_CODE = {  # our module → its name in an hf-ambert directory (torch / transformers / tokenizers only)
    "ambert_encoder.py": "ambert_encoder.py",
    "hf_ambert_modeling.py": "modeling_ambert.py",
    "hf_ambert_tokenize.py": "tokenize_ambert.py",
}
_AMBERT_CONFIG = (
    "variant",
    "fine_vocab_size",
    "coarse_vocab_size",
    "hidden_size",
    "num_layers",
    "num_heads",
    "intermediate_size",
    "max_position",
    "type_vocab_size",
    "dropout",
    "attention_dropout",
    "layer_norm_eps",
    "initializer_range",
    "pad_id",
)


ARCHITECTURES = {  # finetune.json's task → the modeling_ambert class and the transformers Auto class loading it
    None: ("AmbertModel", "AutoModel"),
    "classify": ("AmbertForSequenceClassification", "AutoModelForSequenceClassification"),
    "regress": ("AmbertForSequenceClassification", "AutoModelForSequenceClassification"),
    "choice": ("AmbertForMultipleChoice", "AutoModelForMultipleChoice"),
    "span": ("AmbertForQuestionAnswering", "AutoModelForQuestionAnswering"),
}


def export_hf_ambert(source: str, out_dir: str) -> str:
    """The full AMBERT (both word embeddings, the encoder(s); a fine-tuned model's heads too) as a transformers
    directory loading with AutoModel / AutoModelForSequenceClassification / AutoModelForMultipleChoice /
    AutoModelForQuestionAnswering.from_pretrained(out_dir, trust_remote_code=True). `source`: a run, one of its
    checkpoints, or an `ambert finetune` output (classify, regress, choice, span). Returns the architecture written;
    write_hf_ambert lists the files."""
    from trainer.checkpoint import load_run_model

    finetuned = os.path.join(source, "finetune.json")
    if not os.path.exists(finetuned):
        model, run_dir, _ = load_run_model(source)
        return write_hf_ambert(model, None, os.path.join(run_dir, "vocab"), out_dir)
    with open(finetuned, encoding="utf-8") as handle:
        task = json.load(handle).get("task", "classify")
    if task == "span":
        from trainer.finetune.span import load_span_model

        tuned, record = load_span_model(source)
    else:
        from trainer.finetune.loop import load_finetuned

        tuned, record = load_finetuned(source)
    return write_hf_ambert(tuned, record, os.path.join(source, "vocab"), out_dir)


def write_hf_ambert(model, record: dict | None, vocab_dir: str, out_dir: str) -> str:
    """Write `model` (an AmbertModel; or with its finetune.json `record`, a fine-tuned SequenceClassifier or
    SpanExtractor) to out_dir: config.json with auto_map, modeling_ambert.py (trainer/hf_ambert_modeling.py) and the
    ambert_encoder.py it imports, tokenize_ambert.py (text → both id sequences without our package:
    trainer/hf_ambert_tokenize.py), model.safetensors, vocab/ (`vocab_dir`: both vocabularies and the multi-grained
    tokenizer's files) and the fine vocab.txt / tokenizer.json at the top. Returns the architecture written."""
    from safetensors.torch import save_file

    from trainer.staged_output import staged_directory

    task = None if record is None else record.get("task", "classify")
    architecture, _ = ARCHITECTURES[task]
    extra: dict = {}
    if task is None:
        encoder, weights = model, _base_weights(model)
    else:
        encoder = model.encoder
        weights = {f"ambert.{name}": tensor for name, tensor in _base_weights(encoder).items()}
        heads = "qa_outputs" if task == "span" else "classifiers"
        weights.update({f"{heads}.{name}": t for name, t in getattr(model, heads).state_dict().items()})
        extra = {"prediction_head": record["head"], "classifier_dropout": record["finetune"]["dropout"]}
        if task in ("classify", "regress"):
            labels = record["labels"] or ["score"]  # regress: one output
            extra.update(id2label=dict(enumerate(labels)), label2id={label: i for i, label in enumerate(labels)})
        if task == "regress":
            extra["problem_type"] = "regression"
        if task == "span" and record.get("threshold") is not None:
            extra["null_score_threshold"] = record["threshold"]  # SQuAD 2.0: tuned on dev
    auto_map = {"AutoConfig": "modeling_ambert.AmbertConfig", "AutoModel": "modeling_ambert.AmbertModel"}
    if task is not None:
        auto_map[ARCHITECTURES[task][1]] = f"modeling_ambert.{architecture}"
    config = {
        "model_type": "ambert",
        "architectures": [architecture],
        "auto_map": auto_map,
        **{name: getattr(encoder.cfg, name) for name in _AMBERT_CONFIG},
        **extra,
    }
    with staged_directory(out_dir) as staging:
        save_file(
            {name: tensor.detach().to("cpu").contiguous() for name, tensor in weights.items()},
            os.path.join(staging, "model.safetensors"),
            metadata={"format": "pt"},
        )
        with open(os.path.join(staging, "config.json"), "w", encoding="utf-8") as handle:
            json.dump(config, handle, indent=2, ensure_ascii=False)
        for ours, theirs in EXPORTED_CODE.items():
            shutil.copy(os.path.join(os.path.dirname(__file__), ours), os.path.join(staging, theirs))
        shutil.copytree(vocab_dir, os.path.join(staging, "vocab"))
        for name in ("vocab.txt", "tokenizer.json"):
            if os.path.exists(os.path.join(vocab_dir, "fine", name)):
                shutil.copy(os.path.join(vocab_dir, "fine", name), os.path.join(staging, name))
    return architecture


def _base_weights(model: AmbertModel) -> dict[str, torch.Tensor]:
    """Word embeddings and encoder(s) of `model` (no pre-training heads: MLM, PERT pointer, NSP, SOP), under the
    names of modeling_ambert."""
    heads = ("mlm_heads.", "pointer_heads.", "nsp_head.", "sop_head.")
    return {name: tensor for name, tensor in model.state_dict().items() if not name.startswith(heads)}
