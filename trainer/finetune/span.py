"""Span extraction fine-tuning (SQuAD 1.1 / 2.0, CMRC 2018, DRCD: SQuAD-format JSON):

    ambert finetune --task span --train F --dev F [--test F] --init RUN --out D [--predict-from fine]

Each fine token is represented by its own hidden state and by that of the coarse token covering it (paper,
section 3). AMBERT (and combo) get three start/end heads, as for classification: on the fine states, on the
covering coarse states and on their concatenation, trained together with λ‖p_fine − p_coarse‖² on the start and
end distributions (paper eq. 2); `--predict-from fine` is AMBERT-Single (only the fine encoder runs). hybrid
predicts from the concatenation of its joint states, bert-fine / bert-coarse from their one side. Long contexts are
cut into windows with a stride (span_windows.py); a window without the answer, or a SQuAD 2.0 question without
one, is labelled [CLS]. Prediction groups windows by question in one pass; with unanswerable questions present
the null-odds threshold that scores best on dev is stored and applied to test, as the official v2.0 evaluation.
"""

from __future__ import annotations

import json
import os
import shutil
from collections import defaultdict

import torch
import torch.nn.functional as F
from torch import nn

from trainer.ambert_encoder import token_states
from trainer.batch import MaskedBatch
from trainer.config import ModelConfig
from trainer.finetune.loop import TWO_SIDED, autocast, config_record, encoder_sides, fit, linear_heads


def span_heads(variant: str) -> tuple[str, ...]:
    """The start/end heads of a variant: both sides and their concatenation, or its one representation."""
    if variant in TWO_SIDED:
        return ("fine", "coarse", "concat")
    return {"hybrid": ("concat",), "bert-coarse": ("coarse",)}.get(variant, ("fine",))


class SpanExtractor(nn.Module):
    def __init__(self, encoder: nn.Module, model_config: ModelConfig):
        super().__init__()
        self.encoder = encoder
        self.variant = model_config.variant
        self.heads = span_heads(self.variant)
        self.qa_outputs = linear_heads(self.heads, model_config.hidden_size, 2, model_config)

    def forward(self, batch: MaskedBatch, heads: tuple[str, ...] | None = None) -> dict[str, torch.Tensor]:
        """{head: (B, Lf, 2) start/end logits}; padding positions get -1e4. heads=("fine",) runs the fine side only."""
        heads = heads or self.heads
        enc = self.encoder.encode(
            batch.fine_ids,
            batch.fine_type,
            batch.fine_mask,
            batch.coarse_ids,
            batch.coarse_type,
            batch.coarse_mask,
            sides=encoder_sides(heads),
        )
        states = token_states(enc.fine_hidden, enc.coarse_hidden, batch.align, batch.fine_ids.shape[1], heads)
        padding = ~batch.fine_mask[..., None]
        return {head: self.qa_outputs[head](states[head]).masked_fill(padding, -1e4) for head in heads}


def span_loss(logits: dict[str, torch.Tensor], targets: torch.Tensor, reg_lambda: float) -> torch.Tensor:
    """Σ_heads (CE(start) + CE(end)) / 2 + λ · mean ‖p_fine − p_coarse‖² over the start and end distributions."""
    loss = sum(
        (F.cross_entropy(out[..., 0].float(), targets[:, 0]) + F.cross_entropy(out[..., 1].float(), targets[:, 1])) / 2
        for out in logits.values()
    )
    if "fine" in logits and "coarse" in logits and reg_lambda:
        gap = logits["fine"].float().softmax(1) - logits["coarse"].float().softmax(1)  # (B, Lf, 2)
        loss = loss + reg_lambda * gap.pow(2).sum(1).mean()
    return loss


def span_head(variant: str, predict_from: str) -> str:
    heads = span_heads(variant)
    if predict_from in heads:
        return predict_from
    if len(heads) == 1:
        return heads[0]
    raise ValueError(f"--predict-from {predict_from!r} is not one of {', '.join(heads)} for variant {variant}")


