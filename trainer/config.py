"""Configuration of a training run: nested frozen dataclasses with defaults, presets, files and overrides.

    cfg = load_config(preset="tiny", config_file=None, overrides=["optim.lr=3e-4", "model.variant=combo"])
    save_config(cfg, "run/config.json"); cfg == read_config("run/config.json")

Nothing reads globals: the model, loader and loop each get their part of one TrainConfig.
Presets: `tiny` (CPU tests and the demo) and `base` (the paper's Table 10: 12 layers, 768 hidden).
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
import typing
from dataclasses import dataclass, field

VARIANTS = ("ambert", "combo", "hybrid", "bert-fine", "bert-coarse")
MASKINGS = ("token", "word", "ngram", "ambert", "ambert-ngram")  # trainer.masking_strategies.STRATEGIES
OBJECTIVES = ("mlm", "mac", "perm")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")


class ConfigError(ValueError):
    """A configuration that cannot be used (names the field and what is allowed)."""


@dataclass(frozen=True)
class ModelConfig:
    """The encoder and its embeddings. Vocabulary sizes come from the vocab artifact of the shard set."""

    variant: str = field(
        default="ambert", metadata={"help": "ambert | combo | hybrid | bert-fine | bert-coarse (paper section 4)."}
    )
    fine_vocab_size: int = field(default=30522, metadata={"help": "Fine vocabulary size; set from the vocab artifact."})
    coarse_vocab_size: int = field(
        default=30522, metadata={"help": "Coarse vocabulary size; set from the vocab artifact."}
    )
    hidden_size: int = field(default=768, metadata={"help": "Width of the encoder (BERT-base 768)."})
    num_layers: int = field(default=12, metadata={"help": "Transformer layers."})
    num_heads: int = field(default=12, metadata={"help": "Attention heads; hidden_size must be a multiple."})
    intermediate_size: int = field(default=3072, metadata={"help": "Width of the feed-forward layer."})
    max_position: int = field(
        default=512, metadata={"help": "Position embeddings: the longest sequence the model reads."}
    )
    type_vocab_size: int = field(default=2, metadata={"help": "Token types (segment A/B)."})
    dropout: float = field(default=0.1, metadata={"help": "Dropout of embeddings and layer outputs."})
    attention_dropout: float = field(default=0.1, metadata={"help": "Dropout of attention probabilities."})
    layer_norm_eps: float = field(default=1e-12, metadata={"help": "LayerNorm epsilon."})
    initializer_range: float = field(default=0.02, metadata={"help": "Standard deviation of the initial weights."})
    nsp: bool = field(
        default=False, metadata={"help": "Next-sentence prediction head (the paper finds NSP not essential)."}
    )
    objective: str = field(
        default="mlm",
        metadata={
            "help": "mlm (BERT: [MASK]/random/kept 80/10/10, predict the originals) | mac (MacBERT, MLM as "
            "correction: similar word/random word/kept 80/10/10, no [MASK]; needs the artifact's similar.tsv) | "
            "perm (PERT: the chosen positions are permuted among themselves, 10% kept; a pointer head predicts "
            "where each token came from; not with hybrid)."
        },
    )
    sop: bool = field(
        default=False,
        metadata={
            "help": "Sentence-order prediction head (ALBERT, MacBERT): half of the actual-next pairs are read as "
            "[CLS] B [SEP] A [SEP]; beside model.nsp or instead of it."
        },
    )
    pad_id: int = field(default=0, metadata={"help": "Id of [PAD] on both sides."})
    gradient_checkpointing: bool = field(
        default=False, metadata={"help": "Recompute each layer in backward: less activation memory, ~30% more compute."}
    )


@dataclass(frozen=True)
class DataConfig:
    """Where examples come from and how they are masked and batched (per rank)."""

    data: str = field(default="", metadata={"help": "Shard set directory or fsspec URL (same as --data)."})
    eval_data: str = field(
        default="",
        metadata={
            "help": "Held-out shard set of the same vocab (same as --eval-data), evaluated every run.eval_every "
            "steps with fixed masks; empty: none. May change on resume."
        },
    )
    batch_size: int = field(default=32, metadata={"help": "Examples per rank per step, before accumulation."})
    num_workers: int = field(
        default=1, metadata={"help": "DataLoader worker processes per rank (0: the main process reads)."}
    )
    shuffle_buffer: int = field(default=1000, metadata={"help": "Examples held for shuffling in each worker."})
    resampled: bool = field(
        default=False, metadata={"help": "Endless sampling of shards with replacement instead of epochs."}
    )
    strict: bool = field(
        default=False, metadata={"help": "A corrupt shard stops the run (default: skipped with a warning and counted)."}
    )
    read_retries: int = field(
        default=5,
        metadata={"help": "Storage errors (OSError, timeouts) retried in a row on one shard before the run stops."},
    )
    retry_backoff: float = field(
        default=1.0, metadata={"help": "Seconds before the first retry of a storage error; doubled each retry."}
    )
    masking: str = field(
        default="auto",
        metadata={
            "help": "Which units are chosen: token (BERT: fine tokens) | word (whole-word masking) | ngram (n = 1..4 "
            "words, p 0.4/0.3/0.2/0.1: MacBERT, PERT) | ambert (coarse tokens and their fine tokens) | ambert-ngram "
            "(n-grams of coarse tokens, same n) | auto (token for bert-fine, ambert for the other variants)."
        },
    )
    mask_prob: float = field(
        default=0.15,
        metadata={"help": "Share of the tokens chosen as targets (of the coarse tokens with ambert masking)."},
    )
    pad_to: tuple[int, ...] = field(
        default=(),
        metadata={
            "help": "Lengths each side is padded to in combo and bert-* (the smallest that fits), as a JSON list; "
            "one compiled graph each. Empty: multiples of max_seq_len/8 up to max_seq_len."
        },
    )
    packed_rows: tuple[int, ...] = field(
        default=(),
        metadata={
            "help": "Row counts of packed batches in ambert and hybrid (the smallest that fits the batch's "
            "sequences, first-fit into rows of max_seq_len, hybrid 2*max_seq_len), as a JSON list; one compiled "
            "graph each (a few are used). Empty: multiples of batch_size/16 up to 2*batch_size "
            "(hybrid: batch_size/32 up to batch_size)."
        },
    )
    max_predictions: int = field(
        default=0,
        metadata={
            "help": "Masked positions predicted per example and side (a static budget; more are left unmasked and "
            "counted as capped). 0: Google BERT's, 20 at max_seq_len 128, 80 at 512 (5/32 of it)."
        },
    )
    prediction_slots: tuple[int, ...] = field(
        default=(),
        metadata={
            "help": "Counts of the positions each side of a batch predicts (its masked positions gathered into the "
            "smallest that holds them; only they are projected onto the vocabulary), as a JSON list; one compiled "
            "graph each (a few are used). Empty: multiples of batch_size*max_predictions/16 up to "
            "batch_size*max_predictions."
        },
    )


@dataclass(frozen=True)
class OptimConfig:
    """AdamW with linear warm-up and linear decay to zero at max_steps."""

    lr: float = field(default=1e-4, metadata={"help": "Peak learning rate."})
    weight_decay: float = field(
        default=0.01, metadata={"help": "AdamW weight decay (not on biases and LayerNorm weights)."}
    )
    betas: tuple[float, float] = field(
        default=(0.9, 0.999), metadata={"help": "AdamW betas, as a JSON list: [0.9,0.999]."}
    )
    eps: float = field(default=1e-6, metadata={"help": "AdamW epsilon."})
    warmup_steps: int = field(default=10_000, metadata={"help": "Steps of linear warm-up to the peak learning rate."})
    max_steps: int = field(
        default=1_000_000, metadata={"help": "Optimizer steps of the run (the learning rate reaches zero there)."}
    )
    grad_clip: float = field(default=1.0, metadata={"help": "Clip the global gradient norm to this."})
    grad_accum: int = field(default=1, metadata={"help": "Batches per optimizer step (gradient accumulation)."})


@dataclass(frozen=True)
class RunConfig:
    """Loop mechanics: seeds, precision, logging and checkpoints."""

    seed: int = field(default=1234, metadata={"help": "Seed of the initial weights, dropout, data order and masks."})
    precision: str = field(
        default="auto",
        metadata={
            "help": "auto (bf16 on GPU, fp32 on CPU) | fp32 | bf16 (autocast) | fp16 (autocast + loss scaling, "
            "for GPUs without bf16; overflowing steps are skipped and counted)."
        },
    )
    compile: bool = field(
        default=False, metadata={"help": "torch.compile the whole training forward (fullgraph, static shapes)."}
    )
    log_every: int = field(
        default=10, metadata={"help": "Steps between metric lines (metrics.jsonl, TensorBoard, progress)."}
    )
    save_every: int = field(default=1000, metadata={"help": "Steps between checkpoints."})
    eval_every: int = field(
        default=1000,
        metadata={
            "help": "Steps between evaluations of data.eval_data (and at the last step): eval_* fields of "
            "metrics.jsonl and TensorBoard."
        },
    )
    keep_last: int = field(default=3, metadata={"help": "Checkpoints kept (older ones are deleted)."})
    device: str = field(default="auto", metadata={"help": "auto | cpu | cuda."})
    trace_keys: bool = field(
        default=False,
        metadata={"help": "Each rank appends 'step key...' lines to RUN/keys-rank-NNNNN.txt (data checks)."},
    )


@dataclass(frozen=True)
class TrainConfig:
    """A whole run: SECTION.FIELD=VALUE on the command line sets one field (`ambert train --help` lists them)."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    run: RunConfig = field(default_factory=RunConfig)


