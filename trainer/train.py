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
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass

import torch
import torch.distributed as dist

from trainer.batch import MaskedBatch
from trainer.checkpoint import DataPosition, latest_checkpoint, load_checkpoint, save_checkpoint
from trainer.config import ConfigError, TrainConfig, apply_overrides, read_config, save_config, validate
from trainer.staged_output import staged_directory
from vocab.artifact import read_vocab_lines, verify_artifact
from vocab.shard_set import read_manifest

CONFIG, METRICS, VOCAB = "config.json", "metrics.jsonl", "vocab"
RESUMABLE = {
    "model.gradient_checkpointing",
    "data.strict",
    "data.eval_data",
    "data.num_workers",
}  # may change on resume


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


def prepare_run(out: str, cfg: TrainConfig, vocab_dir: str, resume: bool) -> None:
    """Check the shard set (and the held-out one) against the vocab artifact, write RUN/config.json (`cfg`, sized by
    sized_config) and RUN/vocab. Rank 0 only."""
    config_path = os.path.join(out, CONFIG)
    if os.path.exists(config_path) and not resume:
        raise TrainError(f"{out} already holds a run: pass --resume to continue it, or choose another --out")
    if not cfg.data.data:
        raise TrainError("no shard set: pass --data DIR (a directory written by `ambert shard build`)")
    artifact = verify_artifact(vocab_dir)
    from trainer.masking_strategies import Corruption

    Corruption.from_config(vocab_dir, cfg)  # fails now, before RUN is written, on e.g. mac without similar words
    manifest = read_manifest(cfg.data.data, expect_vocab_id=artifact["id"])
    if cfg.data.eval_data:
        from trainer.evaluation import heldout_seq_len

        heldout_seq_len(cfg.data.eval_data, artifact["id"], cfg.model.max_position)
    seq_len = int(manifest["options"]["max_seq_len"])
    if seq_len > cfg.model.max_position:
        raise TrainError(
            f"the shard set has sequences of up to {seq_len} tokens but model.max_position is "
            f"{cfg.model.max_position}: raise model.max_position or re-shard with --max-seq-len"
        )
    os.makedirs(out, exist_ok=True)
    copy = os.path.join(out, VOCAB)
    if not os.path.exists(os.path.join(copy, "artifact.json")):
        with staged_directory(copy) as staging:
            shutil.copytree(vocab_dir, staging, dirs_exist_ok=True)
    save_config(cfg, config_path + ".tmp")
    os.replace(config_path + ".tmp", config_path)


def resumed_config(out: str, overrides: list[str]) -> TrainConfig:
    """RUN's saved config with overrides. Loop settings (optim.*, run.* but run.seed) may change on resume; what
    shapes the model, the data order or the masks (model.*, data.*, run.seed) may not, but RESUMABLE."""
    path = os.path.join(out, CONFIG)
    if not os.path.exists(path):
        raise TrainError(f"--resume: {out} holds no run (no {CONFIG}); start one with --data and --vocab")
    saved = read_config(path)
    cfg = apply_overrides(saved, overrides)
    changed = [
        f"{section}.{name}"
        for section in ("model", "data", "run")
        for name, value in dataclasses.asdict(getattr(cfg, section)).items()
        if value != dataclasses.asdict(getattr(saved, section))[name]
        and (section != "run" or name == "seed")
        and f"{section}.{name}" not in RESUMABLE
    ]
    if changed:
        raise ConfigError(
            f"--resume cannot change {', '.join(changed)} (saved in {path}): it changes the model, the data order "
            "or the masks; drop the override (and --data/--variant) or start a new run"
        )
    return cfg


def _trim_metrics(path: str, step: int) -> None:
    """On resume, drop metric lines logged after the checkpoint (the killed run's lost steps are redone) and a torn
    last line (a run killed while writing it)."""
    if not os.path.exists(path):
        return
    kept = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # torn by a kill mid-write: its step is redone
            if record["step"] <= step:
                kept.append(line if line.endswith("\n") else line + "\n")
    with open(path + ".tmp", "w", encoding="utf-8") as handle:
        handle.writelines(kept)
    os.replace(path + ".tmp", path)


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
                tag = f"eval/{name.removeprefix('eval_')}" if name.startswith("eval_") else f"train/{name}"
                self.board.add_scalar(tag, value, record["step"])

    def close(self) -> None:
        if self.board is not None:
            self.board.close()


