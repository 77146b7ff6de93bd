"""docs/cli.md is the commands' own --help, regenerated: a flag added to a config dataclass must appear there."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_docs_cli_md_is_current():
    command = [sys.executable, str(ROOT / "scripts" / "cli_reference.py"), "--check"]
    result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)
    assert result.returncode == 0, result.stderr
    text = (ROOT / "docs" / "cli.md").read_text()
    for flag in ("--max-seq-len", "--min-dependency", "--epochs", "--seeds", "optim.lr", "--init-from"):
        assert flag in text
