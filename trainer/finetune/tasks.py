"""The sequence-level task types by name (classify, regress, choice); span extraction is trainer.finetune.span."""

from __future__ import annotations

KINDS = ("classify", "regress", "choice", "span")


def task_kind(name: str):
    """The TASK object of trainer.finetune.<name> (classify, regress or choice)."""
    if name == "classify":
        from trainer.finetune.classify import TASK
    elif name == "regress":
        from trainer.finetune.regress import TASK
    elif name == "choice":
        from trainer.finetune.choice import TASK
    else:
        raise ValueError(f"task type {name!r} is not one of classify, regress, choice")
    return TASK
