"""AMBERT pre-training: one loop you can read top to bottom, on one CPU, one GPU or many under torchrun.

    ambert train --data SHARDS --vocab ARTIFACT --out RUN --preset tiny [-o optim.lr=3e-4 ...]
    torchrun --nproc-per-node 2 --no-python ambert train ...     (or: ambert train --nproc 2 ...)
    ambert train --out RUN --resume                              (continues exactly where RUN stopped)

RUN holds config.json, vocab/ (a copy of the artifact), metrics.jsonl, tb/ (TensorBoard) and checkpoints/.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass

import torch
import torch.distributed as dist

from trainer.checkpoint import DataPosition, latest_checkpoint, load_checkpoint, save_checkpoint
from trainer.config import ConfigError, TrainConfig, apply_overrides, read_config, save_config, validate
from trainer.staged_output import staged_directory
from vocab.artifact import read_vocab_lines, verify_artifact
from vocab.shard_set import read_manifest

CONFIG, METRICS, VOCAB = "config.json", "metrics.jsonl", "vocab"


class TrainError(RuntimeError):
    """A run that cannot start or continue (names the path or setting and what to do)."""


@dataclass(frozen=True)
class Distributed:
    rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup_distributed(device_choice: str) -> Distributed:
    """torchrun sets RANK/WORLD_SIZE/LOCAL_RANK; gloo on CPU, NCCL on GPUs. A plain process is rank 0 of 1."""
    use_cuda = device_choice == "cuda" or (device_choice == "auto" and torch.cuda.is_available())
    if device_choice == "cuda" and not torch.cuda.is_available():
        raise TrainError("run.device=cuda but no CUDA device is visible; use run.device=cpu or auto")
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    device = torch.device("cuda", local_rank) if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(device)
    if "RANK" not in os.environ:
        return Distributed(0, 1, device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return Distributed(dist.get_rank(), dist.get_world_size(), device)


def lr_lambda(warmup_steps: int, max_steps: int) -> Callable[[int], float]:
    """Linear warm-up to the peak, then linear decay to zero at max_steps."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / max(1, warmup_steps)
        return max(0.0, (max_steps - step) / max(1, max_steps - warmup_steps))

    return factor


def prepare_run(out: str, cfg: TrainConfig, vocab_dir: str, resume: bool) -> TrainConfig:
    """Check the shard set against the vocab artifact, size the model from it, write RUN/config.json and RUN/vocab.

    Rank 0 only. Returns the config the run uses (vocabulary sizes filled in).
    """
    config_path = os.path.join(out, CONFIG)
    if os.path.exists(config_path) and not resume:
        raise TrainError(f"{out} already holds a run: pass --resume to continue it, or choose another --out")
    if not cfg.data.data:
        raise TrainError("no shard set: pass --data DIR (a directory written by `ambert shard build`)")
    artifact = verify_artifact(vocab_dir)
    from trainer.masking_strategies import Corruption

    Corruption.from_config(vocab_dir, cfg)  # fails now, before RUN is written, on e.g. mac without similar words
    manifest = read_manifest(cfg.data.data, expect_vocab_id=artifact["id"])
    seq_len = int(manifest["options"]["max_seq_len"])
    if seq_len > cfg.model.max_position:
        raise TrainError(
            f"the shard set has sequences of up to {seq_len} tokens but model.max_position is "
            f"{cfg.model.max_position}: raise model.max_position or re-shard with --max-seq-len"
        )
    sizes = artifact["sizes"]
    cfg = validate(
        dataclasses.replace(
            cfg,
            model=dataclasses.replace(
                cfg.model, fine_vocab_size=int(sizes["fine"]), coarse_vocab_size=int(sizes["coarse"])
            ),
        )
    )
    os.makedirs(out, exist_ok=True)
    copy = os.path.join(out, VOCAB)
    if not os.path.exists(os.path.join(copy, "artifact.json")):
        with staged_directory(copy) as staging:
            shutil.copytree(vocab_dir, staging, dirs_exist_ok=True)
    save_config(cfg, config_path + ".tmp")
    os.replace(config_path + ".tmp", config_path)
    return cfg