def make_windows(tokenizer, examples, tuning) -> list[tuple[int, object]]:
    """(question number, SpanWindow) of every question's windows, grouped by question in order."""
    from trainer.finetune.span_windows import squad_windows

    return [
        (number, window)
        for number, example in enumerate(examples)
        for window in squad_windows(tokenizer, example, tuning.max_seq_len, tuning.doc_stride)
    ]


@torch.no_grad()
def predict_spans(
    model: SpanExtractor, examples, windows, spec, tuning, head: str = "concat", batch_size: int = 32
) -> tuple[dict[str, str], dict[str, float]]:
    """({id: best span text}, {id: null odds}) over all windows, in time linear in windows (grouped by question)."""
    from trainer.masking import pad_examples

    model.eval()
    device = next(model.parameters()).device
    logits = []
    for begin in range(0, len(windows), batch_size):
        chunk = [window.example for _, window in windows[begin : begin + batch_size]]
        with autocast(tuning.precision, device):
            out = model(pad_examples(chunk, spec).to(device), heads=(head,))[head]
        logits.extend(out.float().cpu().numpy())
    return decode_answers(examples, windows, logits, tuning.max_answer_len)


def decode_answers(examples, windows, logits, max_answer_len: int = 30) -> tuple[dict[str, str], dict[str, float]]:
    """({id: best span}, {id: null odds}) from per-window (L, 2) start/end logits: windows grouped by question in
    one pass, so the time is linear in windows (not questions × windows)."""
    from trainer.finetune.span_windows import best_answer

    by_question = defaultdict(list)
    for position, (owner, _) in enumerate(windows):
        by_question[owner].append(position)
    predictions, null_odds = {}, {}
    for number, example in enumerate(examples):
        chosen = by_question.get(number, [])
        predictions[example.id], null_odds[example.id] = best_answer(
            example.context,
            [windows[i][1] for i in chosen],
            [logits[i][:, 0] for i in chosen],
            [logits[i][:, 1] for i in chosen],
            max_answer_len=max_answer_len,
        )
    return predictions, null_odds


def span_scores(predictions, null_odds, examples, threshold: float | None = None) -> dict:
    """SQuAD 1.1 scores, or SQuAD 2.0's (HasAns/NoAns, threshold) when some question has no answer."""
    from trainer.finetune.span_windows import squad2_scores, squad_scores

    if all(example.answers for example in examples):
        return squad_scores(predictions, examples)
    return squad2_scores(predictions, null_odds, examples, threshold)


def applied(predictions, null_odds, threshold: float | None) -> dict[str, str]:
    """Predictions with "" where the null odds pass the threshold (no threshold: SQuAD 1.1, always a span)."""
    if threshold is None:
        return predictions
    return {qid: "" if null_odds[qid] > threshold else text for qid, text in predictions.items()}


