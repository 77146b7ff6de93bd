"""The `ambert` command as a user runs it: help, a real run, clear errors, lazy imports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import write_planted_corpus
from tests.vocab.conftest import build_en

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


def test_finetune_and_ablation_options_come_from_their_config_dataclasses(tmp_path):
    from trainer.finetune.config import FinetuneConfig

    shown = ambert("finetune", "--help").stdout
    assert "--warmup-ratio" in shown and f"[default: {FinetuneConfig().warmup_ratio}]" in shown
    assert "--json" in ambert("evaluate", "--help").stdout
    result = ambert("ablation", "--out", str(tmp_path / "a"), "--zh-shards", "s", "--pretrain", "a=1", "b=2")
    assert result.returncode == 2 and "--zh-shards, --zh-vocab and --zh-labeled go together" in result.stderr
    result = ambert(
        "ablation",
        "--out",
        str(tmp_path / "a"),
        "--en-shards",
        "s",
        "--en-vocab",
        "v",
        "--en-labeled",
        "l",
        "--models",
        "bert,bort",
    )
    assert result.returncode == 2 and "unknown model(s) bort" in result.stderr


def test_several_values_after_corpus_equal_repeated_flags(tmp_path):
    corpus = write_planted_corpus(tmp_path / "planted.txt", lines=900).read_text().splitlines(keepends=True)
    parts = [tmp_path / f"part{i}.txt" for i in range(3)]
    for i, part in enumerate(parts):
        part.write_text("".join(corpus[i * 300 : (i + 1) * 300]))
    options = ("--min-count", "3", "--order", "2", "--num-shards", "2")
    spread = ambert("phrases", "--corpus", *map(str, parts), "--out", str(tmp_path / "spread"), *options)
    repeated = ambert(
        "phrases", *(a for p in parts for a in ("--corpus", str(p))), "--out", str(tmp_path / "rep"), *options
    )
    assert spread.returncode == 0 and repeated.returncode == 0, spread.stderr + repeated.stderr
    for name in ("phrases.tsv",):
        assert (tmp_path / "spread" / name).read_bytes() == (tmp_path / "rep" / name).read_bytes()
    stats = [json.loads((tmp_path / d / "stats.json").read_text()) for d in ("spread", "rep")]
    assert stats[0]["lines"] == stats[1]["lines"] and stats[0]["lines"]["read"] == 900


def test_a_misspelled_flag_is_refused_naming_the_closest_option(tmp_path):
    result = ambert(
        "shard", "build", "--vocab", "v", "--corpus", "data/en", "--out", str(tmp_path / "s"), "--max-seq-lenn", "64"
    )
    assert result.returncode == 2 and not (tmp_path / "s").exists()
    assert result.stderr.strip() == (
        "error: no such option --max-seq-lenn: did you mean --max-seq-len? (other flags must be Beam pipeline options)"
    )
    result = ambert(
        "phrases",
        "--corpus",
        "data/en",
        "--out",
        str(tmp_path / "p"),
        "--runner",
        "DaskRunner",
        "--dask_client_adress",
        "h:1",
    )
    assert result.returncode == 2 and "did you mean --dask_client_address?" in result.stderr


def test_beam_flags_pass_through_to_the_pipeline(tmp_path):
    """Flags of Beam's options (direct runner, Flink, Dataflow, Dask) get past the check: the run fails later."""
    for flags in (
        ["--direct_num_workers", "2"],
        ["--flink_master=h:1"],
        ["--runner", "DaskRunner", "--dask_client_address", "h:1"],
    ):
        result = ambert(
            "shard",
            "build",
            "--vocab",
            str(tmp_path / "none"),
            "--corpus",
            "data/en",
            "--out",
            str(tmp_path / "s"),
            *flags,
        )
        assert result.returncode == 2 and "no vocab artifact at" in result.stderr, result.stderr


def test_stray_words_are_refused_not_dropped(tmp_path):
    result = ambert(
        "shard", "build", "--vocab", "v", "--corpus", "data/en", "--out", str(tmp_path / "o"), "--nsp", "extra"
    )
    assert result.returncode == 2 and "unexpected argument 'extra'" in result.stderr


def test_messages_keep_their_brackets(tmp_path):
    """Rich markup must not eat `[pkuseg]` (the install hint of the optional segmenter)."""
    result = ambert(
        "vocab", "build", "--lang", "zh", "--segmenter", "pkuseg", "--corpus", "data/zh", "--out", str(tmp_path / "v")
    )
    if "pkuseg is not installed" not in result.stderr:
        print("pkuseg is installed here: the hint is not printed")  # the optional extra
        return
    assert result.returncode == 2 and "'.[pkuseg]'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr  # Beam's logged traceback only with -v


def test_an_unexpected_error_is_a_hint_and_its_traceback_only_with_verbose(tmp_path):
    artifact = tmp_path / "artifact"
    build_en(artifact)
    (artifact / "stats.json").write_text("{not json")  # read_artifact does not expect this: a bug path today
    quiet = ambert("vocab", "info", str(artifact))
    assert quiet.returncode == 1 and "Traceback" not in quiet.stderr
    assert "unexpected error JSONDecodeError" in quiet.stderr and "rerun with `ambert -v ...`" in quiet.stderr
    verbose = ambert("-v", "vocab", "info", str(artifact))
    assert verbose.returncode == 1 and "Traceback" in verbose.stderr


def test_a_multi_process_run_prints_its_own_summary_only_and_beam_logs_with_verbose(tmp_path):
    """The demo's Beam steps: 2 worker processes; without -v no Beam or worker log line reaches the terminal."""
    corpus = write_planted_corpus(tmp_path / "planted.txt", lines=600)
    flags = [
        "--min-count",
        "3",
        "--order",
        "2",
        "--direct_num_workers",
        "2",
        "--direct_running_mode",
        "multi_processing",
    ]
    quiet = ambert("phrases", "--corpus", str(corpus), "--out", str(tmp_path / "quiet"), *flags)
    assert quiet.returncode == 0, quiet.stderr
    printed = quiet.stderr.strip().splitlines()
    assert printed[-1].startswith("ambert phrases: lines read 600, kept 600"), printed
    # the workers (pipelines/beam_worker.py) print nothing: not Beam's import-time "apitools not found" nor the
    # harness's "Logging handler created" (Beam's own worker prints both, in each process, before its log level)
    assert len(printed) == 1, printed
    assert len(quiet.stdout.strip().splitlines()) == 1  # the JSON summary
    verbose = ambert("-v", "phrases", "--corpus", str(corpus), "--out", str(tmp_path / "verbose"), *flags)
    assert verbose.returncode == 0 and "INFO apache_beam" in verbose.stderr
    assert "Worker: severity: INFO" in verbose.stderr and "Logging handler created" in verbose.stderr  # via the runner