def resumed_config(out: str, overrides: list[str]) -> TrainConfig:
    """RUN's saved config with overrides; loop settings (optim.*, run.*, data.strict) may change on resume, model and
    the rest of data not."""
    path = os.path.join(out, CONFIG)
    if not os.path.exists(path):
        raise TrainError(f"--resume: {out} holds no run (no {CONFIG}); start one with --data and --vocab")
    saved = read_config(path)
    cfg = apply_overrides(saved, overrides)
    kept = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, strict=saved.data.strict))
    for section in ("model", "data"):
        if getattr(kept, section) != getattr(saved, section):
            raise ConfigError(
                f"--resume keeps the {section} settings saved in {path}; "
                f"drop the {section}.* overrides (and --data/--variant) or start a new run"
            )
    return cfg


def _trim_metrics(path: str, step: int) -> None:
    """On resume, drop metric lines logged after the checkpoint (the killed run's lost steps are redone)."""
    if not os.path.exists(path):
        return
    with open(path, encoding="utf-8") as handle:
        kept = [line for line in handle if line.strip() and json.loads(line)["step"] <= step]
    with open(path + ".tmp", "w", encoding="utf-8") as handle:
        handle.writelines(kept)
    os.replace(path + ".tmp", path)


def next_step_batches(batches: Iterator, count: int, ddp: Distributed) -> list | None:
    """`count` batches from this rank's loader, or None for every rank once any rank's loader is exhausted.

    One tiny all-reduce per step keeps uneven ranks from hanging DDP: the epoch ends for all together.
    """
    taken = []
    for _ in range(count):
        batch = next(batches, None)
        if batch is None:
            break
        taken.append(batch)
    have = len(taken) == count
    if ddp.world_size > 1:
        flag = torch.tensor([1 if have else 0], dtype=torch.int32)
        if ddp.device.type == "cuda":
            flag = flag.to(ddp.device)
        dist.all_reduce(flag, op=dist.ReduceOp.MIN)
        have = bool(flag.item())
    return taken if have else None


class MetricsLog:
    """metrics.jsonl (append) and TensorBoard scalars, rank 0 only."""

    def __init__(self, out: str, enabled: bool):
        self.enabled = enabled
        self.path = os.path.join(out, METRICS)
        self.board = None
        if enabled:
            from torch.utils.tensorboard import SummaryWriter

            self.board = SummaryWriter(os.path.join(out, "tb"))

    def write(self, record: dict) -> None:
        if not self.enabled:
            return
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, sort_keys=True) + "\n")
        for name, value in record.items():
            if name != "step" and isinstance(value, int | float) and math.isfinite(value):
                self.board.add_scalar(f"train/{name}", value, record["step"])

    def close(self) -> None:
        if self.board is not None:
            self.board.close()