def finetune_span(
    train_path: str, dev_path: str, init: str, out: str, tuning, test_path: str | None = None, report=None
) -> dict:
    """Fine-tune span extraction; keeps the epoch with the best dev F1; writes OUT/model.safetensors, finetune.json
    (configs, head, threshold, history, scores) and {dev,test}_predictions.json (plus null odds for SQuAD 2.0)."""
    from safetensors.torch import save_model

    from trainer.finetune.loop import load_pretrained
    from trainer.finetune.span_windows import answer_positions, read_squad
    from trainer.masking import pad_examples
    from trainer.staged_output import staged_directory

    run_dir, checkpoint, model_config, tokenizer, spec, encoder = load_pretrained(init, tuning)
    head = span_head(model_config.variant, tuning.predict_from)
    paths = {"train": train_path, "dev": dev_path, **({"test": test_path} if test_path else {})}
    examples = {split: read_squad(path) for split, path in paths.items()}
    windows = {split: make_windows(tokenizer, split_examples, tuning) for split, split_examples in examples.items()}
    labels = []
    for number, window in windows["train"]:
        answers = examples["train"][number].answers
        if not answers:  # SQuAD 2.0: unanswerable, [CLS]
            labels.append((0, 0))
            continue
        text, start = answers[0]
        labels.append(answer_positions(window, start, start + len(text)))

    model = SpanExtractor(encoder, model_config)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device)
    targets = torch.tensor(labels, device=device)  # (N, 2)

    def step_loss(rows):
        batch = pad_examples([windows["train"][i][1].example for i in rows], spec).to(device)
        return span_loss(model(batch), targets[torch.as_tensor(rows, device=device)], tuning.reg_lambda)

    def dev_score():
        scores = span_scores(
            *predict_spans(model, examples["dev"], windows["dev"], spec, tuning, head), examples["dev"]
        )
        best_f1 = scores.get("best_f1", scores["f1"])  # SQuAD 2.0: at its best threshold
        return {"score": best_f1, "exact_match": scores["exact_match"], "f1": scores["f1"]}

    best_epoch, history = fit(model, len(windows["train"]), step_loss, dev_score, tuning, report)
    model.cpu()
    outputs = {
        split: predict_spans(model, examples[split], windows[split], spec, tuning, head)
        for split in examples
        if split != "train"
    }
    dev_scores = span_scores(*outputs["dev"], examples["dev"])
    threshold = dev_scores.get("best_f1_thresh")  # None for SQuAD 1.1
    record = {
        **config_record(model_config, tuning),
        "task": "span",
        "head": head,
        "threshold": threshold,
        "init": os.path.abspath(checkpoint),
        "best_epoch": best_epoch,
        "history": history,
        "scores": {split: span_scores(*outputs[split], examples[split], threshold) for split in outputs},
    }
    with staged_directory(out) as staging:
        save_model(model, os.path.join(staging, "model.safetensors"))
        files = {"finetune.json": record}
        for split, (predictions, null_odds) in outputs.items():
            files[f"{split}_predictions.json"] = applied(predictions, null_odds, threshold)
            if threshold is not None:
                files[f"{split}_null_odds.json"] = null_odds
        for name, content in files.items():
            with open(os.path.join(staging, name), "w", encoding="utf-8") as handle:
                json.dump(content, handle, indent=2, ensure_ascii=False)
        shutil.copytree(os.path.join(run_dir, "vocab"), os.path.join(staging, "vocab"))
    return record


def load_span_model(directory: str) -> tuple[SpanExtractor, dict]:
    """(span model in eval mode, its finetune.json) from a directory written by finetune_span."""
    from safetensors.torch import load_model

    from trainer.model import AmbertModel

    with open(os.path.join(directory, "finetune.json"), encoding="utf-8") as handle:
        record = json.load(handle)
    model_config = ModelConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in record["model"].items()})
    model = SpanExtractor(AmbertModel(model_config), model_config)
    load_model(model, os.path.join(directory, "model.safetensors"))
    return model.eval(), record


def evaluate_span(directory: str, data_path: str, predict_from: str | None = None) -> dict:
    """EM/F1 (SQuAD 2.0: with the threshold tuned at fine-tuning, HasAns/NoAns) of a span model on a SQuAD file."""
    from trainer.finetune.config import FinetuneConfig
    from trainer.finetune.span_windows import read_squad
    from trainer.masking import MaskingSpec
    from vocab.multigrained import MultiGrainedTokenizer

    model, record = load_span_model(directory)
    tuning = FinetuneConfig(**record["finetune"])
    head = span_head(model.variant, predict_from or record["head"])
    vocab_dir = os.path.join(directory, "vocab")
    examples = read_squad(data_path)
    windows = make_windows(MultiGrainedTokenizer.from_artifact(vocab_dir), examples, tuning)
    outputs = predict_spans(model, examples, windows, MaskingSpec.from_artifact(vocab_dir), tuning, head)
    return {**span_scores(*outputs, examples, record.get("threshold")), "head": head}
