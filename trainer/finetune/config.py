"""The options of `ambert finetune`, `ambert evaluate` and `ambert ablation`, as frozen dataclasses.

Each field is declared once, with its default and help (`field(default=..., metadata={"help": ...})`); the CLI
generates its options from them (cli/options.py). Torch-free, so `ambert --help` stays fast.

    FinetuneConfig(task="classify", epochs=1, lr=1e-3)     # also the "finetune" record of finetune.json
    AblationConfig(out="out/ablation", zh_shards=..., zh_vocab=..., zh_labeled="data/labeled/zh_sentiment")
"""

from __future__ import annotations

from dataclasses import dataclass, field

from trainer.finetune.ablation import MODELS, Language, check_models

NAMED_TASKS_HELP = (
    "clue/tnews clue/iflytek clue/afqmc clue/cmnli clue/csl clue/wsc clue/c3 clue/chid clue/cmrc2018 glue/cola "
    "glue/sst2 glue/mrpc glue/qqp glue/stsb glue/mnli glue/qnli glue/rte squad1 squad2 race"
)  # the keys of trainer.finetune.readers.NAMED_TASKS (a test keeps them equal)


@dataclass(frozen=True)
class FinetuneConfig:
    task: str = field(
        default="classify",
        metadata={
            "help": "classify | regress | choice | span (with --train/--dev files), or a named task read from --data "
            f"DIR in its own format: {NAMED_TASKS_HELP}."
        },
    )
    epochs: int = field(default=3, metadata={"help": "Passes over the training file."})
    batch_size: int = field(default=32, metadata={"help": "Examples per step."})
    lr: float = field(default=5e-5, metadata={"help": "Peak learning rate (linear warm-up, then decay)."})
    warmup_ratio: float = field(default=0.1, metadata={"help": "Share of the steps spent warming up."})
    weight_decay: float = field(
        default=0.01, metadata={"help": "AdamW weight decay (not on biases and LayerNorm weights)."}
    )
    max_seq_len: int = field(default=128, metadata={"help": "Tokens per side; longer texts are cut."})
    seed: int = field(default=1, metadata={"help": "Seed of the classifier init, dropout and data order."})
    reg_lambda: float = field(
        default=1.0, metadata={"help": "λ of the fine/coarse agreement regularizer (paper eq. 2: 1.0; 0.0 for RACE)."}
    )
    predict_from: str = field(
        default="concat",
        metadata={"help": "concat | fine | coarse: the classifier that predicts (fine = AMBERT-Single)."},
    )
    grad_accum: int = field(
        default=1, metadata={"help": "Micro-batches of --batch-size per optimizer step (gradient accumulation)."}
    )
    precision: str = field(
        default="fp32", metadata={"help": "fp32 | bf16 | fp16: autocast mixed precision of training and prediction."}
    )
    dropout: float = field(default=0.1, metadata={"help": "Dropout of the classifier input."})
    text_field: str = field(
        default="text",
        metadata={"help": "classify/regress: the field (JSONL) or column (TSV with a header) of the text."},
    )
    text_b_field: str = field(
        default="text_b", metadata={"help": "classify/regress: the field of the second text of a pair ('' for none)."}
    )
    label_field: str = field(
        default="label", metadata={"help": "The field of the label (choice: the right option's index or text)."}
    )
    context_field: str = field(default="context", metadata={"help": "choice: the field of the passage."})
    question_field: str = field(
        default="question", metadata={"help": "choice: the field of the question ('' for none, a cloze)."}
    )
    options_field: str = field(default="options", metadata={"help": "choice: the field of the list of options."})
    doc_stride: int = field(default=64, metadata={"help": "span: step between context windows (fine tokens)."})
    max_answer_len: int = field(default=30, metadata={"help": "span: longest answer (fine tokens)."})