def train(
    cfg: TrainConfig,
    out: str,
    *,
    vocab_dir: str | None = None,
    resume: bool = False,
    init_from: str | None = None,
    report: Callable[[dict], None] | None = None,
) -> dict:
    """Pre-train until optim.max_steps; returns the last logged metrics. `report` sees each logged record.

    A new run takes `cfg` from load_config(); a resumed one from resumed_config(out, overrides)."""
    from trainer.data import pretraining_loader
    from trainer.masking import MaskingCollator
    from trainer.masking_strategies import Corruption
    from trainer.model import AmbertModel, parameter_groups

    ddp = setup_distributed(cfg.run.device)
    checkpoint = latest_checkpoint(out) if resume else None
    if ddp.is_main and not checkpoint:
        prepare_run(out, cfg, vocab_dir or os.path.join(out, VOCAB), resume)
    if ddp.world_size > 1:
        dist.barrier()
    saved = read_config(os.path.join(out, CONFIG))  # vocabulary sizes filled in by prepare_run
    cfg = dataclasses.replace(cfg, model=saved.model)
    vocab_copy = os.path.join(out, VOCAB)
    vocab_id = verify_artifact(vocab_copy)["id"]

    torch.manual_seed(cfg.run.seed)  # the same initial weights on every rank
    model = AmbertModel(cfg.model)
    if init_from and not checkpoint:
        from trainer.hf_interop import init_from_hf

        counts = init_from_hf(
            model,
            init_from,
            read_vocab_lines(os.path.join(vocab_copy, "fine", "vocab.txt")),
            read_vocab_lines(os.path.join(vocab_copy, "coarse", "vocab.txt")),
            os.path.join(vocab_copy, "fine", "tokenizer.json"),
        )
        if ddp.is_main and report:
            report({"init_from": init_from, **counts})
    model.to(ddp.device)
    optimizer = torch.optim.AdamW(
        parameter_groups(model, cfg.optim.weight_decay), lr=cfg.optim.lr, betas=cfg.optim.betas, eps=cfg.optim.eps
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(cfg.optim.warmup_steps, cfg.optim.max_steps))
    step, position = 0, DataPosition()
    if checkpoint:
        step, position = load_checkpoint(checkpoint, model, optimizer, scheduler)
        if ddp.is_main:
            _trim_metrics(os.path.join(out, METRICS), step)
    else:
        torch.manual_seed(cfg.run.seed + 1 + ddp.rank)  # dropout differs per rank, reproducibly

    trained = model
    if ddp.world_size > 1:
        trained = torch.nn.parallel.DistributedDataParallel(
            model,
            device_ids=[ddp.device.index] if ddp.device.type == "cuda" else None,
            find_unused_parameters=not (cfg.model.nsp or cfg.model.sop) or cfg.model.objective == "perm",
        )  # the pooler feeds only the NSP and SOP heads; perm leaves the MLM heads out
    forward = torch.compile(trained) if cfg.run.compile else trained
    use_bf16 = cfg.run.precision == "bf16" or (cfg.run.precision == "auto" and ddp.device.type == "cuda")
    autocast = (lambda: torch.autocast(ddp.device.type, dtype=torch.bfloat16)) if use_bf16 else nullcontext

    corruption = Corruption.from_config(vocab_copy, cfg)
    log = MetricsLog(out, ddp.is_main)
    last: dict = {}
    window = {"started": time.monotonic(), "wait": 0.0, "tokens": 0, "steps": 0}
    totals = torch.zeros(8, device=ddp.device)  # sums: losses (fine, coarse, nsp, sop), correct/count fine, coarse
    zero = torch.zeros((), device=ddp.device)

    def loader_for(where: DataPosition) -> Iterator:
        return iter(
            pretraining_loader(
                cfg.data.data,
                expect_vocab_id=vocab_id,
                collator=MaskingCollator(corruption, cfg.run.seed, where.epoch),
                batch_size=cfg.data.batch_size,
                num_workers=cfg.data.num_workers,
                shuffle_buffer=cfg.data.shuffle_buffer,
                seed=cfg.run.seed,
                epoch=where.epoch,
                rank=ddp.rank,
                world_size=ddp.world_size,
                resampled=cfg.data.resampled,
                strict=cfg.data.strict,
                skip_batches=where.batches,
                read_retries=cfg.data.read_retries,
                retry_backoff=cfg.data.retry_backoff,
            )
        )

    batches = loader_for(position) if step < cfg.optim.max_steps else iter(())
    empty_epochs = 0
    trained.train()
    while step < cfg.optim.max_steps:
        waited = time.monotonic()
        micro_batches = next_step_batches(batches, cfg.optim.grad_accum, ddp)
        window["wait"] += time.monotonic() - waited
        if micro_batches is None:  # the epoch is over on some rank: every rank starts the next one
            empty_epochs = empty_epochs + 1 if position.batches == 0 else 0
            if empty_epochs >= 2:
                raise TrainError(
                    f"{cfg.data.data} yields no full step of {cfg.optim.grad_accum} batch(es) per "
                    f"rank for {ddp.world_size} rank(s): use fewer ranks or a larger shard set"
                )
            position = DataPosition(position.epoch + 1, 0)
            batches = loader_for(position)
            continue
        if cfg.run.trace_keys:
            with open(os.path.join(out, f"keys-rank-{ddp.rank:05d}.txt"), "a", encoding="utf-8") as trace:
                trace.write(" ".join([str(step + 1)] + [key for batch in micro_batches for key in batch.keys]) + "\n")
        optimizer.zero_grad(set_to_none=True)
        for index, batch in enumerate(micro_batches):
            window["tokens"] += int(batch.fine_mask.sum()) + int(batch.coarse_mask.sum())  # on the CPU: no sync
            batch = batch.to(ddp.device, non_blocking=True)
            sync = index == len(micro_batches) - 1 or ddp.world_size == 1
            with nullcontext() if sync else trained.no_sync(), autocast():
                output = forward(batch)
                (output.loss / len(micro_batches)).backward()
            totals += torch.stack(
                [  # stays on the device: no synchronisation per step
                    zero if value is None else value.detach().float()
                    for value in (
                        output.fine_loss,
                        output.coarse_loss,
                        output.nsp_loss,
                        output.sop_loss,
                        output.fine_correct,
                        output.fine_count,
                        output.coarse_correct,
                        output.coarse_count,
                    )
                ]
            )
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip)
        optimizer.step()
        scheduler.step()
        step += 1
        position = DataPosition(position.epoch, position.batches + len(micro_batches))
        window["steps"] += len(micro_batches)

        if step % cfg.run.log_every == 0 or step == cfg.optim.max_steps:
            summed = totals.clone()
            if ddp.world_size > 1:
                dist.all_reduce(summed)
            micro = window["steps"] * ddp.world_size
            elapsed = max(time.monotonic() - window["started"], 1e-9)
            last = {
                "step": step,
                "epoch": position.epoch,
                "loss": summed[:4].sum().item() / micro,
                "fine_loss": summed[0].item() / micro,
                "coarse_loss": summed[1].item() / micro,
                "nsp_loss": summed[2].item() / micro,
                "sop_loss": summed[3].item() / micro,
                "fine_acc": summed[4].item() / max(summed[5].item(), 1),
                "coarse_acc": summed[6].item() / max(summed[7].item(), 1),
                "lr": scheduler.get_last_lr()[0],
                "grad_norm": float(grad_norm),
                "tokens_per_s": window["tokens"] * ddp.world_size / elapsed,
                "loader_wait": window["wait"] / elapsed,
            }
            log.write(last)
            if ddp.is_main and report:
                report(last)
            totals.zero_()
            window = {"started": time.monotonic(), "wait": 0.0, "tokens": 0, "steps": 0}
        if step % cfg.run.save_every == 0 and step < cfg.optim.max_steps:
            save_checkpoint(out, step, model, optimizer, scheduler, position, cfg.run.keep_last)
    save_checkpoint(out, step, model, optimizer, scheduler, position, cfg.run.keep_last)
    log.close()
    return last


def print_report(record: dict) -> None:
    """Default progress: one line per logged step on rank 0 (stderr)."""
    if "step" not in record:
        print("  ".join(f"{k}={v}" for k, v in record.items()), file=sys.stderr)
        return
    print(
        f"step {record['step']:>7}  loss {record['loss']:.4f} (fine {record['fine_loss']:.4f}, coarse "
        f"{record['coarse_loss']:.4f})  acc {record['fine_acc']:.3f}/{record['coarse_acc']:.3f}  "
        f"lr {record['lr']:.2e}  {record['tokens_per_s']:.0f} tok/s",
        file=sys.stderr,
        flush=True,
    )