PRESETS: dict[str, dict[str, dict[str, typing.Any]]] = {
    # Small enough for a CPU test or the demo: a few seconds per hundred steps.
    "tiny": {
        "model": {"hidden_size": 64, "num_layers": 2, "num_heads": 2, "intermediate_size": 128, "max_position": 512},
        "data": {"batch_size": 16, "num_workers": 1, "shuffle_buffer": 200},
        "optim": {"lr": 1e-3, "warmup_steps": 20, "max_steps": 200},
        "run": {"log_every": 10, "save_every": 100, "eval_every": 50},
    },
    # Paper Table 10 (Chinese and English AMBERT): seq 512 comes from the shard set, batch is global.
    "base": {
        "model": {"hidden_size": 768, "num_layers": 12, "num_heads": 12, "intermediate_size": 3072},
        "data": {"batch_size": 64, "num_workers": 4, "shuffle_buffer": 10_000},
        "optim": {"lr": 1e-4, "warmup_steps": 10_000, "max_steps": 1_000_000},
        "run": {"log_every": 100, "save_every": 5000, "eval_every": 5000},
    },
}


def _coerce(value: typing.Any, kind: typing.Any, where: str) -> typing.Any:
    """A value from JSON/TOML or an override string, as the field's type."""
    origin = typing.get_origin(kind)
    if origin is tuple:
        items = json.loads(value) if isinstance(value, str) else value
        kinds = typing.get_args(kind)
        if len(kinds) == 2 and kinds[1] is Ellipsis:  # tuple[int, ...]: any length
            kinds = (kinds[0],) * len(items)
        if not isinstance(items, list | tuple) or len(items) != len(kinds):
            raise ConfigError(f"{where}: {value!r} is not a list of {len(kinds)} values")
        return tuple(_coerce(v, t, where) for v, t in zip(items, kinds, strict=True))
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "1", "yes", "false", "0", "no"):
            return value.lower() in ("true", "1", "yes")
        raise ConfigError(f"{where}: {value!r} is not a boolean (true/false)")
    try:
        return kind(value)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{where}: {value!r} is not a {kind.__name__}") from error


