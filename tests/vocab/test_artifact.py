"""Vocab artifacts: deterministic ids, Hugging Face loading, verification, publish and pull."""

from __future__ import annotations

import json
import shutil

import pytest
from tokenizers import Tokenizer
from transformers import PreTrainedTokenizerFast

from tests.vocab.conftest import build_en, build_zh
from vocab.artifact import ArtifactError, publish, pull, read_artifact, verify_artifact, write_artifact


def tree(directory):
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def test_same_content_same_id_and_bytes(en_artifact, tmp_path):
    assert build_en(tmp_path / "again") == read_artifact(str(en_artifact))["id"]
    assert tree(tmp_path / "again") == tree(en_artifact)
    assert build_zh(tmp_path / "zh") != read_artifact(str(en_artifact))["id"]


def test_layout_and_hugging_face_loading(en_artifact):
    document = read_artifact(str(en_artifact))
    assert set(document["files"]) == {
        "fine/vocab.txt",
        "fine/tokenizer.json",
        "coarse/vocab.txt",
        "phrases.tsv",
        "stats.json",
    }
    assert document["sizes"] == {"fine": 30522, "coarse": 30529, "coarse_units": 7}
    coarse = (en_artifact / "coarse" / "vocab.txt").read_text().split("\n")
    assert coarse[:30522] == (en_artifact / "fine" / "vocab.txt").read_text().split("\n")[:30522]
    text = "Hello, New York! unaffable"
    tokenizer_file = str(en_artifact / "fine" / "tokenizer.json")
    ids = Tokenizer.from_file(tokenizer_file).encode(text).ids
    assert ids == PreTrainedTokenizerFast(tokenizer_file=tokenizer_file)(text)["input_ids"]
    assert ids[0] == 101 and ids[-1] == 102


