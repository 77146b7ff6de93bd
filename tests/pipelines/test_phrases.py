"""The whole phrase pipeline: outputs, scoring, determinism across workers and runners, bad input."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import kenlm
import pytest

from pipelines.phrase_scoring import score_candidate
from tests.conftest import write_planted_corpus
from tests.pipelines.conftest import run_phrases
from vocab.phrase_dictionary import read_phrase_tsv

OUTPUT_FILES = ("lm.arpa", "lm.binary", "phrases.tsv", "stats.json")


def test_outputs_and_accounting(phrases_run):
    out, stats = phrases_run
    for name in OUTPUT_FILES:
        assert (out / name).stat().st_size > 0, name
    assert not (out / ".work").exists()
    assert json.loads((out / "stats.json").read_text()) == stats
    lines = stats["lines"]
    assert lines["read"] == 3000 and lines["read"] == lines["kept"] + sum(lines["dropped"].values())
    assert stats["tokens"] > 100_000
    assert set(stats["ngrams_distinct"]) == {"1", "2", "3", "4"}
    assert stats["options"]["order"] == 4 and stats["timings_seconds"]["kenlm"] > 0
    entries = read_phrase_tsv(str(out / "phrases.tsv"))
    assert len(entries) == stats["phrases"]["written"] > 100
    assert [e.score for e in entries] == sorted((e.score for e in entries), reverse=True)
    assert all(e.count >= 3 and 2 <= e.n <= 4 for e in entries)
    assert "new york" in {e.phrase for e in entries}


def test_planted_phrase_ranks_above_frequent_independent_pair(tmp_path):
    corpus = write_planted_corpus(tmp_path / "planted.txt")
    stats = run_phrases([corpus], tmp_path / "out", min_count=5, min_dependency=-10.0)
    ranked = [e.phrase for e in read_phrase_tsv(str(tmp_path / "out" / "phrases.tsv"))]
    assert ranked.index("new york") < ranked.index("of the")
    model = kenlm.Model(str(tmp_path / "out" / "lm.binary"))
    counts = {e.phrase: e.count for e in read_phrase_tsv(str(tmp_path / "out" / "phrases.tsv"))}
    assert counts["of the"] > counts["new york"]  # more frequent, yet less dependent
    york, _ = score_candidate(model, "new york", counts["new york"])
    the, _ = score_candidate(model, "of the", counts["of the"])
    assert york > 1.5 > the
    assert stats["phrases"]["passing"] >= 2


def test_default_threshold_rejects_independent_pair(tmp_path):
    corpus = write_planted_corpus(tmp_path / "planted.txt")
    run_phrases([corpus], tmp_path / "out", min_count=5)
    phrases = {e.phrase for e in read_phrase_tsv(str(tmp_path / "out" / "phrases.tsv"))}
    assert "new york" in phrases and "of the" not in phrases


def test_two_workers_and_rerun_give_identical_outputs(phrases_run, en_small_corpus, tmp_path):
    reference, _ = phrases_run
    out = tmp_path / "two"
    run_phrases(
        [en_small_corpus], out, ["--direct_num_workers", "2", "--direct_running_mode", "multi_processing"], min_count=3
    )
    run_phrases([en_small_corpus], out, min_count=3)  # rerun into the same directory
    for name in ("phrases.tsv", "lm.arpa"):
        assert (out / name).read_bytes() == (reference / name).read_bytes(), name
    for part in sorted((reference / "ngrams").iterdir()):
        assert (out / "ngrams" / part.name).read_bytes() == part.read_bytes(), part.name


def test_dask_runner_on_local_cluster_gives_identical_outputs(phrases_run, en_small_corpus, tmp_path):
    distributed = pytest.importorskip("distributed", reason="dask.distributed is a dev dependency")
    reference, _ = phrases_run
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    try:
        out = tmp_path / "dask"
        run_phrases(
            [en_small_corpus],
            out,
            ["--runner", "DaskRunner", "--dask_client_address", cluster.scheduler_address],
            min_count=3,
        )
    finally:
        cluster.close()
    for name in ("phrases.tsv", "lm.arpa"):
        assert (out / name).read_bytes() == (reference / name).read_bytes(), name
    for part in sorted((reference / "ngrams").iterdir()):
        assert (out / "ngrams" / part.name).read_bytes() == part.read_bytes(), part.name


def test_bad_input_is_accounted_for(en_small_corpus, tmp_path):
    corpus = tmp_path / "bad"
    corpus.mkdir()
    shutil.copy(en_small_corpus, corpus / "good.txt.gz")
    (corpus / "bytes.txt").write_bytes(
        b"caf\xe9 in latin-1\n"  # invalid_utf8
        b"abc\x00def\n"  # binary
        b"bell\x07 and \x1b[31m escape\n"  # kept: control characters are removed
        b"   \t \n"  # empty
        b"\x80\x81\xfe\xff\n"  # invalid_utf8
        b"last line without newline"
    )
    (corpus / "empty.txt").write_bytes(b"")
    with open(corpus / "giant.txt", "wb") as giant:  # one 50 MB line
        chunk = b"spam " * 200_000
        for _ in range(50):
            giant.write(chunk)
    (corpus / "records.jsonl").write_text(
        '{"text": "New York is a city."}\n{not json\n{"body": "no text field"}\n\n[1, 2]\n'
    )
    good = gzip.compress(b"a complete line\n" * 5000)
    (corpus / "truncated.txt.gz").write_bytes(good[: len(good) // 2])

    stats = run_phrases([corpus], tmp_path / "out", min_count=3)
    lines = stats["lines"]
    assert lines["dropped"] == {
        "binary": 1,
        "empty": 2,
        "invalid_json": 1,
        "invalid_utf8": 2,
        "no_text_field": 2,
        "too_long": 1,
    }
    assert lines["read"] == lines["kept"] + sum(lines["dropped"].values())
    assert lines["kept"] == 3000 + 2 + 1 + stats_truncated_lines(stats)
    assert stats["files"]["read"] == 6 and stats["files"]["unreadable"] == 1
    assert "truncated.txt.gz" in stats["files"]["errors"][0]
    assert (tmp_path / "out" / "phrases.tsv").exists()


def stats_truncated_lines(stats) -> int:
    """Lines recovered from the truncated archive (before the damage): a positive number."""
    recovered = stats["lines"]["read"] - (3000 + 6 + 1 + 5)
    assert 0 < recovered < 5000
    return recovered


def test_missing_corpus_is_a_clear_error(tmp_path):
    from pipelines.files import CorpusError

    with pytest.raises(CorpusError, match="corpus path not found: .*nowhere.txt"):
        run_phrases([tmp_path / "nowhere.txt"], tmp_path / "out")
    assert not (tmp_path / "out" / "stats.json").exists()


def test_bad_order_is_refused(tmp_path):
    with pytest.raises(ValueError, match="--order must be between 2 and 6"):
        run_phrases([Path("data/en")], tmp_path / "out", order=9)


def test_candidates_need_letters_in_every_word():
    from pipelines.phrase_scoring import is_candidate

    assert is_candidate("new york") and is_candidate("r2 d2")
    assert not is_candidate("york") and not is_candidate("00 00") and not is_candidate("│ │")
    assert not is_candidate("isbn 978")