def _merge(config: typing.Any, changes: dict[str, typing.Any], where: str) -> typing.Any:
    hints = typing.get_type_hints(type(config))
    known = {f.name for f in dataclasses.fields(config)}
    updates = {}
    for name, value in changes.items():
        if name not in known:
            raise ConfigError(f"{where}: unknown field {name!r}; known: {', '.join(sorted(known))}")
        current = getattr(config, name)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise ConfigError(f"{where}.{name} is a section; give a table/object, not {value!r}")
            updates[name] = _merge(current, value, f"{where}.{name}")
        else:
            updates[name] = _coerce(value, hints[name], f"{where}.{name}")
    return dataclasses.replace(config, **updates)


def validate(cfg: TrainConfig) -> TrainConfig:
    m = cfg.model
    if m.variant not in VARIANTS:
        raise ConfigError(f"model.variant {m.variant!r} is not one of {', '.join(VARIANTS)}")
    if m.hidden_size % m.num_heads:
        raise ConfigError(f"model.hidden_size {m.hidden_size} is not a multiple of model.num_heads {m.num_heads}")
    if cfg.data.masking not in (*MASKINGS, "auto"):
        raise ConfigError(f"data.masking {cfg.data.masking!r} is not one of {', '.join(MASKINGS)}, auto")
    if m.objective not in OBJECTIVES:
        raise ConfigError(f"model.objective {m.objective!r} is not one of {', '.join(OBJECTIVES)}")
    if m.objective == "perm" and m.variant == "hybrid":
        raise ConfigError(
            "model.objective=perm with model.variant=hybrid: each side would show the other's original order; "
            "use perm with ambert, combo, bert-fine or bert-coarse"
        )
    if cfg.run.precision not in PRECISIONS:
        raise ConfigError(f"run.precision {cfg.run.precision!r} is not one of {', '.join(PRECISIONS)}")
    if cfg.data.max_predictions < 0 or any(length < 2 for length in cfg.data.pad_to):
        raise ConfigError("data.max_predictions must be ≥ 0 (0: automatic) and every data.pad_to length ≥ 2")
    if any(rows < 1 for rows in cfg.data.packed_rows):
        raise ConfigError(f"data.packed_rows {list(cfg.data.packed_rows)}: every row count must be ≥ 1")
    if any(slots < 1 for slots in cfg.data.prediction_slots):
        raise ConfigError(f"data.prediction_slots {list(cfg.data.prediction_slots)}: every count must be ≥ 1")
    if cfg.run.device not in ("auto", "cpu", "cuda"):
        raise ConfigError(f"run.device {cfg.run.device!r} is not one of auto, cpu, cuda")
    if not 0 < cfg.data.mask_prob < 1:
        raise ConfigError(f"data.mask_prob {cfg.data.mask_prob} must be between 0 and 1")
    for name in ("batch_size", "num_workers", "shuffle_buffer"):
        if getattr(cfg.data, name) < (0 if name == "num_workers" else 1):
            raise ConfigError(f"data.{name} {getattr(cfg.data, name)} is too small")
    if cfg.optim.grad_accum < 1 or cfg.optim.max_steps < 0 or cfg.run.keep_last < 1:
        raise ConfigError("optim.grad_accum and run.keep_last must be ≥ 1, optim.max_steps ≥ 0")
    for name in ("log_every", "save_every", "eval_every"):
        if getattr(cfg.run, name) < 1:
            raise ConfigError(f"run.{name} {getattr(cfg.run, name)} must be ≥ 1")
    return cfg


