"""The shard pipeline: WebDataset-readable output, determinism across workers and reruns, accounting,
bad input, and `ambert shard verify` catching damage."""

from __future__ import annotations

import collections
import gzip
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest
import webdataset as wds
from fsspec.implementations.memory import MemoryFile, MemoryFileSystem

from pipelines.documents import DocumentTokenizer, RawDocument, Tally
from pipelines.pretraining_examples import (
    FullSentencePacker,
    Segment,
    contiguous_examples,
    pair_examples,
    truncate_segment,
)
from pipelines.shards import ShardConfig, run
from tests.vocab.conftest import build_en, build_zh
from vocab.aligned_codec import ShardExample, alignment_faults, decode_sample, member_index, write_tar
from vocab.artifact import read_vocab_lines
from vocab.shard_set import (
    ShardSetError,
    index_name,
    read_manifest,
    shard_examples,
    shard_urls,
    verify_shard_set,
)

REPO = Path(__file__).resolve().parents[2]
AMBERT = str(Path(sys.executable).parent / "ambert")
EN_OPTIONS = {"samples_per_shard": 100, "max_seq_len": 64, "pool_docs": 40}  # 5 NSP pools, 8 shards


def first_lines(path: Path, count: int) -> list[str]:
    with gzip.open(path, "rt", encoding="utf-8") as source:
        return [line.rstrip("\n") for _, line in zip(range(count), source, strict=False)]


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("shard-artifacts")
    build_en(root / "en")
    build_zh(root / "zh")
    return {"en": str(root / "en"), "zh": str(root / "zh")}


@pytest.fixture(scope="session")
def en_corpus(tmp_path_factory) -> Path:
    """Blank-line separated documents of 1-4 paragraphs (.txt.gz), plus a .jsonl file."""
    root = tmp_path_factory.mktemp("shard-corpus")
    rng = random.Random(3)
    lines = first_lines(REPO / "data" / "en" / "enwiki_sample.txt.gz", 240)
    lines += first_lines(REPO / "data" / "en" / "austen_sample.txt.gz", 160)
    documents, position = [], 0
    while position < len(lines) - 20:
        size = rng.randint(1, 4)
        documents.append("\n".join(lines[position : position + size]))
        position += size
    with gzip.open(root / "paragraphs.txt.gz", "wt", encoding="utf-8") as out:
        out.write("\n\n".join(documents) + "\n")
    with open(root / "records.jsonl", "w", encoding="utf-8") as out:
        for line in lines[position:]:
            out.write(json.dumps({"text": line}) + "\n")
    return root


def shard(artifact: str, corpus, out: Path, beam_args=(), **options) -> dict:
    cfg = ShardConfig(vocab=artifact, corpus=tuple(str(c) for c in corpus), out=str(out), **options)
    manifest, _seconds = run(cfg, list(beam_args))
    return manifest


