"""Vocab artifacts: deterministic ids, Hugging Face loading, verification, publish and pull."""

from __future__ import annotations

import json
import shutil

import pytest
from tokenizers import Tokenizer
from transformers import PreTrainedTokenizerFast

from tests.vocab.conftest import build_en, build_zh
from vocab.artifact import ArtifactError, publish, pull, read_artifact, verify_artifact


def tree(directory):
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def test_same_content_same_id_and_bytes(en_artifact, tmp_path):
    assert build_en(tmp_path / "again") == read_artifact(str(en_artifact))["id"]
    assert tree(tmp_path / "again") == tree(en_artifact)
    assert build_zh(tmp_path / "zh") != read_artifact(str(en_artifact))["id"]


def test_layout_and_hugging_face_loading(en_artifact):
    document = read_artifact(str(en_artifact))
    assert set(document["files"]) == {"fine/vocab.txt", "fine/tokenizer.json", "coarse/vocab.txt", "phrases.tsv",
                                      "stats.json"}
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


@pytest.mark.parametrize("scheme", ["", "file://"])
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


def test_pull_refuses_tampered_or_partial(en_artifact, tmp_path):
    url = publish(str(en_artifact), str(tmp_path / "store"))
    published = tmp_path / "store" / url.rsplit("/", 1)[1]
    (published / "phrases.tsv").write_text("evil\t2\t1\t1.0\n")
    with pytest.raises(ArtifactError, match="phrases.tsv does not match its sha256"):
        pull(url, str(tmp_path / "a"))
    assert not (tmp_path / "a").exists()
    shutil.rmtree(published)
    url = publish(str(en_artifact), str(tmp_path / "store"))
    (published / "fine" / "tokenizer.json").unlink()
    with pytest.raises(ArtifactError, match="incomplete: fine/tokenizer.json is missing"):
        pull(url, str(tmp_path / "b"))


def test_a_rewritten_id_is_detected(en_artifact, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(en_artifact, copy)
    document = json.loads((copy / "artifact.json").read_text())
    document["lang"] = "zh"
    (copy / "artifact.json").write_text(json.dumps(document))
    with pytest.raises(ArtifactError, match="does not match its content"):
        verify_artifact(str(copy))
