"""Span extraction fine-tuning (SQuAD-format JSON): `ambert finetune --task span --train F --dev F --init RUN --out D`.

Each fine token is represented by its own hidden state concatenated with that of the coarse token covering it
(paper, section 3); start/end heads score every window position; long contexts are cut into windows with a stride
(trainer/finetune/span_windows.py), and answers come back as character spans of the context through the token offsets.
Single-sided variants use their one side (bert-coarse: the covering coarse token's state at each fine position).
"""

from __future__ import annotations

import dataclasses
import json
import os

import torch
import torch.nn.functional as F
from torch import nn

from trainer.batch import MaskedBatch
from trainer.config import ModelConfig


def covering_coarse(align: torch.Tensor, fine_len: int) -> torch.Tensor:
    """(B, Lc, 2) alignment → (B, Lf) index of the coarse token covering each fine position (0 at padding)."""
    positions = torch.arange(fine_len, device=align.device)[None, None, :]  # (1, 1, Lf)
    covers = (positions >= align[..., :1]) & (positions < align[..., 1:])  # (B, Lc, Lf)
    return covers.float().argmax(dim=1)  # (B, Lf)


class SpanExtractor(nn.Module):
    def __init__(self, encoder: nn.Module, model_config: ModelConfig):
        super().__init__()
        self.encoder = encoder
        self.variant = model_config.variant
        width = 2 if self.variant in ("ambert", "combo", "hybrid") else 1
        self.qa_outputs = nn.Linear(width * model_config.hidden_size, 2)
        nn.init.normal_(self.qa_outputs.weight, std=model_config.initializer_range)
        nn.init.zeros_(self.qa_outputs.bias)

    def forward(self, batch: MaskedBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """(start_logits, end_logits), each (B, Lf); padding positions get -1e4."""
        enc = self.encoder.encode(
            batch.fine_ids, batch.fine_type, batch.fine_mask, batch.coarse_ids, batch.coarse_type, batch.coarse_mask
        )
        parts = []
        if enc.fine_hidden is not None:
            parts.append(enc.fine_hidden)  # (B, Lf, H)
        if enc.coarse_hidden is not None:
            index = covering_coarse(batch.align, batch.fine_ids.shape[1])  # (B, Lf)
            width = enc.coarse_hidden.shape[-1]
            parts.append(torch.gather(enc.coarse_hidden, 1, index[..., None].expand(-1, -1, width)))  # (B, Lf, H)
        logits = self.qa_outputs(torch.cat(parts, dim=-1)).masked_fill(~batch.fine_mask[..., None], -1e4)
        return logits[..., 0], logits[..., 1]


def _windows(tokenizer, examples, tuning) -> list[tuple[int, object]]:
    from trainer.finetune.span_windows import squad_windows

    return [
        (number, window)
        for number, example in enumerate(examples)
        for window in squad_windows(tokenizer, example, tuning.max_seq_len, tuning.doc_stride)
    ]


@torch.no_grad()
def predict_spans(model: SpanExtractor, examples, windows, spec, tuning, batch_size: int = 32) -> dict[str, str]:
    from trainer.finetune.span_windows import predict_answer
    from trainer.masking import pad_examples

    model.eval()
    device = next(model.parameters()).device
    starts, ends = [], []
    for begin in range(0, len(windows), batch_size):
        chunk = [window.example for _, window in windows[begin : begin + batch_size]]
        start, end = model(pad_examples(chunk, spec).to(device))
        starts.extend(start.float().cpu().numpy())
        ends.extend(end.float().cpu().numpy())
    predictions = {}
    for number, example in enumerate(examples):
        chosen = [i for i, (owner, _) in enumerate(windows) if owner == number]
        predictions[example.id] = predict_answer(
            example.context,
            [windows[i][1] for i in chosen],
            [starts[i] for i in chosen],
            [ends[i] for i in chosen],
            max_answer_len=tuning.max_answer_len,
        )
    return predictions


def finetune_span(train_path: str, dev_path: str, init: str, out: str, tuning, report=None) -> dict:
    """Fine-tune span extraction; keeps the epoch with the best dev F1; writes OUT/model.safetensors,
    finetune.json (configs, dev EM/F1 per epoch) and dev_predictions.json."""
    from safetensors.torch import save_model

    from trainer.checkpoint import load_weights, locate_run
    from trainer.config import read_config
    from trainer.finetune.span_windows import answer_positions, read_squad, squad_scores
    from trainer.masking import MaskingSpec, pad_examples
    from trainer.model import AmbertModel, parameter_groups
    from trainer.staged_output import staged_directory
    from trainer.train import lr_lambda
    from vocab.multigrained import MultiGrainedTokenizer

    run_dir, checkpoint = locate_run(init)
    model_config = read_config(os.path.join(run_dir, "config.json")).model
    vocab_dir = os.path.join(run_dir, "vocab")
    tokenizer = MultiGrainedTokenizer.from_artifact(vocab_dir)
    spec = MaskingSpec.from_artifact(vocab_dir)
    train_examples, dev_examples = read_squad(train_path), read_squad(dev_path)
    train_windows, dev_windows = _windows(tokenizer, train_examples, tuning), _windows(tokenizer, dev_examples, tuning)
    labels = []
    for number, window in train_windows:
        text, start = train_examples[number].answers[0]
        labels.append(answer_positions(window, start, start + len(text)))

    torch.manual_seed(tuning.seed)
    encoder = AmbertModel(model_config)
    load_weights(checkpoint, encoder)
    model = SpanExtractor(encoder, model_config)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device)
    optimizer = torch.optim.AdamW(parameter_groups(model, tuning.weight_decay), lr=tuning.lr, eps=1e-6)
    steps = tuning.epochs * -(-len(train_windows) // tuning.batch_size)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(int(tuning.warmup_ratio * steps), steps))
    targets = torch.tensor(labels, device=device)  # (N, 2)
    best, history = (-1.0, None, 0), []
    for epoch in range(tuning.epochs):
        model.train()
        order = torch.randperm(len(train_windows), generator=torch.Generator().manual_seed(tuning.seed * 1000 + epoch))
        for begin in range(0, len(order), tuning.batch_size):
            rows = order[begin : begin + tuning.batch_size]
            batch = pad_examples([train_windows[i][1].example for i in rows.tolist()], spec).to(device)
            start, end = model(batch)
            wanted = targets[rows.to(device)]
            loss = (F.cross_entropy(start, wanted[:, 0]) + F.cross_entropy(end, wanted[:, 1])) / 2
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
        scores = squad_scores(predict_spans(model, dev_examples, dev_windows, spec, tuning), dev_examples)
        history.append({"epoch": epoch + 1, "loss": float(loss.detach()), **scores})
        if report:
            report(history[-1])
        if scores["f1"] > best[0]:
            best = (scores["f1"], {k: v.detach().clone() for k, v in model.state_dict().items()}, epoch + 1)
    model.load_state_dict(best[1])
    model.cpu()
    predictions = predict_spans(model, dev_examples, dev_windows, spec, tuning)
    record = {
        "model": dataclasses.asdict(model_config),
        "finetune": dataclasses.asdict(tuning),
        "task": "span",
        "init": os.path.abspath(checkpoint),
        "best_epoch": best[2],
        "history": history,
        "scores": {"dev": squad_scores(predictions, dev_examples)},
    }
    with staged_directory(out) as staging:
        save_model(model, os.path.join(staging, "model.safetensors"))
        for name, content in (("finetune.json", record), ("dev_predictions.json", predictions)):
            with open(os.path.join(staging, name), "w", encoding="utf-8") as handle:
                json.dump(content, handle, indent=2, ensure_ascii=False)
    return record