@dataclass(frozen=True)
class EvaluateConfig:
    model: str = field(metadata={"help": "Directory written by `ambert finetune`."})
    data: str = field(
        metadata={"help": "File to score, read as at fine-tuning, or a named task's directory (its dev set)."}
    )
    predict_from: str | None = field(
        default=None, metadata={"help": "concat | fine | coarse (default: the head chosen at fine-tuning)."}
    )
    png: str | None = field(default=None, metadata={"help": "Confusion matrix PNG (default MODEL/confusion-eval.png)."})
    json_out: str | None = field(
        default=None, metadata={"help": "Also write the scores as JSON here.", "flag": "--json"}
    )


LANGUAGE_PARTS = ("shards", "vocab", "labeled", "heldout")  # AblationConfig's zh_* and en_* fields


@dataclass(frozen=True)
class AblationConfig:
    out: str = field(metadata={"help": "Directory for pre-training runs, fine-tuned models and results."})
    zh_shards: str | None = field(default=None, metadata={"help": "Chinese shard set."})
    zh_vocab: str | None = field(default=None, metadata={"help": "Its vocab artifact."})
    zh_labeled: str | None = field(
        default=None, metadata={"help": "Prefix of PREFIX_train/dev/test.tsv.gz, e.g. data/labeled/zh_sentiment."}
    )
    en_shards: str | None = field(default=None, metadata={"help": "English shard set."})
    en_vocab: str | None = field(default=None, metadata={"help": "Its vocab artifact."})
    en_labeled: str | None = field(default=None, metadata={"help": "Prefix of the English labeled files."})
    zh_heldout: str | None = field(
        default=None, metadata={"help": "Chinese shard set (same vocab) never pre-trained on: held-out loss."}
    )
    en_heldout: str | None = field(default=None, metadata={"help": "English held-out shard set (same vocab)."})
    steps: int = field(default=300, metadata={"help": "Pre-training steps of every variant (the same budget)."})
    seeds: int = field(default=3, metadata={"help": "Fine-tuning seeds per model."})
    epochs: int = field(default=3, metadata={"help": "Fine-tuning epochs."})
    lr: float = field(default=1e-3, metadata={"help": "Fine-tuning learning rate."})
    models: str = field(
        default=",".join(MODELS),
        metadata={
            "help": "Comma-separated models: bert (bert-fine + token), bert-wwm (+ word), macbert (+ ngram + mac + "
            "SOP; needs similar words), pert (+ ngram + perm), bert-coarse, ambert, combo, hybrid."
        },
    )
    controls: bool = field(
        default=True,
        metadata={"help": "Also fine-tune each architecture from random init (the no-pre-training control)."},
    )
    pretrain: tuple[str, ...] = field(
        default=(), metadata={"help": "Pre-training overrides (repeatable, or several values), e.g. optim.lr=1e-3."}
    )

    def __post_init__(self):
        for name in ("zh", "en"):
            given = [getattr(self, f"{name}_{part}") for part in LANGUAGE_PARTS[:3]]
            if any(given) and not all(given):
                raise ValueError(f"--{name}-shards, --{name}-vocab and --{name}-labeled go together")
            if getattr(self, f"{name}_heldout") and not all(given):
                raise ValueError(f"--{name}-heldout needs --{name}-shards, --{name}-vocab and --{name}-labeled")
        if not self.languages:
            raise ValueError("give at least one language: --zh-shards/--zh-vocab/--zh-labeled or the --en-* ones")
        check_models(self.model_keys)

    @property
    def languages(self) -> list[Language]:
        """The languages given (their shards, vocab and labeled files all given: __post_init__ checks it)."""
        languages = []
        for name in ("zh", "en"):
            shards, vocab, labeled, heldout = (getattr(self, f"{name}_{part}") for part in LANGUAGE_PARTS)
            if shards:
                languages.append(Language(name, shards, vocab, labeled, heldout or ""))
        return languages

    @property
    def model_keys(self) -> tuple[str, ...]:
        return tuple(key.strip() for key in self.models.split(","))

    @property
    def tuning(self) -> FinetuneConfig:
        """The fine-tuning settings of every model: FinetuneConfig's defaults but --epochs and --lr."""
        return FinetuneConfig(epochs=self.epochs, lr=self.lr)
