"""The locked set-up: requirements.lock covers pyproject.toml, and a broken lock is refused before anything installs."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements.lock"


def check_lock(lock: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, str(ROOT / "scripts" / "check_install.py"), "--lock-only", str(lock)]
    return subprocess.run(command, capture_output=True, text=True, check=False, timeout=60)


def test_the_lock_pins_every_declared_dependency_with_hashes():
    result = check_lock(LOCK)
    assert result.returncode == 0, result.stderr
    text = LOCK.read_text()
    for pin in ("torch==2.13.0", "thulac==0.2.2", "gensim==4.4.0", "apache-beam==2.77.0", "pip-tools=="):
        assert pin in text
    assert text.count("==") <= text.count("--hash=sha256:")


def test_a_lock_missing_a_dependency_or_outside_its_range_is_refused(tmp_path):
    text = LOCK.read_text()
    missing = tmp_path / "missing.lock"
    missing.write_text(re.sub(r"(?m)^gensim==.*$", "", text))
    result = check_lock(missing)
    assert result.returncode == 1 and "does not pin gensim (from pyproject.toml): run `make lock`" in result.stderr
    outside = tmp_path / "outside.lock"
    outside.write_text(re.sub(r"(?m)^jieba==\S+", "jieba==0.39", text))
    result = check_lock(outside)
    assert result.returncode == 1 and "pins jieba==0.39, outside pyproject.toml's ==0.42.1" in result.stderr


def test_pip_refuses_a_tampered_hash_or_a_version_that_does_not_exist(tmp_path):
    """make setup's own pip command (--require-hashes -r LOCK), dry-run, on one small pinned package."""
    block = re.search(r"(?ms)^annotated-doc==\S+ \\\n(?:    --hash=\S+(?: \\)?\n)+", LOCK.read_text())[0]
    tampered = tmp_path / "tampered.lock"
    tampered.write_text(re.sub(r"sha256:[0-9a-f]{64}", "sha256:" + "0" * 64, block))
    nonexistent = tmp_path / "nonexistent.lock"
    nonexistent.write_text(re.sub(r"==\S+", "==999.0.0", block, count=1))
    for lock, message in ((tampered, "THESE PACKAGES DO NOT MATCH THE HASHES"), (nonexistent, "999.0.0")):
        command = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--no-deps"]
        result = subprocess.run(
            [*command, "--require-hashes", "-r", str(lock)], capture_output=True, text=True, check=False, timeout=120
        )
        assert result.returncode != 0 and message in result.stderr + result.stdout
