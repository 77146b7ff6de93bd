"""Fine-tuning throughput (examples/s of a training step: forward, backward, AdamW) of each task type against
Hugging Face's BertForSequenceClassification / BertForMultipleChoice / BertForQuestionAnswering of the same size
on the same fine batch, in one run; AMBERT reads a coarse sequence too, AMBERT-Single (fine head only) does not.

    OMP_NUM_THREADS=2 .venv/bin/python -m benchmarks.bench_finetune [--hidden 256 --layers 4 --heads 4 --seq 128
        --batch 16 --choices 4 --steps 5]

Targets (issue 16): time ratio AMBERT / HF ≤ 2.0 (two sequences), AMBERT-Single / HF ≤ 1.1. Interleaved repeats,
best of each; one JSON line per task type.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from trainer.batch import IGNORE, MaskedBatch
from trainer.config import ModelConfig
from trainer.finetune.choice import option_scores
from trainer.finetune.classify import classification_loss
from trainer.finetune.loop import SequenceClassifier
from trainer.finetune.span import SpanExtractor, span_loss
from trainer.model import AmbertModel

FINE, COARSE = 21128, 72635  # Chinese vocabulary sizes (bert-base-chinese, the bundled coarse artifact's scale)


def synthetic_batch(rows: int, seq: int, generator: torch.Generator) -> MaskedBatch:
    """Fine ids of length seq; coarse ids of length ~0.7 seq aligned as 1-2 fine tokens per coarse token."""
    coarse_len = int(seq * 0.7)
    widths = torch.ones(coarse_len, dtype=torch.long)
    widths[torch.randperm(coarse_len, generator=generator)[: seq - coarse_len]] = 2  # Σ widths = seq
    ends = widths.cumsum(0)
    align = torch.stack([ends - widths, ends], 1).expand(rows, -1, -1).contiguous()
    fine = torch.randint(100, FINE, (rows, seq), generator=generator)
    coarse = torch.randint(100, COARSE, (rows, coarse_len), generator=generator)
    zeros = lambda t: torch.zeros_like(t)  # noqa: E731
    return MaskedBatch(
        fine, zeros(fine), torch.ones_like(fine, dtype=torch.bool), torch.full_like(fine, IGNORE),
        coarse, zeros(coarse), torch.ones_like(coarse, dtype=torch.bool), torch.full_like(coarse, IGNORE),
        align, torch.full((rows,), IGNORE), [str(i) for i in range(rows)],
    )  # fmt: skip


def timed(step, steps: int) -> float:
    step()  # warm-up
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - start) / steps


def trainer_step(model, loss_of):
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5, fused=True)  # as the fine-tuning loop

    def step():
        loss = loss_of()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for name, default in (
        ("hidden", 256),
        ("layers", 4),
        ("heads", 4),
        ("seq", 128),
        ("batch", 16),
        ("choices", 4),
        ("steps", 5),
        ("repeats", 3),
    ):
        parser.add_argument(f"--{name}", type=int, default=default)
    parser.add_argument("--tasks", default="classify,choice,span", help="Comma-separated task types to measure.")
    args = parser.parse_args()
    torch.manual_seed(0)
    from transformers import BertConfig, BertForMultipleChoice, BertForQuestionAnswering, BertForSequenceClassification

    cfg = ModelConfig(
        variant="ambert", fine_vocab_size=FINE, coarse_vocab_size=COARSE, hidden_size=args.hidden,
        num_layers=args.layers, num_heads=args.heads, intermediate_size=4 * args.hidden, max_position=512,
    )  # fmt: skip
    hf_cfg = BertConfig(
        vocab_size=FINE, hidden_size=args.hidden, num_hidden_layers=args.layers, num_attention_heads=args.heads,
        intermediate_size=4 * args.hidden, num_labels=2, attn_implementation="sdpa",
    )  # fmt: skip
    generator = torch.Generator().manual_seed(1)
    rows = {"classify": args.batch, "choice": args.batch * args.choices, "span": args.batch}
    labels = torch.randint(0, 2, (args.batch,), generator=generator)
    for task, hf_class in (
        ("classify", BertForSequenceClassification),
        ("choice", BertForMultipleChoice),
        ("span", BertForQuestionAnswering),
    ):
        if task not in args.tasks.split(","):
            continue
        batch = synthetic_batch(rows[task], args.seq, generator)
        positions = torch.randint(1, args.seq, (args.batch, 2), generator=generator).sort(1).values
        if task == "span":
            model = SpanExtractor(AmbertModel(cfg), cfg).train()

            def loss_of(model=model, batch=batch, heads=None, positions=positions):
                return span_loss(model(batch, heads=heads), positions, 1.0)
        else:
            model = SequenceClassifier(AmbertModel(cfg), cfg, 2 if task == "classify" else 1, 0.1).train()

            def loss_of(model=model, batch=batch, heads=None, task=task):
                logits = model(batch, heads=heads)
                if task == "choice":
                    logits = {h: option_scores(v, [args.choices] * args.batch) for h, v in logits.items()}
                return classification_loss(logits, labels, 1.0)

        hf = hf_class(hf_cfg).train()
        fine = {
            "input_ids": batch.fine_ids,
            "attention_mask": batch.fine_mask.long(),
            "token_type_ids": batch.fine_type,
        }
        if task == "choice":
            fine = {k: v.view(args.batch, args.choices, -1) for k, v in fine.items()}
        targets = (
            {"start_positions": positions[:, 0], "end_positions": positions[:, 1]}
            if task == "span"
            else {"labels": labels}
        )

        def hf_loss(fine=fine, hf=hf, targets=targets):
            return hf(**fine, **targets).loss

        steps = {
            "hf": trainer_step(hf, hf_loss),
            "ambert": trainer_step(model, loss_of),
            "ambert_single": trainer_step(model, lambda loss_of=loss_of: loss_of(heads=("fine",))),
        }
        best = {name: float("inf") for name in steps}
        for _ in range(args.repeats):  # interleaved, best of each
            for name, step in steps.items():
                best[name] = min(best[name], timed(step, args.steps))
        examples = args.batch
        print(
            json.dumps(
                {
                    "task": task,
                    "hf_class": hf_class.__name__,
                    **{f"{name}_examples_per_s": round(examples / seconds, 2) for name, seconds in best.items()},
                    "ratio_ambert": round(best["ambert"] / best["hf"], 3),
                    "ratio_ambert_single": round(best["ambert_single"] / best["hf"], 3),
                    "hidden": args.hidden,
                    "layers": args.layers,
                    "seq": args.seq,
                    "batch": args.batch,
                    "threads": torch.get_num_threads(),
                }  # fmt: skip
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
