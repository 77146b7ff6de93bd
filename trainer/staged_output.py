"""Directories written whole: build the content beside the destination, then swap it in, so a reader (or a killed
run) sees the old directory or the new one, never half of one.

    with staged_directory("out/ft") as staging:
        save_model(model, os.path.join(staging, "model.safetensors"))
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def staged_directory(out: str) -> Iterator[str]:
    """Yields an empty `OUT.partial` directory; when the block ends without an error it replaces `out`."""
    out = out.rstrip("/")
    staging, previous = out + ".partial", out + ".previous"
    shutil.rmtree(staging, ignore_errors=True)  # left by a killed run
    os.makedirs(staging)
    yield staging
    if os.path.isdir(out):
        shutil.rmtree(previous, ignore_errors=True)
        os.replace(out, previous)
        os.replace(staging, out)
        shutil.rmtree(previous)
    else:
        os.replace(staging, out)
