"""Checkpoints of a run: everything needed to continue exactly, written atomically, the last K kept.

    RUN/checkpoints/step-00000100/  model.safetensors   weights (safetensors; tied weights stored once)
                                    optimizer.pt        optimizer, scheduler, fp16 loss scaler (rank 0)
                                    rank-00000.pt       that rank's RNG states
                                    state.json          step, world size, data position (readable)
    save_checkpoint(...) from every rank; latest_checkpoint(run) / load_checkpoint(...) to resume.
A checkpoint directory is written under a temporary name and renamed when complete, so a killed run
leaves either the previous checkpoint or the new one, never half of one. torch.load uses weights_only=True.
The data position does not tie a run to its world size: resumed on another number of ranks or loader workers,
the epoch goes on with the samples it has left (DataPosition.on, trainer.data.Segment); ranks without a saved
RNG state (more ranks than before) seed theirs from (run seed, step, rank).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass, field, replace

import torch
import torch.distributed as dist
from safetensors.torch import load_model, save_model

from trainer.data import Segment

CHECKPOINTS = "checkpoints"
_STEP_DIR = re.compile(r"^step-(\d{8})$")


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used to resume (names the directory and what to do)."""


@dataclass(frozen=True)
class DataPosition:
    """Where the loader stands in `epoch`: the current segment's layout and the batches each rank has taken in it
    (`layout.batches`), after the epoch's earlier segments read with other layouts (`history`)."""

    epoch: int = 0
    layout: Segment = field(default_factory=lambda: Segment(1, 1, 1))
    history: tuple[Segment, ...] = ()

    @property
    def batches(self) -> int:
        return self.layout.batches

    def after(self, batches: int) -> DataPosition:
        return replace(self, layout=replace(self.layout, batches=self.layout.batches + batches))

    def next_epoch(self) -> DataPosition:
        return DataPosition(self.epoch + 1, replace(self.layout, batches=0))

    def on(self, layout: Segment) -> DataPosition:
        """This position for a run with `layout` (its batches ignored): the same when the layout is unchanged, else
        the current segment is closed and a new one starts with what the epoch has left."""
        if self.layout.same_layout(layout):
            return self
        history = self.history + ((self.layout,) if self.layout.batches else ())
        return DataPosition(self.epoch, replace(layout, batches=0), history)

    def to_json(self) -> dict:
        return {
            "epoch": self.epoch,
            "layout": vars(self.layout),
            "history": [vars(segment) for segment in self.history],
        }

    @classmethod
    def from_json(cls, state: dict) -> DataPosition:
        return cls(
            int(state["epoch"]),
            Segment(**state["layout"]),
            tuple(Segment(**segment) for segment in state.get("history", ())),
        )


def step_dir_name(step: int) -> str:
    return f"step-{step:08d}"


def list_checkpoints(run_dir: str) -> list[str]:
    """Complete checkpoint directories of a run, oldest first."""
    root = os.path.join(run_dir, CHECKPOINTS)
    if not os.path.isdir(root):
        return []
    names = sorted(name for name in os.listdir(root) if _STEP_DIR.match(name))
    return [os.path.join(root, name) for name in names if os.path.exists(os.path.join(root, name, "state.json"))]


def latest_checkpoint(run_dir: str) -> str | None:
    found = list_checkpoints(run_dir)
    return found[-1] if found else None


def _barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def _rng_state() -> dict:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def save_checkpoint(
    run_dir: str,
    step: int,
    model: torch.nn.Module,
    optimizer,
    scheduler,
    position: DataPosition,
    keep_last: int,
    scaler: torch.amp.GradScaler | None = None,
) -> str:
    """Every rank calls this; rank 0 writes the shared files. Returns the checkpoint directory."""
    rank = dist.get_rank() if dist.is_available() and dist.is_initialized() else 0
    world = dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
    root = os.path.join(run_dir, CHECKPOINTS)
    final = os.path.join(root, step_dir_name(step))
    staging = os.path.join(root, f".{step_dir_name(step)}.partial")
    if rank == 0:
        shutil.rmtree(staging, ignore_errors=True)  # left by a run killed while saving
        os.makedirs(staging)
    _barrier()
    torch.save(
        {"rng": _rng_state()},
        os.path.join(staging, f"rank-{rank:05d}.pt"),
    )
    if rank == 0:
        save_model(model, os.path.join(staging, "model.safetensors"))
        torch.save(
            {
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict() if scaler is not None else {},
            },
            os.path.join(staging, "optimizer.pt"),
        )
    _barrier()
    if rank == 0:
        state = {"step": step, "world_size": world, "position": position.to_json()}
        with open(os.path.join(staging, "state.json"), "w", encoding="utf-8") as handle:
            json.dump(state, handle, indent=2)
        if os.path.exists(final):  # the same step saved before (a rerun): replace it whole
            shutil.rmtree(final)
        os.replace(staging, final)
        for old in list_checkpoints(run_dir)[:-keep_last]:
            shutil.rmtree(old)
    _barrier()
    return final


