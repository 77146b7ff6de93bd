"""The `ambert` command as a user runs it: help, a real run, clear errors, lazy imports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import write_planted_corpus

AMBERT = str(Path(sys.executable).parent / "ambert")


def ambert(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([AMBERT, *args], capture_output=True, text=True, check=False, timeout=300)


def test_help_lists_subcommands():
    result = ambert("--help")
    assert result.returncode == 0 and "phrases" in result.stdout
    assert "--min-count" in ambert("phrases", "--help").stdout


def test_importing_the_cli_does_not_import_beam_or_torch():
    code = "import sys, cli; print(sorted(m for m in ('apache_beam', 'torch') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_phrases_end_to_end_with_beam_flags(tmp_path):
    corpus = write_planted_corpus(tmp_path / "planted.txt", lines=1500)
    out = tmp_path / "out"
    result = ambert(
        "phrases",
        "--corpus",
        str(corpus),
        "--out",
        str(out),
        "--min-count",
        "5",
        "--order",
        "3",
        "--direct_num_workers",
        "1",
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["phrases"] == f"{out}/phrases.tsv"
    assert "new york\t2\t" in (out / "phrases.tsv").read_text()
    stats = json.loads((out / "stats.json").read_text())
    assert stats["options"]["order"] == 3 and stats["options"]["beam_args"] == ["--direct_num_workers", "1"]


def test_missing_corpus_exits_2_naming_the_path(tmp_path):
    result = ambert("phrases", "--corpus", str(tmp_path / "nope.txt"), "--out", str(tmp_path / "o"))
    assert result.returncode == 2
    assert "corpus path not found" in result.stderr and "nope.txt" in result.stderr
    assert "Traceback" not in result.stderr


def test_invalid_option_value_is_refused(tmp_path):
    result = ambert("phrases", "--corpus", "data/en", "--out", str(tmp_path / "o"), "--order", "1")
    assert result.returncode == 2 and "--order must be between 2 and 6" in result.stderr


def test_stray_arguments_are_refused_not_dropped(tmp_path):
    result = ambert(
        "phrases",
        "--corpus",
        "data/en/austen_sample.txt.gz",
        "data/en/enwiki_sample.txt.gz",
        "--out",
        str(tmp_path / "o"),
    )
    assert result.returncode == 2
    assert "unexpected argument 'data/en/enwiki_sample.txt.gz'" in result.stderr
    assert not (tmp_path / "o").exists()