class StopSignal:
    """SIGTERM / SIGUSR1 (preemption, `scancel`, torchrun passing a signal on) → stop after the current step."""

    SIGNALS = (signal.SIGTERM, signal.SIGUSR1)

    def __init__(self) -> None:
        self.received: int | None = None
        self.previous = {}

    def __enter__(self) -> StopSignal:
        if threading.current_thread() is threading.main_thread():
            for number in self.SIGNALS:
                self.previous[number] = signal.signal(number, self._note)
        return self

    def _note(self, number: int, frame) -> None:
        self.received = number

    def __exit__(self, *exc) -> None:
        for number, handler in self.previous.items():
            signal.signal(number, handler)


def next_step_batches(
    batches: Iterator, count: int, ddp: Distributed, stop: StopSignal
) -> tuple[list | None, torch.Tensor, bool]:
    """(`count` batches from this rank's loader, or None for every rank once any rank's loader is exhausted; the
    step's loss totals over every rank (MaskedBatch.loss_totals summed); whether any rank was asked to stop). One
    small all-reduce per step keeps uneven ranks from hanging DDP, lets every rank finish the same step before a
    signalled stop and gives the global number of predicted tokens that normalizes the step's loss."""
    taken = []
    for _ in range(count):
        batch = next(batches, None)
        if batch is None:
            break
        taken.append(batch)
    have, stopping = len(taken) == count, stop.received is not None
    totals = sum((batch.loss_totals() for batch in taken), torch.zeros(4, dtype=torch.float64))
    if ddp.world_size > 1:
        flags = torch.cat([torch.tensor([float(have), float(stopping)], dtype=torch.float64), totals])
        if ddp.device.type == "cuda":
            flags = flags.to(ddp.device)
        dist.all_reduce(flags)
        flags = flags.cpu()
        have, stopping, totals = bool(flags[0] == ddp.world_size), bool(flags[1] > 0), flags[2:]
    return (taken if have else None), totals, stopping


class TrainStats:
    """Sums since the last log step, kept on the device (no host sync per step) and read at log steps; the losses
    read are means over every predicted position (or labelled example) of the window, on every rank."""

    PARTS = ("fine", "coarse", "nsp", "sop")  # trainer.model.PARTS
    FIELDS = (
        *(f"{part}_loss" for part in PARTS),
        *(f"{part}_count" for part in PARTS),
        "fine_correct",
        "coarse_correct",
        "fine_capped",
        "coarse_capped",
        "skipped_steps",
    )

    def __init__(self, device: torch.device) -> None:
        self.sums = torch.zeros(len(self.FIELDS), device=device, dtype=torch.float64)
        self.steps = 0

    def add(self, output, batch: MaskedBatch) -> None:
        """One micro-batch's model output (trainer.model.PretrainOutput) and its collator's capped counts."""
        zero = self.sums.new_zeros(())
        values = [output.loss_sums.get(part, zero) for part in self.PARTS]
        values += [output.counts.get(part, zero) for part in self.PARTS]
        values += [output.fine_correct, output.coarse_correct, batch.capped[0], batch.capped[1]]
        self.sums[: len(values)] += torch.stack([value.detach().to(zero) for value in values])

    def add_step(self, grad_norm: torch.Tensor) -> None:
        """One optimizer step; a non-finite gradient norm (fp16 overflow: GradScaler skips the update) is counted."""
        self.sums[-1] += (~torch.isfinite(grad_norm)).to(torch.float64)
        self.steps += 1

    def read(self, ddp: Distributed) -> dict[str, float]:
        """Loss per part (0 for a part the model lacks) and their sum, masked accuracy and capped share per side, and
        skipped steps, over every rank (one all-reduce, one host sync)."""
        sums = self.sums.clone()
        if ddp.world_size > 1:
            dist.all_reduce(sums)
        total = dict(zip(self.FIELDS, sums.tolist(), strict=True))
        record = {f"{part}_loss": total[f"{part}_loss"] / max(total[f"{part}_count"], 1) for part in self.PARTS}
        record["loss"] = sum(record.values())
        for side in ("fine", "coarse"):
            record[f"{side}_acc"] = total[f"{side}_correct"] / max(total[f"{side}_count"], 1)
            predicted = total[f"{side}_count"] + total[f"{side}_capped"]
            record[f"{side}_capped"] = total[f"{side}_capped"] / max(predicted, 1)  # share of masked positions
            record[f"{side}_count"] = int(total[f"{side}_count"])
        record["skipped_steps"] = int(total["skipped_steps"] / ddp.world_size)
        return record