@pytest.fixture(scope="session")
def en_run(artifacts, en_corpus, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("shards") / "en"
    return out, shard(artifacts["en"], [en_corpus], out, **EN_OPTIONS)


def read_all(out: Path, manifest: dict) -> list:
    urls = shard_urls(str(out), expect_vocab_id=manifest["vocab"]["id"])
    return list(wds.WebDataset(urls, shardshuffle=False).map(decode_sample))


def test_shards_are_readable_by_plain_webdataset(en_run):
    out, manifest = en_run
    assert json.loads((out / "manifest.json").read_text()) == manifest
    listed = [name for s in manifest["shards"] for name in (s["name"], s["index"])]
    assert sorted(p.name for p in out.iterdir()) == sorted(["manifest.json", *listed])
    assert [s["name"] for s in manifest["shards"]] == [f"shard-{i:05d}.tar" for i in range(len(manifest["shards"]))]
    assert [s["index"] for s in manifest["shards"]] == [f"shard-{i:05d}.idx" for i in range(len(manifest["shards"]))]
    examples = read_all(out, manifest)
    totals = manifest["totals"]
    assert len(examples) == totals["samples"] == manifest["accounting"]["examples"]["made"] > 100
    assert sum(len(e.fine_ids) for e in examples) == totals["fine_tokens"]
    assert sum(len(e.coarse_ids) for e in examples) == totals["coarse_tokens"] < totals["fine_tokens"]
    assert len({e.key for e in examples}) == len(examples)
    assert set(totals["nsp_labels"]) == {"0", "1"}
    for example in examples:
        assert alignment_faults(example) == []
        assert len(example.fine_ids) <= 64 and example.nsp_label in (0, 1)
        assert example.fine_type[0] == 0 and example.fine_type[-1] == 1  # [CLS] a [SEP] b [SEP]
    assert any(np.any(e.coarse_ids >= manifest["vocab"]["sizes"]["fine"]) for e in examples)  # phrases
    assert verify_shard_set(str(out)) == ([], len(examples))


def test_offsets_point_back_into_the_document(en_run, en_corpus, artifacts):
    out, manifest = en_run
    records = (en_corpus / "records.jsonl").read_bytes()
    fine_vocab = read_vocab_lines(f"{artifacts['en']}/fine/vocab.txt")
    matched = checked = 0
    for example in read_all(out, manifest):
        for segment, doc_id in ((0, example.doc_id), (1, example.next_doc_id)):
            name, _, offset = doc_id.rpartition(":")  # the byte offset of the document's first line
            if name != "records.jsonl":
                continue
            text = json.loads(records[int(offset) :].split(b"\n", 1)[0])["text"].lower()
            for token, (start, end), kind in zip(
                example.fine_ids, example.fine_offsets, example.fine_type, strict=True
            ):
                if kind == segment and end > start:
                    checked += 1
                    matched += text[start:end] == fine_vocab[token].removeprefix("##")
    assert checked > 1000 and matched / checked > 0.98


def test_accounting_covers_every_document(en_run):
    _out, manifest = en_run
    accounting = manifest["accounting"]
    documents = accounting["documents"]
    assert documents["read"] == documents["kept"] + sum(documents["dropped"].values()) > 50
    assert accounting["files"] == {"given": 2, "read": 2, "unreadable": 0, "errors": []}
    assert manifest["options"]["corpus_files"] == ["paragraphs.txt.gz", "records.jsonl"]
    assert manifest["vocab"]["lang"] == "en" and len(manifest["vocab"]["id"]) == 64


def test_identical_bytes_with_two_workers_and_on_rerun(en_run, artifacts, en_corpus, tmp_path):
    reference, manifest = en_run
    out = tmp_path / "two"
    shard(
        artifacts["en"],
        [en_corpus],
        out,
        ["--direct_num_workers", "2", "--direct_running_mode", "multi_processing"],
        **EN_OPTIONS,
    )
    assert sorted(os.listdir(out)) == sorted(os.listdir(reference))
    for name in os.listdir(reference):
        assert (out / name).read_bytes() == (reference / name).read_bytes(), name
    shard(artifacts["en"], [en_corpus], out, **EN_OPTIONS)  # rerun in place
    for name in os.listdir(reference):
        assert (out / name).read_bytes() == (reference / name).read_bytes(), name
    other = shard(artifacts["en"], [en_corpus], tmp_path / "seed", **{**EN_OPTIONS, "seed": 7})
    assert other["shards"][0]["sha256"] != manifest["shards"][0]["sha256"]


def test_splits_and_runs_never_change_contiguous_examples(artifacts, en_corpus, tmp_path):
    """Plain files are read in splits and examples pass through sorted runs; how finely either is cut
    changes no byte of the shards (pairs differ only because NSP pools stay inside a split)."""
    corpus = tmp_path / "plain"
    corpus.mkdir()
    (corpus / "paragraphs.txt").write_bytes(gzip.decompress((en_corpus / "paragraphs.txt.gz").read_bytes()))
    shutil.copy(en_corpus / "records.jsonl", corpus)
    options = {**EN_OPTIONS, "nsp": False}
    whole = shard(artifacts["en"], [corpus], tmp_path / "whole", **options)
    cut = shard(artifacts["en"], [corpus], tmp_path / "cut", split_bytes=1500, run_bytes=20_000, **options)
    assert cut["shards"] == whole["shards"] and len(whole["shards"]) > 3
    assert cut["accounting"] == whole["accounting"] and cut["totals"] == whole["totals"]
    assert whole["accounting"]["documents"]["read"] > 100 and cut["options"]["split_bytes"] == 1500
    paired = shard(artifacts["en"], [corpus], tmp_path / "paired", split_bytes=1500, **EN_OPTIONS)
    assert paired["accounting"]["documents"] == whole["accounting"]["documents"]
    assert verify_shard_set(str(tmp_path / "paired")) == ([], paired["totals"]["samples"])


@pytest.mark.parametrize("kill_when", ["runs", "shards"])
def test_a_killed_build_leaves_no_readable_set_and_a_rerun_completes_it(
    en_run, artifacts, en_corpus, tmp_path, kill_when
):
    """kill -9 once run files (or the first shards) exist: no manifest, so readers refuse the
    directory; the rerun gives the same bytes as an uninterrupted build."""
    reference, _manifest = en_run
    out = tmp_path / "killed"
    command = [
        AMBERT,
        "shard",
        "build",
        "--vocab",
        artifacts["en"],
        "--corpus",
        str(en_corpus),
        "--out",
        str(out),
        "--samples-per-shard",
        "100",
        "--max-seq-len",
        "64",
        "--pool-docs",
        "40",
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pattern = ".work/runs/*.run" if kill_when == "runs" else "shard-*.tar"
    deadline = time.monotonic() + 120
    while not list(out.glob(pattern)) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    process.kill()
    process.wait()
    assert list(out.glob(pattern)), f"the build ended before any {pattern} appeared"
    assert not (out / "manifest.json").exists()
    with pytest.raises(ShardSetError, match="incomplete"):
        read_manifest(str(out))
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert sorted(os.listdir(out)) == sorted(os.listdir(reference))
    for name in os.listdir(reference):
        assert (out / name).read_bytes() == (reference / name).read_bytes(), name


def test_output_to_an_fsspec_url(en_run, artifacts, en_corpus):
    """OUT as a URL Beam has no filesystem for goes through fsspec (memory:// works with the
    in-process runner); the bytes are those of a local build."""
    import fsspec

    reference, manifest = en_run
    url = "memory://ambert-test/shards-en"
    try:
        remote = shard(artifacts["en"], [en_corpus], url, **EN_OPTIONS)
        fs = fsspec.filesystem("memory")
        names = sorted(p.rsplit("/", 1)[1] for p in fs.ls("/ambert-test/shards-en", detail=False))
        assert names == sorted(os.listdir(reference))  # no .work left behind
        for name in names:
            assert fs.cat(f"/ambert-test/shards-en/{name}") == (reference / name).read_bytes(), name
        assert remote == manifest and verify_shard_set(url) == ([], manifest["totals"]["samples"])
    finally:
        fsspec.filesystem("memory").rm("/ambert-test", recursive=True)


class CountingFileSystem(MemoryFileSystem):
    """memory:// that counts, per path, the opens for reading and the read() calls (what each becomes on
    object storage: a request)."""

    protocol = "counting"
    opens: collections.Counter = collections.Counter()
    reads: collections.Counter = collections.Counter()

    @classmethod
    def _strip_protocol(cls, path):
        return super()._strip_protocol(str(path).removeprefix("counting://"))

    def _open(self, path, mode="rb", **kwargs):
        handle = super()._open(path, mode, **kwargs)
        if "r" in mode:
            type(self).opens[path] += 1
            handle.__class__ = _CountedMemoryFile
        return handle


class _CountedMemoryFile(MemoryFile):
    def read(self, *args):
        CountingFileSystem.reads[self.path] += 1
        return super().read(*args)


def test_shard_assembly_io_grows_with_runs_plus_shards(artifacts, en_corpus, tmp_path):
    """Many runs (a split of 1,500 bytes each) and many shards (10 samples each): assembly opens and
    reads the runs O(runs + shards) times, not once per (run, shard)."""
    import fsspec

    corpus = tmp_path / "plain"
    corpus.mkdir()
    (corpus / "paragraphs.txt").write_bytes(gzip.decompress((en_corpus / "paragraphs.txt.gz").read_bytes()))
    fsspec.register_implementation("counting", CountingFileSystem, clobber=True)
    url = "counting://ambert-io/shards"
    options = {**EN_OPTIONS, "nsp": False, "samples_per_shard": 10, "split_bytes": 1500}
    try:
        manifest = shard(artifacts["en"], [corpus], url, **options)
        local = shard(artifacts["en"], [corpus], tmp_path / "local", **options)
    finally:
        fsspec.filesystem("counting").rm("/ambert-io", recursive=True)
    assert manifest == local
    runs = {path for path in CountingFileSystem.opens if path.endswith(".run")}
    shards = manifest["totals"]["shards"]
    assert len(runs) > 30 and shards > 50
    opens = sum(n for path, n in CountingFileSystem.opens.items() if "/.work/runs/" in path)
    reads = sum(n for path, n in CountingFileSystem.reads.items() if "/.work/runs/" in path)
    # a range of every run per group of ceil(runs / 8) shards, plus each run's index once (one worker)
    assert opens <= 8 * shards + 2 * len(runs) and reads <= 2 * opens, (opens, reads, len(runs), shards)
    assert opens + reads < len(runs) * shards / 4  # one open per (run, shard) before: 98 × 83


def test_dask_runner_on_local_cluster_gives_identical_bytes(en_run, artifacts, en_corpus, tmp_path):
    distributed = pytest.importorskip("distributed", reason="dask.distributed is a dev dependency")
    reference, _ = en_run
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    try:
        out = tmp_path / "dask"
        shard(
            artifacts["en"],
            [en_corpus],
            out,
            ["--runner", "DaskRunner", "--dask_client_address", cluster.scheduler_address],
            **EN_OPTIONS,
        )
    finally:
        cluster.close()
    assert sorted(os.listdir(out)) == sorted(os.listdir(reference))
    for name in os.listdir(reference):
        assert (out / name).read_bytes() == (reference / name).read_bytes(), name


def test_chinese_contiguous_examples(artifacts, tmp_path):
    corpus = tmp_path / "zh.txt"
    corpus.write_text("\n".join(first_lines(REPO / "data" / "zh" / "pku199801_sample.txt.gz", 150)) + "\n")
    out = tmp_path / "zh"
    manifest = shard(artifacts["zh"], [corpus], out, nsp=False, docs_per_line=True, max_seq_len=48)
    examples = read_all(out, manifest)
    assert manifest["accounting"]["documents"]["read"] == 150 and manifest["totals"]["nsp_labels"] == {}
    assert all(e.nsp_label == -1 and not e.fine_type.any() and len(e.fine_ids) <= 48 for e in examples)
    assert any(np.any(e.coarse_ids >= manifest["vocab"]["sizes"]["fine"]) for e in examples)  # words
    assert sum(int(np.sum(e.align[:, 1] - e.align[:, 0] > 1)) for e in examples) > 0
    assert verify_shard_set(str(out))[0] == []


def write_bad_corpus(root: Path, rng: random.Random) -> Path:
    root.mkdir()
    (root / "junk.txt").write_bytes(bytes(rng.randrange(256) for _ in range(5000)))
    (root / "mixed.txt").write_bytes(
        b"Good first paragraph. It has two sentences.\n\n\xff\xfe invalid utf-8 \xc3\x28\n\n"
        + b"x" * 3000
        + b"\n\n"
        + b"ctrl \x01\x02\x07 chars \x1b[31m red.\nAnd a\x00nul line.\n\n\n\n\t \n\n"
        + b"\x85\x0b\x0c\n\nLast paragraph here."
    )
    (root / "records.jsonl").write_text('{"text": "Fine record."}\n[1, 2]\n{"text": 3}\nnot json\n\n{"text": ""}\n')
    whole = gzip.compress(("Some text to cut off. " * 400 + "\n\nMore.\n").encode())
    (root / "cut.txt.gz").write_bytes(whole[: len(whole) // 2])
    return root


@pytest.mark.parametrize("seed", [1, 2])
def test_bad_input_never_crashes_and_is_accounted_for(artifacts, tmp_path, seed):
    corpus = write_bad_corpus(tmp_path / "bad", random.Random(seed))
    out = tmp_path / "out"
    manifest = shard(artifacts["en"], [corpus], out, max_line_bytes=2000, max_seq_len=32, samples_per_shard=5)
    accounting = manifest["accounting"]
    documents = accounting["documents"]
    assert documents["read"] == documents["kept"] + sum(documents["dropped"].values())
    assert documents["kept"] >= 4 and documents["dropped"]
    assert accounting["files"]["unreadable"] == 1 and "cut.txt.gz" in accounting["files"]["errors"][0]
    assert {"too_long", "invalid_utf8", "invalid_json", "no_text_field"} <= set(accounting["lines"]["dropped"])
    assert verify_shard_set(str(out))[0] == []


def test_key_slices_that_get_no_example_leave_no_empty_shard(artifacts, tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text("\n".join(first_lines(REPO / "data" / "en" / "enwiki_sample.txt.gz", 40)) + "\n")
    manifest = shard(
        artifacts["en"], [corpus], tmp_path / "out", nsp=False, docs_per_line=True, samples_per_shard=1
    )  # one key slice per example: about a third of them are empty
    shards = manifest["shards"]
    assert 0 < len(shards) < manifest["accounting"]["examples"]["made"] == manifest["totals"]["samples"]
    assert [s["name"] for s in shards] == [f"shard-{i:05d}.tar" for i in range(len(shards))]
    assert all(s["samples"] > 0 for s in shards)
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == sorted(["manifest.json", *(s["name"] for s in shards), *(s["index"] for s in shards)])
    assert [s["index"] for s in shards] == [f"shard-{i:05d}.idx" for i in range(len(shards))]
    assert verify_shard_set(str(tmp_path / "out")) == ([], manifest["totals"]["samples"])


def test_a_corpus_with_nothing_usable_gives_an_empty_verified_set(artifacts, tmp_path):
    corpus = tmp_path / "junk.txt"
    corpus.write_bytes(b"\xff\xfe\n\n\x00\x01\n\n   \n")
    manifest = shard(artifacts["en"], [corpus], tmp_path / "out")
    assert manifest["totals"]["samples"] == 0 and manifest["shards"] == []
    assert manifest["accounting"]["documents"] == {
        "read": 2,
        "kept": 0,
        "dropped": {"all_lines_binary": 1, "all_lines_invalid_utf8": 1},
    }
    assert verify_shard_set(str(tmp_path / "out")) == ([], 0)


def test_verify_names_a_damaged_shard(en_run, tmp_path):
    reference, manifest = en_run
    out = tmp_path / "copy"
    shutil.copytree(reference, out)
    name = manifest["shards"][1]["name"]
    data = bytearray((out / name).read_bytes())
    data[600] ^= 0xFF  # inside the first member's bytes
    (out / name).write_bytes(bytes(data))
    faults, _checked = verify_shard_set(str(out))
    assert faults and all(f.shard == name for f in faults)
    assert any("sha256" in f.problem for f in faults)
    result = subprocess.run([AMBERT, "shard", "verify", str(out)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and name in result.stderr
    (out / "manifest.json").unlink()
    with pytest.raises(ShardSetError, match="incomplete"):
        read_manifest(str(out))
    with pytest.raises(ShardSetError, match="re-shard"):
        read_manifest(str(reference), expect_vocab_id="0" * 64)


def test_verify_names_a_bad_sample_in_a_well_hashed_shard(en_run, tmp_path):
    reference, manifest = en_run
    out = tmp_path / "copy"
    shutil.copytree(reference, out)
    name = manifest["shards"][0]["name"]
    examples = list(shard_examples(str(out / name)))
    bad = examples[3]
    examples[3] = ShardExample(**{**bad.__dict__, "align": bad.align[::-1].copy()})  # not monotone
    with open(out / name, "wb") as handle:
        write_tar(handle, examples)
    edited = json.loads((out / "manifest.json").read_text())
    edited["shards"][0]["sha256"] = hashlib.sha256((out / name).read_bytes()).hexdigest()
    (out / "manifest.json").write_text(json.dumps(edited))
    faults, _checked = verify_shard_set(str(out))
    assert faults and {(f.shard, f.key) for f in faults} == {(name, bad.key)}


def test_verify_checks_each_shards_index_of_member_offsets(en_run, tmp_path):
    reference, manifest = en_run
    out = tmp_path / "copy"
    shutil.copytree(reference, out)
    first, second = manifest["shards"][0], manifest["shards"][1]
    with tarfile.open(out / first["name"]) as tar:
        offsets = [member.offset for member in tar]
    assert (out / first["index"]).read_bytes() == np.asarray(offsets, dtype="<u8").tobytes() and offsets[0] == 0
    (out / first["index"]).write_bytes(member_index([offsets[1], offsets[0], *offsets[2:]]))
    (out / second["index"]).unlink()
    faults, _checked = verify_shard_set(str(out))
    assert [str(f) for f in faults] == [
        f"{first['name']}: its index {first['index']} does not match the members' offsets ({len(offsets)} entries, "
        f"{len(offsets)} members): a resume would seek to the wrong sample; rebuild the set",
        f"{second['name']}: its index {second['index']} is missing",
    ]


def test_verify_fails_on_a_duplicate_key_naming_both_samples(en_run, tmp_path):
    reference, manifest = en_run
    out = tmp_path / "copy"
    shutil.copytree(reference, out)
    first, second = (manifest["shards"][i]["name"] for i in (0, 1))
    borrowed = list(shard_examples(str(out / first)))[2]
    edited = json.loads((out / "manifest.json").read_text())
    for number, (name, extra) in enumerate(((first, borrowed), (second, borrowed))):
        examples = [*shard_examples(str(out / name)), extra]  # a second copy in shard 0, a third in shard 1
        with open(out / name, "wb") as handle:
            (out / index_name(name)).write_bytes(member_index(write_tar(handle, examples)))
        edited["shards"][number].update(
            samples=len(examples), sha256=hashlib.sha256((out / name).read_bytes()).hexdigest()
        )
    (out / "manifest.json").write_text(json.dumps(edited))
    faults, _checked = verify_shard_set(str(out))
    problems = [str(f) for f in faults]
    last = manifest["shards"][0]["samples"]
    assert problems[0] == (
        f"{first} sample {borrowed.key}: duplicate key: {first} sample #2 (document {borrowed.doc_id}) "
        f"and {first} sample #{last} (document {borrowed.doc_id})"
    )
    assert f"{second} sample {borrowed.key}: duplicate key: {first} sample #2 and {second} sample #" in problems[1]
    assert len(problems) == 2
    result = subprocess.run([AMBERT, "shard", "verify", str(out)], capture_output=True, text=True)
    assert result.returncode != 0 and "duplicate key" in result.stdout + result.stderr


def test_sentences_without_tokens_are_counted_and_the_worker_tokenizer_gives_the_special_ids(artifacts):
    tokenizer = DocumentTokenizer(artifacts["en"], 62)
    tally = Tally()
    lines = ("Hello world. \u200b\u200b. Bye.".encode(), "\x01\x02\x03 \u00ad".encode())
    documents = tokenizer.tokenize([RawDocument("a.txt:0", "text", lines)], tally)
    assert tally["sentences_dropped.no_tokens"] == 1 and tally["sentences"] == 2 == len(documents[0][1])
    assert (tokenizer.cls_id, tokenizer.sep_id) == (101, 102)  # the bundled BERT vocabulary's


def random_segment(rng: random.Random) -> Segment:
    widths = [rng.randint(1, 3) for _ in range(rng.randint(1, 30))]
    ends = np.cumsum(widths).astype(np.int32)
    fine = int(ends[-1])
    return Segment(
        np.arange(fine, dtype=np.int32) + 1000,
        np.arange(len(widths), dtype=np.int32) + 5000,
        ends,
        np.zeros((fine, 2), np.int32),
        np.zeros((len(widths), 2), np.int32),
    )


@pytest.mark.parametrize("seed", range(5))
def test_examples_fit_and_stay_aligned(seed):
    rng = random.Random(seed)
    pool = {
        f"d{i}": [truncate_segment(random_segment(rng), 37) for _ in range(rng.randint(1, 8))] for i in range(6)
    }  # the pipeline truncates sentences to max_seq_len - 3 first
    for doc_id, segments in pool.items():
        pairs, _truncated, dropped = pair_examples(doc_id, segments, pool, seed, 40, 101, 102)
        assert dropped == 0
        plain = contiguous_examples(doc_id, segments, seed, 40, 101, 102)
        assert sum(len(e.fine_ids) - 2 for e in plain) == sum(len(s) for s in segments)
        for example in [*pairs, *plain]:
            assert alignment_faults(example) == [] and len(example.fine_ids) <= 40
            assert example.fine_ids[0] == 101 and example.fine_ids[-1] == 102


@pytest.mark.parametrize("seed", range(5))
def test_full_sentence_packing_fills_examples_and_cuts_between_coarse_tokens(seed):
    """Every token of every document, in order, once; each example but the last filled to max_seq_len (short by
    less than a coarse token and a [SEP]); a [SEP]
    after each document's piece; pieces start and end on coarse tokens (alignment holds)."""
    rng = random.Random(seed)
    documents = [
        (f"d{i}", [truncate_segment(random_segment(rng), 38) for _ in range(rng.randint(1, 5))]) for i in range(30)
    ]
    packer = FullSentencePacker(seed, 40, 101, 102)
    examples = [e for doc_id, segments in documents for e in packer.add(doc_id, segments)] + packer.close()
    assert len(examples) > 5 and len({e.key for e in examples}) == len(examples)
    for example in examples:
        assert alignment_faults(example) == [] and example.fine_ids[0] == 101 and example.fine_ids[-1] == 102
        assert not example.fine_type.any() and example.nsp_label == -1
    assert all(37 <= len(e.fine_ids) <= 40 for e in examples[:-1])  # short by < a coarse token (≤ 3) + [SEP]
    starts = [int(e.doc_id[1:]) for e in examples]  # the document of each example's first token
    assert starts == sorted(starts) and len(set(starts)) < len(starts)
    tokens = [t for e in examples for t in e.fine_ids.tolist() if t not in (101, 102)]
    assert tokens == [t for _d, segments in documents for s in segments for t in s.fine_ids.tolist()]
    separators = sum(int((e.fine_ids == 102).sum()) for e in examples)
    assert separators >= len(documents) and all(e.coarse_ids[-1] == 102 for e in examples)


def test_full_packing_fill_ratio_on_the_bundled_corpora(artifacts, en_corpus, tmp_path):
    """--packing full on the bundled English and Chinese samples at seq 128 fills ≥ 0.9 of the fine side;
    document packing of the short paragraphs leaves much more padding. The manifest records both sides."""
    options = {"nsp": False, "max_seq_len": 128, "samples_per_shard": 200}
    zh = tmp_path / "zh.txt"
    zh.write_text("\n".join(first_lines(REPO / "data" / "zh" / "pku199801_sample.txt.gz", 300)) + "\n")
    for lang, corpus, docs_per_line in (("en", en_corpus, False), ("zh", zh, True)):
        full = shard(
            artifacts[lang], [corpus], tmp_path / f"{lang}-full", packing="full", docs_per_line=docs_per_line, **options
        )
        document = shard(artifacts[lang], [corpus], tmp_path / f"{lang}-doc", docs_per_line=docs_per_line, **options)
        fill, baseline = full["totals"]["fill_ratio"], document["totals"]["fill_ratio"]
        assert fill["fine"] >= 0.9 > baseline["fine"] and fill["coarse"] <= fill["fine"], (lang, fill, baseline)
        assert full["totals"]["fine_tokens"] < document["totals"]["fine_tokens"]  # fewer [CLS]/[SEP]
        assert full["options"]["packing"] == "full" and verify_shard_set(str(tmp_path / f"{lang}-full"))[0] == []
    with pytest.raises(ValueError, match="--no-nsp"):
        ShardConfig(vocab="v", corpus=("c",), out="o", packing="full")
    with pytest.raises(ValueError, match="--packing must be one of document, full"):
        ShardConfig(vocab="v", corpus=("c",), out="o", nsp=False, packing="fulll")


def test_cli_build_and_inspect(artifacts, tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text("I live in New York. Ice cream is good.\n\nSir John went home. He slept.\n")
    out = tmp_path / "out"
    result = subprocess.run(
        [
            AMBERT,
            "shard",
            "build",
            "--vocab",
            artifacts["en"],
            "--corpus",
            str(corpus),
            "--out",
            str(out),
            "--no-nsp",
            "--direct_num_workers",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1])["samples"] == 2
    result = subprocess.run(
        [AMBERT, "shard", "inspect", str(out), "-n", "2", "--vocab", artifacts["en"]],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "120"},
    )
    assert result.returncode == 0 and "new york" in result.stderr and "sir john" in result.stderr
    bad = subprocess.run(
        [
            AMBERT,
            "shard",
            "build",
            "--vocab",
            artifacts["en"],
            "--corpus",
            str(corpus),
            "--out",
            str(out),
            "--max-seq-len",
            "4",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2 and "--max-seq-len" in bad.stderr


def test_parquet_rows_are_documents(artifacts, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    texts = ["我们在北京。中国人民发展经济！", None, "今天记者工作。", ""] * 10
    corpus = tmp_path / "docs.parquet"
    pq.write_table(pa.table({"text": pa.array(texts, pa.string())}), corpus)
    manifest = shard(artifacts["zh"], [corpus], tmp_path / "out", samples_per_shard=50, max_seq_len=32)
    documents = manifest["accounting"]["documents"]
    assert documents["read"] == 40 and documents["kept"] == 20 and documents["dropped"] == {"empty": 20}
    examples = read_all(tmp_path / "out", manifest)
    assert examples and all(not alignment_faults(example) for example in examples)