def test_tampering_is_detected(en_artifact, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(en_artifact, copy)
    vocab = copy / "coarse" / "vocab.txt"
    vocab.write_bytes(vocab.read_bytes().replace(b"new york\n", b"new yorK\n"))
    with pytest.raises(ArtifactError, match="coarse/vocab.txt does not match its sha256"):
        verify_artifact(str(copy))


@pytest.mark.parametrize("scheme", ["", "file://", "memory://"])  # memory: an fsspec store without renames
def test_publish_pull_round_trip(en_artifact, zh_artifact, tmp_path, scheme):
    store = f"{scheme}{tmp_path / 'store'}"
    url = publish(str(en_artifact), store)
    artifact_id = read_artifact(str(en_artifact))["id"]
    assert url == f"{store}/{artifact_id}"
    assert publish(str(en_artifact), store) == url  # idempotent
    pulled = tmp_path / "pulled"
    pull(url, str(pulled))
    assert tree(pulled) == tree(en_artifact)
    pull(url, str(pulled))  # idempotent
    other = tmp_path / "only-one"
    pull(store, str(other))  # the store holds exactly one artifact
    assert tree(other) == tree(en_artifact)
    publish(str(zh_artifact), store)
    with pytest.raises(ArtifactError, match="holds 2 artifacts"):
        pull(store, str(tmp_path / "ambiguous"))


@pytest.mark.parametrize("scheme", ["", "file://"])
def test_pull_refuses_tampered_or_partial(en_artifact, tmp_path, scheme):
    url = publish(str(en_artifact), f"{scheme}{tmp_path / 'store'}")
    published = tmp_path / "store" / url.rsplit("/", 1)[1]
    vocab = published / "coarse" / "vocab.txt"
    data = bytearray(vocab.read_bytes())
    data[-3] ^= 1  # one byte of the last coarse unit
    vocab.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="coarse/vocab.txt does not match its sha256"):
        pull(url, str(tmp_path / "a"))
    assert not (tmp_path / "a").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["store"]
    with pytest.raises(ArtifactError, match="exists but is broken.*remove it, then publish again"):
        publish(str(en_artifact), f"{scheme}{tmp_path / 'store'}")
    shutil.rmtree(published)
    url = publish(str(en_artifact), f"{scheme}{tmp_path / 'store'}")
    (published / "fine" / "tokenizer.json").unlink()
    with pytest.raises(ArtifactError, match="incomplete: fine/tokenizer.json is missing"):
        pull(url, str(tmp_path / "b"))
    (published / "artifact.json").unlink()  # as an interrupted publish leaves it
    with pytest.raises(ArtifactError, match="incomplete artifact .artifact.json is missing"):
        pull(url, str(tmp_path / "c"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store"]


def test_publish_leaves_no_temporary_files(en_artifact, tmp_path):
    url = publish(str(en_artifact), str(tmp_path / "store"))
    assert [p.name for p in (tmp_path / "store").iterdir()] == [url.rsplit("/", 1)[1]]
    assert tree(tmp_path / "store" / url.rsplit("/", 1)[1]) == tree(en_artifact)


def test_pull_checks_names_and_destinations(en_artifact, zh_artifact, tmp_path):
    url = publish(str(en_artifact), str(tmp_path / "store"))
    other_id = read_artifact(str(zh_artifact))["id"]
    renamed = tmp_path / "store" / other_id
    (tmp_path / "store" / url.rsplit("/", 1)[1]).rename(renamed)
    with pytest.raises(ArtifactError, match=f"holds artifact {url.rsplit('/', 1)[1]}, not {other_id}"):
        pull(str(renamed), str(tmp_path / "a"))
    renamed.rename(tmp_path / "store" / url.rsplit("/", 1)[1])
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    with pytest.raises(ArtifactError, match="refusing to replace .*busy: it exists and is not a vocab artifact"):
        pull(url, str(busy))
    assert (busy / "notes.txt").read_text() == "mine"
    with pytest.raises(ArtifactError, match=f"already holds artifact {other_id}"):
        pull(url, str(zh_artifact))
    with pytest.raises(ArtifactError, match="nothing at"):
        pull(str(tmp_path / "nowhere"), str(tmp_path / "b"))
    broken = tmp_path / "broken"
    shutil.copytree(en_artifact, broken)
    (broken / "phrases.tsv").write_text("x\t1\t1\t1.0\n")
    assert pull(url, str(broken)) == str(broken)  # a broken copy of the artifact is repaired
    assert tree(broken) == tree(en_artifact)


def test_a_hostile_file_list_is_refused(en_artifact, tmp_path):
    url = publish(str(en_artifact), str(tmp_path / "store"))
    manifest = tmp_path / "store" / url.rsplit("/", 1)[1] / "artifact.json"
    document = json.loads(manifest.read_text())
    document["files"]["../../escaped.txt"] = "0" * 64
    manifest.write_text(json.dumps(document))
    with pytest.raises(ArtifactError, match="'../../escaped.txt' is not a plain relative path"):
        pull(url, str(tmp_path / "a"))
    assert not (tmp_path / "escaped.txt").exists()


def test_write_refuses_what_it_must_not_replace_or_record(en_artifact, tmp_path):
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    with pytest.raises(ArtifactError, match="refusing to replace .*busy"):
        build_en(busy)
    assert [p.name for p in busy.iterdir()] == ["notes.txt"]
    replaced = tmp_path / "replaced"
    build_zh(replaced)
    assert build_en(replaced) == read_artifact(str(en_artifact))["id"]  # an artifact is replaced
    assert sorted(p.name for p in tmp_path.iterdir()) == ["busy", "replaced"]  # no temporary siblings
    base = dict(fine_vocab_lines=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a"], created_from={}, stats={})
    with pytest.raises(ArtifactError, match="a zh artifact's dictionary is words.tsv"):
        write_artifact(
            str(tmp_path / "x"),
            lang="zh",
            coarse_units=[],
            dictionary_file_name="phrases.tsv",
            dictionary_bytes=b"",
            segmenter_spec={"name": "jieba"},
            **base,
        )
    with pytest.raises(ArtifactError, match="a zh artifact records its segmenter"):
        write_artifact(
            str(tmp_path / "x"),
            lang="zh",
            coarse_units=[],
            dictionary_file_name="words.tsv",
            dictionary_bytes=b"",
            segmenter_spec=None,
            **base,
        )
    with pytest.raises(ArtifactError, match="coarse units: entry 1 .* holds a newline"):
        write_artifact(
            str(tmp_path / "x"),
            lang="en",
            coarse_units=["a b", "new\nyork"],
            dictionary_file_name="phrases.tsv",
            dictionary_bytes=b"",
            segmenter_spec=None,
            **base,
        )
    with pytest.raises(ArtifactError, match="lacks BERT's special tokens"):
        write_artifact(
            str(tmp_path / "x"),
            lang="en",
            coarse_units=[],
            dictionary_file_name="phrases.tsv",
            dictionary_bytes=b"",
            segmenter_spec=None,
            **{**base, "fine_vocab_lines": ["a", "b"]},
        )
    assert not (tmp_path / "x").exists()


def test_a_rewritten_id_is_detected(en_artifact, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(en_artifact, copy)
    document = json.loads((copy / "artifact.json").read_text())
    document["lang"] = "zh"
    (copy / "artifact.json").write_text(json.dumps(document))
    with pytest.raises(ArtifactError, match="does not match its content"):
        verify_artifact(str(copy))
