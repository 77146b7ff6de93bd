"""The whole phrase pipeline: outputs, scoring rules, determinism across workers and runners, bad input."""

from __future__ import annotations

import gzip
import json
import math
import random
import shutil
from pathlib import Path

import kenlm
import pyarrow.parquet as pq
import pytest

from pipelines.phrase_scoring import (
    backward_dependency,
    boundary_words,
    cohesion,
    context_entropies,
    drop_dominated,
    required_cohesion,
    t_score,
    word_dependencies,
)
from tests.pipelines.conftest import run_phrases
from vocab.phrase_dictionary import PhraseEntry, read_phrase_tsv

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


def write_rules_corpus(path: Path, lines: int = 4000, seed: int = 11) -> Path:
    """Random sentences with planted units, each at the same rate: a name ("new york"), a pair of
    frequent, mutually dependent function words ("can be"), a determiner-led pair ("the lord": "lord"
    follows only "the"), and "grand theft auto", whose prefix "grand theft" rarely occurs alone.
    "the", "of", "and", then "be" and "can" are the most frequent words (together 40% of the words)."""
    rng = random.Random(seed)
    units = [("the",), ("of",), ("and",), ("be",), ("can",), ("can", "be"), ("new", "york")]
    units += [("the", "lord"), ("grand", "theft", "auto"), ("grand", "theft")]
    weights = [0.21, 0.1, 0.078, 0.008, 0.004, 0.004, 0.004, 0.004, 0.004, 0.0004]
    fillers = [(f"w{i}",) for i in range(300)]
    units += fillers
    weights += [(1 - sum(weights)) / len(fillers)] * len(fillers)
    with open(path, "w", encoding="utf-8") as out:
        for _ in range(lines):
            words = [word for unit in rng.choices(units, weights, k=rng.randint(8, 20)) for word in unit]
            out.write(" ".join(words).capitalize() + ".\n")
    return path


@pytest.fixture(scope="module")
def rules_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("rules")
    corpus = write_rules_corpus(work / "planted.txt")
    stats = run_phrases([corpus], work / "out", min_count=5)
    return work / "out", stats


def ngram_counts(out: Path) -> dict[str, int]:
    counts = {}
    for part in sorted((out / "ngrams").iterdir()):
        table = pq.read_table(part).to_pydict()
        counts.update(zip(table["ngram"], table["count"], strict=True))
    return counts


def test_scoring_rules_on_a_planted_corpus(rules_run):
    out, stats = rules_run
    kept = {e.phrase for e in read_phrase_tsv(str(out / "phrases.tsv"))}
    counts = ngram_counts(out)
    york = counts["new york"]
    for pair in ("can be", "the lord"):  # as frequent as the name, yet rejected
        assert 0.7 * york < counts[pair] < 1.4 * york, pair
    assert "new york" in kept and "can be" not in kept and "the lord" not in kept
    model = kenlm.Model(str(out / "lm.binary"))
    tokens = sum(count for ngram, count in counts.items() if " " not in ngram)
    # "can be" is cohesive enough for rule 1; only its boundary words reject it
    assert cohesion(model, counts["can be"], counts, "can be", tokens) > 1.5
    unigrams = {g: c for g, c in counts.items() if " " not in g}
    entropies = context_entropies(unigrams, [(g, c) for g, c in counts.items() if g.count(" ") == 1])
    starts, ends = boundary_words(unigrams, entropies, 0.4, 4.0)
    assert {"can", "the"} <= starts and "be" in ends and not {"new", "york", "lord", "grand"} & (starts | ends)
    # "lord" depends on "the" (forward), but "the" does not predict "lord" (backward)
    assert min(word_dependencies(model, ["the", "lord"])) > 1.5
    assert backward_dependency(counts["the lord"], counts, "the lord", tokens) < 1.5
    # the 3-word name dominates its 2-word prefix and suffix, which leave the dictionary
    assert "grand theft auto" in kept and "grand theft" not in kept and "theft auto" not in kept
    assert counts["grand theft auto"] > 0.5 * counts["grand theft"]
    rejected = stats["phrases"]["rejected"]
    assert rejected["boundary_word"] >= 1 and rejected["dominated"] >= 2


def test_rule_functions():
    unigrams = {"the": 50, "of": 30, "new": 10, "york": 10}
    entropies = {"the": (5.0, 5.0), "of": (5.0, 1.0), "new": (5.0, 5.0), "york": (5.0, 5.0)}
    boundary = boundary_words(unigrams, entropies, 0.6, 4.0)
    assert boundary == (frozenset({"the"}), frozenset({"the", "of"}))  # "of" is followed by one word
    boundary = (frozenset({"the", "of"}), frozenset({"the", "of"}))
    assert required_cohesion("new york", boundary, 1.5, 1.0) == 1.5
    assert required_cohesion("the york", boundary, 1.5, 1.0) == 2.5
    assert required_cohesion("of the", boundary, 1.5, 1.0) == 3.5
    counts = {"a": 100, "b": 100, "a b": 40, "b c": 30, "c": 30, "a b c": 30}
    assert t_score(40, counts, "a b", 10_000) == pytest.approx((40 - 1) / math.sqrt(40))
    entropies = context_entropies({"a": 100, "b": 100, "c": 30}, [("a b", 40), ("b c", 30)])
    assert entropies["a"][1] == pytest.approx(math.log2(100) - 40 * math.log2(40) / 100)
    assert entropies["c"] == pytest.approx((math.log2(30) - math.log2(30), math.log2(30)))
    entries = [PhraseEntry("a b", 2, 40, 1.0), PhraseEntry("b c", 2, 30, 1.0), PhraseEntry("a b c", 3, 30, 1.0)]
    assert [e.phrase for e in drop_dominated(entries, 0.5)] == ["a b c"]  # 30 >= 0.5 * 40 and 0.5 * 30
    assert [e.phrase for e in drop_dominated(entries, 0.8)] == ["a b", "a b c"]  # 30 < 0.8 * 40


def test_two_workers_and_rerun_give_identical_outputs(phrases_run, en_small_corpus, tmp_path):
    reference, _ = phrases_run
    out, kenlm_temp = tmp_path / "two", tmp_path / "kenlm-temp"
    kenlm_temp.mkdir()
    run_phrases(
        [en_small_corpus],
        out,
        ["--direct_num_workers", "2", "--direct_running_mode", "multi_processing"],
        min_count=3,
        kenlm_temp_dir=str(kenlm_temp),
    )
    assert list(kenlm_temp.iterdir()) == []  # lmplz's -T files and the ARPA went there and were cleaned up
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


def test_bad_options_are_refused(tmp_path):
    with pytest.raises(ValueError, match="--order must be between 2 and 6"):
        run_phrases([Path("data/en")], tmp_path / "out", order=9)
    with pytest.raises(ValueError, match="--kenlm-temp-dir .*nowhere is not a directory"):
        run_phrases([Path("data/en")], tmp_path / "out", kenlm_temp_dir=str(tmp_path / "nowhere"))


def test_candidates_need_letters_in_every_word():
    from pipelines.phrase_scoring import is_candidate

    assert is_candidate("new york") and is_candidate("r2 d2")
    assert not is_candidate("york") and not is_candidate("00 00") and not is_candidate("│ │")
    assert not is_candidate("isbn 978")