def read_state(checkpoint: str) -> dict:
    try:
        with open(os.path.join(checkpoint, "state.json"), encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, json.JSONDecodeError) as error:
        raise CheckpointError(
            f"{checkpoint} has no readable state.json ({error}); pass an earlier checkpoint or start a new run"
        ) from error


def load_weights(checkpoint: str, model: torch.nn.Module) -> None:
    """Model weights only (export, fine-tuning, evaluation)."""
    path = os.path.join(checkpoint, "model.safetensors")
    if not os.path.exists(path):
        raise CheckpointError(f"no model.safetensors in {checkpoint}: not a checkpoint directory")
    try:
        missing, unexpected = load_model(model, path, strict=False)
    except RuntimeError as error:
        raise CheckpointError(
            f"{path} does not fit this model ({error}); was it trained with another variant or vocabulary?"
        ) from error
    if missing or unexpected:
        raise CheckpointError(
            f"{path} does not fit this model: missing {sorted(missing)[:5]}, "
            f"unexpected {sorted(unexpected)[:5]}; was it trained with another variant?"
        )


def load_checkpoint(
    checkpoint: str, model: torch.nn.Module, optimizer, scheduler, scaler: torch.amp.GradScaler | None = None
) -> tuple[int, DataPosition]:
    """Restore model, optimizer, scheduler, loss scaler and this rank's RNG; returns (step, data position)."""
    rank = dist.get_rank() if dist.is_available() and dist.is_initialized() else 0
    state = read_state(checkpoint)
    if "position" not in state:
        raise CheckpointError(
            f"{checkpoint} was written before data positions were independent of the world size; resume it with "
            "the version that wrote it, or start a new run"
        )
    load_weights(checkpoint, model)
    shared = torch.load(os.path.join(checkpoint, "optimizer.pt"), map_location="cpu", weights_only=True)
    optimizer.load_state_dict(shared["optimizer"])
    scheduler.load_state_dict(shared["scheduler"])
    if scaler is not None and shared.get("scaler"):
        scaler.load_state_dict(shared["scaler"])
    own_path = os.path.join(checkpoint, f"rank-{rank:05d}.pt")
    if os.path.exists(own_path):
        own = torch.load(own_path, map_location="cpu", weights_only=True)
        torch.set_rng_state(own["rng"]["torch"])
        if "cuda" in own["rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(own["rng"]["cuda"])
    else:  # a rank the saving run did not have
        torch.manual_seed(int(state["step"]) * 1_000_003 + rank)
    return int(state["step"]), DataPosition.from_json(state["position"])


def locate_run(path: str) -> tuple[str, str]:
    """(run directory, checkpoint directory) for a run directory (its latest checkpoint) or a checkpoint."""
    if os.path.exists(os.path.join(path, "state.json")):
        return os.path.dirname(os.path.dirname(os.path.abspath(path))), path
    if not os.path.exists(os.path.join(path, "config.json")):
        raise CheckpointError(f"{path} is neither a run directory (config.json) nor a checkpoint (state.json)")
    checkpoint = latest_checkpoint(path)
    if checkpoint is None:
        raise CheckpointError(f"{path} has no complete checkpoint yet: train it (ambert train) first")
    return path, checkpoint


def load_run_model(path: str):
    """(model with the checkpoint's weights, in eval mode, run directory, checkpoint directory)."""
    from trainer.config import read_config
    from trainer.model import AmbertModel

    run_dir, checkpoint = locate_run(path)
    model = AmbertModel(read_config(os.path.join(run_dir, "config.json")).model)
    load_weights(checkpoint, model)
    return model.eval(), run_dir, checkpoint