@dataclass(frozen=True)
class Precision:
    """run.precision on a device: autocast dtype (None: fp32) and whether losses are scaled (fp16)."""

    dtype: torch.dtype | None
    device_type: str

    @classmethod
    def of(cls, choice: str, device: torch.device) -> Precision:
        if choice == "auto":
            choice = "bf16" if device.type == "cuda" else "fp32"
        return cls({"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[choice], device.type)

    def autocast(self):
        return torch.autocast(self.device_type, dtype=self.dtype) if self.dtype is not None else nullcontext()

    def scaler(self) -> torch.amp.GradScaler:
        return torch.amp.GradScaler(self.device_type, enabled=self.dtype == torch.float16)


def train_step(
    forward: Callable[[MaskedBatch], object],
    trained: torch.nn.Module,
    micro_batches: list[MaskedBatch],
    totals: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    scheduler,
    scaler: torch.amp.GradScaler,
    precision: Precision,
    grad_clip: float,
    stats: TrainStats,
    device: torch.device,
    world_size: int,
) -> torch.Tensor:
    """One optimizer step over `micro_batches` (gradient accumulation; DDP syncs on the last one only). The loss is
    normalized by the step's `totals` over every micro-batch and rank (next_step_batches), so 2 ranks × 2
    micro-batches of B give the gradient of one batch of 4B; DDP averages over ranks, so each rank divides by its
    share (totals / world_size). Returns the gradient norm before clipping, on the device."""
    optimizer.zero_grad(set_to_none=True)
    accumulating = isinstance(trained, torch.nn.parallel.DistributedDataParallel)
    share = (totals / world_size).to(device, torch.float32, non_blocking=True)
    for index, batch in enumerate(micro_batches):
        batch = batch.to(device, non_blocking=True)
        last = index == len(micro_batches) - 1
        with nullcontext() if last or not accumulating else trained.no_sync():
            with precision.autocast():
                output = forward(batch)
            scaler.scale(output.normalized_loss(share)).backward()
        stats.add(output, batch)
    scaler.unscale_(optimizer)
    grad_norm = torch.nn.utils.clip_grad_norm_(trained.parameters(), grad_clip)
    scaler.step(optimizer)  # skipped by fp16's scaler on inf/nan gradients
    scaler.update()
    scheduler.step()
    stats.add_step(grad_norm)
    return grad_norm


def sized_config(cfg: TrainConfig, vocab_dir: str) -> TrainConfig:
    """`cfg` with the vocabulary sizes of the artifact at `vocab_dir` (every rank computes it: nothing is re-read)."""
    sizes = verify_artifact(vocab_dir)["sizes"]
    model = dataclasses.replace(cfg.model, fine_vocab_size=int(sizes["fine"]), coarse_vocab_size=int(sizes["coarse"]))
    return validate(dataclasses.replace(cfg, model=model))


def train(
    cfg: TrainConfig,
    out: str,
    *,
    vocab_dir: str | None = None,
    resume: bool = False,
    init_from: str | None = None,
    report: Callable[[dict], None] | None = None,
) -> dict:
    """Pre-train until optim.max_steps (or a SIGTERM/SIGUSR1); returns the last logged metrics. `report` sees each
    logged record. A new run takes `cfg` from load_config(); a resumed one from resumed_config(out, overrides)."""
    from trainer.data import Segment, pretraining_loader
    from trainer.masking import BatchShape, MaskingCollator
    from trainer.masking_strategies import Corruption
    from trainer.model import AmbertModel, parameter_groups

    ddp = setup_distributed(cfg.run.device)
    checkpoint = latest_checkpoint(out) if resume else None
    vocab_copy = os.path.join(out, VOCAB)
    cfg = sized_config(cfg, vocab_copy if checkpoint else vocab_dir or vocab_copy)
    if ddp.is_main and not checkpoint:
        prepare_run(out, cfg, vocab_dir or vocab_copy, resume)
    if ddp.world_size > 1:
        dist.barrier()
    vocab_id = verify_artifact(vocab_copy)["id"]
    max_seq_len = int(read_manifest(cfg.data.data, expect_vocab_id=vocab_id)["options"]["max_seq_len"])

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
    if model.nsp_head is None and model.sop_head is None:  # the pooler feeds only NSP/SOP: frozen, for DDP
        for name, parameter in model.named_parameters():
            parameter.requires_grad_(parameter.requires_grad and ".pooler." not in name)
    optimizer = torch.optim.AdamW(
        parameter_groups(model, cfg.optim.weight_decay),
        lr=cfg.optim.lr,
        betas=cfg.optim.betas,
        eps=cfg.optim.eps,
        fused=True,  # one kernel per step on CPU and CUDA (on CPU ~5x the foreach update over the word tables)
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(cfg.optim.warmup_steps, cfg.optim.max_steps))
    precision = Precision.of(cfg.run.precision, ddp.device)
    scaler = precision.scaler()
    layout = Segment(ddp.world_size, max(cfg.data.num_workers, 1), cfg.data.batch_size)
    step, position = 0, DataPosition(layout=layout)
    if checkpoint:
        step, saved_position = load_checkpoint(checkpoint, model, optimizer, scheduler, scaler)
        position = saved_position.on(layout)
        if ddp.is_main:
            _trim_metrics(os.path.join(out, METRICS), step)
            if position != saved_position and report:
                before = saved_position.layout
                report(
                    {
                        "resumed_on": f"{layout.world_size} rank(s) × {layout.workers} worker(s)",
                        "saved_on": f"{before.world_size} rank(s) × {before.workers} worker(s)",
                        "epoch": position.epoch,
                    }
                )
    else:
        torch.manual_seed(cfg.run.seed + 1 + ddp.rank)  # dropout differs per rank, reproducibly

    trained = model
    if ddp.world_size > 1:
        trained = torch.nn.parallel.DistributedDataParallel(
            model,
            device_ids=[ddp.device.index] if ddp.device.type == "cuda" else None,
            find_unused_parameters=cfg.model.objective == "perm",
        )  # the forward computes only what the loss uses (no pooler without NSP/SOP), but perm leaves the MLM heads
        # out
    forward = torch.compile(trained, fullgraph=ddp.world_size == 1, dynamic=False) if cfg.run.compile else trained

    corruption = Corruption.from_config(vocab_copy, cfg)
    shape = BatchShape.from_config(cfg, max_seq_len)
    heldout = None
    if cfg.data.eval_data:
        from trainer.evaluation import HeldOut

        heldout = HeldOut.open(cfg, cfg.data.eval_data, vocab_dir=vocab_copy, rank=ddp.rank, world_size=ddp.world_size)
    log = MetricsLog(out, ddp.is_main)
    last: dict = {}
    window = {"started": time.monotonic(), "wait": 0.0, "tokens": 0}
    stats = TrainStats(ddp.device)

    def loader_for(where: DataPosition) -> Iterator:
        return iter(
            pretraining_loader(
                cfg.data.data,
                expect_vocab_id=vocab_id,
                collator=MaskingCollator(corruption, cfg.run.seed, where.epoch, shape),
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
                history=where.history,
                read_retries=cfg.data.read_retries,
                retry_backoff=cfg.data.retry_backoff,
                drop_last=True,  # training batches keep one shape
            )
        )

    batches = loader_for(position) if step < cfg.optim.max_steps else iter(())
    empty_epochs, stopping = 0, False
    trained.train()
    with StopSignal() as stop:
        while step < cfg.optim.max_steps:
            waited = time.monotonic()
            micro_batches, totals, stopping = next_step_batches(batches, cfg.optim.grad_accum, ddp, stop)
            window["wait"] += time.monotonic() - waited
            if stopping:
                break
            if micro_batches is None:  # the epoch is over on some rank: every rank starts the next one
                empty_epochs = empty_epochs + 1 if position.batches == 0 else 0
                if empty_epochs >= 2:
                    raise TrainError(
                        f"{cfg.data.data} yields no full step of {cfg.optim.grad_accum} batch(es) of "
                        f"{cfg.data.batch_size} per rank for {ddp.world_size} rank(s): use fewer ranks, a smaller "
                        "data.batch_size or a larger shard set"
                    )
                position = position.next_epoch()
                batches = loader_for(position)
                continue
            if cfg.run.trace_keys:
                with open(os.path.join(out, f"keys-rank-{ddp.rank:05d}.txt"), "a", encoding="utf-8") as trace:
                    keys = [key for batch in micro_batches for key in batch.keys]
                    trace.write(" ".join([str(step + 1), *keys]) + "\n")
            window["tokens"] += sum(int(b.fine_mask.sum()) + int(b.coarse_mask.sum()) for b in micro_batches)  # CPU
            grad_norm = train_step(
                forward,
                trained,
                micro_batches,
                totals,
                optimizer,
                scheduler,
                scaler,
                precision,
                cfg.optim.grad_clip,
                stats,
                ddp.device,
                ddp.world_size,
            )
            step += 1
            position = position.after(len(micro_batches))

            record = {}
            if step % cfg.run.log_every == 0 or step == cfg.optim.max_steps:
                elapsed = max(time.monotonic() - window["started"], 1e-9)
                record = {
                    "step": step,
                    "epoch": position.epoch,
                    **stats.read(ddp),
                    "lr": scheduler.get_last_lr()[0],
                    "grad_norm": float(grad_norm),
                    "tokens_per_s": window["tokens"] * ddp.world_size / elapsed,
                    "loader_wait": window["wait"] / elapsed,
                }
                stats = TrainStats(ddp.device)
                window = {"started": time.monotonic(), "wait": 0.0, "tokens": 0}
            if heldout is not None and (step % cfg.run.eval_every == 0 or step == cfg.optim.max_steps):
                started = time.monotonic()
                record = {"step": step, "epoch": position.epoch, **record, **heldout.evaluate(model, precision, ddp)}
                record["eval_seconds"] = time.monotonic() - started
                window["started"] += record["eval_seconds"]  # tokens/s counts training time only
            if record:
                log.write(record)
                if ddp.is_main and report:
                    report(record)
                last = record
            if step % cfg.run.save_every == 0 and step < cfg.optim.max_steps:
                save_checkpoint(out, step, model, optimizer, scheduler, position, cfg.run.keep_last, scaler)
    saved = save_checkpoint(out, step, model, optimizer, scheduler, position, cfg.run.keep_last, scaler)
    if stopping:
        name = signal.Signals(stop.received).name if stop.received is not None else "a signal on another rank"
        message = f"stopped by {name} after step {step}: checkpoint {saved}; continue with --out {out} --resume"
        if ddp.is_main:
            print(message, file=sys.stderr, flush=True)
            if report:
                report({"stopped": name, "at_step": step, "checkpoint": saved})
    log.close()
    return last


def print_report(record: dict) -> None:
    """Default progress: one line per logged step on rank 0 (stderr), and one per evaluation."""
    if "step" not in record:
        print("  ".join(f"{k}={v}" for k, v in record.items()), file=sys.stderr)
        return
    if "loss" in record:
        print(
            f"step {record['step']:>7}  loss {record['loss']:.4f} (fine {record['fine_loss']:.4f}, coarse "
            f"{record['coarse_loss']:.4f})  acc {record['fine_acc']:.3f}/{record['coarse_acc']:.3f}  "
            f"lr {record['lr']:.2e}  {record['tokens_per_s']:.0f} tok/s",
            file=sys.stderr,
            flush=True,
        )
    if "eval_loss" in record:
        sides = "  ".join(
            f"{side} loss {record[f'eval_{side}_loss']:.4f} acc {record[f'eval_{side}_acc']:.3f} "
            f"ppl {record[f'eval_{side}_ppl']:.2f}"
            for side in ("fine", "coarse")
            if f"eval_{side}_loss" in record
        )
        print(f"eval {record['step']:>7}  loss {record['eval_loss']:.4f}  {sides}", file=sys.stderr, flush=True)
