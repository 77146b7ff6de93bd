"""Checkpoints of a run: everything needed to continue exactly, written atomically, the last K kept.

    RUN/checkpoints/step-00000100/  model.safetensors   weights (safetensors; tied weights stored once)
                                    optimizer.pt        optimizer, scheduler, fp16 loss scaler (rank 0)
                                    rank-00000.pt       that rank's RNG states and data position
                                    state.json          step, world size, data position (readable)
    save_checkpoint(...) from every rank; latest_checkpoint(run) / load_checkpoint(...) to resume.
A checkpoint directory is written under a temporary name and renamed when complete, so a killed run
leaves either the previous checkpoint or the new one, never half of one. torch.load uses weights_only=True.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass

import torch
import torch.distributed as dist
from safetensors.torch import load_model, save_model

CHECKPOINTS = "checkpoints"
_STEP_DIR = re.compile(r"^step-(\d{8})$")


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used to resume (names the directory and what to do)."""


@dataclass(frozen=True)
class DataPosition:
    """Where the loader stands: `batches` batches of `epoch` already consumed (the same on every rank)."""

    epoch: int = 0
    batches: int = 0


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
        {"rng": _rng_state(), "position": [position.epoch, position.batches]},
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
        state = {"step": step, "world_size": world, "epoch": position.epoch, "batches": position.batches}
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
    world = dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
    state = read_state(checkpoint)
    if state["world_size"] != world:
        raise CheckpointError(
            f"{checkpoint} was written by {state['world_size']} ranks, this run has {world}: "
            f"resume with --nproc {state['world_size']} (the data position depends on it)"
        )
    load_weights(checkpoint, model)
    shared = torch.load(os.path.join(checkpoint, "optimizer.pt"), map_location="cpu", weights_only=True)
    optimizer.load_state_dict(shared["optimizer"])
    scheduler.load_state_dict(shared["scheduler"])
    if scaler is not None and shared.get("scaler"):
        scaler.load_state_dict(shared["scaler"])
    own = torch.load(os.path.join(checkpoint, f"rank-{rank:05d}.pt"), map_location="cpu", weights_only=True)
    torch.set_rng_state(own["rng"]["torch"])
    if "cuda" in own["rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(own["rng"]["cuda"])
    epoch, batches = own["position"]
    return int(state["step"]), DataPosition(int(epoch), int(batches))


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
