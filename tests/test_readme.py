"""README's walk-through runs as written: every `bash` block, in order, in a fresh directory holding the repository's
data/ and .venv/ (so out/ starts empty), except `make setup` (the suite runs inside it) and blocks marked
`<!-- not run by tests/test_readme.py: NEEDS -->`, which must say what they need."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOT_RUN = "<!-- not run by tests/test_readme.py: "


def readme_blocks() -> list[str]:
    """The bash blocks of README.md that run, in order."""
    blocks, previous = [], ""
    for match in re.finditer(r"(?ms)^```bash\n(.*?)^```", (ROOT / "README.md").read_text(encoding="utf-8")):
        before = match.string[: match.start()].rstrip().splitlines()[-1]
        if before.startswith(NOT_RUN):
            assert len(before) > len(NOT_RUN) + 10, f"a skipped block must say what it needs: {before}"
            continue
        if match[1].strip() != "make setup":
            blocks.append(match[1])
        previous = match[1]
    assert previous, "README has no runnable block"
    return blocks


def test_readme_walk_through_runs_in_order(tmp_path):
    for name in ("data", ".venv"):
        (tmp_path / name).symlink_to(ROOT / name)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for number, block in enumerate(readme_blocks(), start=1):
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", block],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            env=env,
            check=False,
            timeout=900,
        )
        assert result.returncode == 0, f"README block {number} failed:\n{block}\n{result.stdout}\n{result.stderr}"
    assert (tmp_path / "out" / "ft-zh" / "finetune.json").exists()
    assert (tmp_path / "out" / "run-zh-hf" / "config.json").exists()