def masking_of(cfg: TrainConfig) -> str:
    """data.masking, with auto resolved: token for bert-fine (Google BERT), ambert for the other variants."""
    if cfg.data.masking != "auto":
        return cfg.data.masking
    return "token" if cfg.model.variant == "bert-fine" else "ambert"


def parse_overrides(overrides: list[str]) -> dict[str, typing.Any]:
    """["optim.lr=3e-4", "model.variant=combo"] → {"optim": {"lr": "3e-4"}, "model": {"variant": "combo"}}."""
    tree: dict[str, typing.Any] = {}
    for item in overrides:
        path, sep, value = item.partition("=")
        if not sep or not path:
            raise ConfigError(f"override {item!r} is not SECTION.FIELD=VALUE (e.g. optim.lr=3e-4)")
        *sections, name = path.strip().split(".")
        node = tree
        for section in sections:
            node = node.setdefault(section, {})
        node[name] = value.strip()
    return tree


def read_config_file(path: str) -> dict[str, typing.Any]:
    """A TOML or JSON config file as a nested dict."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as error:
        raise ConfigError(f"cannot read config file {path}: {error.strerror}") from error
    try:
        return tomllib.loads(data.decode("utf-8")) if path.endswith(".toml") else json.loads(data)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(
            f"config file {path} is not valid {'TOML' if path.endswith('.toml') else 'JSON'}: {error}"
        ) from error


def load_config(
    preset: str | None = "tiny", config_file: str | None = None, overrides: list[str] | None = None
) -> TrainConfig:
    """Defaults ← preset ← config file ← command-line overrides, validated."""
    cfg = TrainConfig()
    if preset is not None:
        if preset not in PRESETS:
            raise ConfigError(f"preset {preset!r} is not one of {', '.join(PRESETS)}")
        cfg = _merge(cfg, PRESETS[preset], f"preset {preset}")
    if config_file:
        cfg = _merge(cfg, read_config_file(config_file), config_file)
    if overrides:
        cfg = _merge(cfg, parse_overrides(overrides), "override")
    return validate(cfg)


def apply_overrides(cfg: TrainConfig, overrides: list[str]) -> TrainConfig:
    """An existing config (e.g. a run's saved one) with command-line overrides applied, validated."""
    return validate(_merge(cfg, parse_overrides(overrides), "override"))


def config_dict(cfg: TrainConfig) -> dict[str, typing.Any]:
    return dataclasses.asdict(cfg)


def save_config(cfg: TrainConfig, path: str) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(config_dict(cfg), handle, indent=2, sort_keys=True)
        handle.write("\n")


def read_config(path: str) -> TrainConfig:
    """A config.json written by save_config (a run directory's), exactly as saved."""
    return validate(_merge(TrainConfig(), read_config_file(path), path))
