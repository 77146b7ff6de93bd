"""tokenize_ambert.py (trainer/hf_ambert_tokenize.py), the hf-ambert export's tokenizer, run in a Python where our
package cannot be imported: the same fine ids, coarse ids and alignment as vocab.multigrained on bundled English and
Chinese text (jieba and THULAC artifacts; an ngram artifact; pre-segmented words), padded batches, the command line."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.vocab.conftest import WORDS, build_en, build_zh
from vocab.artifact import read_vocab_lines, write_artifact
from vocab.chinese_segmentation import NgramSegmenter, format_word_model, make_segmenter, segmenter_spec
from vocab.multigrained import MultiGrainedTokenizer
from vocab.normalization import cjk_runs
from vocab.word_dictionary import format_word_tsv

REPO = Path(__file__).resolve().parents[2]
HELPER = REPO / "trainer" / "hf_ambert_tokenize.py"
BERT = REPO / "vocab" / "bert"


def bundled_lines(name: str, count: int) -> list[str]:
    with gzip.open(REPO / "data" / name, "rt", encoding="utf-8") as lines:
        return [line.strip() for _, line in zip(range(count), lines, strict=False) if line.strip()]


def standalone(export: Path, program: str, payload) -> object:
    """Run `program` (reads `payload`, sets `result`) with tokenize_ambert importable from `export` and the venv's
    site-packages (tokenizers, jieba, torch) on the path without its .pth hooks: our editable install absent."""
    (export / "payload.json").write_text(json.dumps(payload, ensure_ascii=False), encoding="utf-8")
    driver = f"""
import importlib.util, json, sys
sys.path[:0] = [{str(export)!r}]
sys.path.append({sysconfig.get_paths()["purelib"]!r})
def importable(name):  # OUT/vocab/ is a namespace package, without our modules
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False
assert not any(map(importable, ("vocab.multigrained", "trainer", "pipelines"))), "our package imports"
from tokenize_ambert import AmbertTokenizer
payload = json.load(open({str(export / "payload.json")!r}, encoding="utf-8"))
{program}
print(json.dumps(result, ensure_ascii=False))
"""
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", driver], capture_output=True, text=True, cwd=export, check=False
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def export_like(artifact: Path, out: Path) -> Path:
    """What ambert export --format hf-ambert writes for the tokenizer: tokenize_ambert.py and vocab/."""
    out.mkdir()
    shutil.copy(HELPER, out / "tokenize_ambert.py")
    shutil.copytree(artifact, out / "vocab")
    return out


def ours_of(tokenizer: MultiGrainedTokenizer, text: str, pair: str | None) -> dict:
    aligned = tokenizer.encode(text) if pair is None else tokenizer.encode_pair(text, pair)
    return {
        "input_ids": list(aligned.fine_ids),
        "token_type_ids": list(aligned.fine_type),
        "coarse_input_ids": list(aligned.coarse_ids),
        "coarse_token_type_ids": list(aligned.coarse_type),
        "align": [list(span) for span in aligned.align],
        "fine_tokens": list(aligned.fine_tokens),
        "coarse_tokens": list(aligned.coarse_tokens),
    }


ENCODE_ALL = "t = AmbertTokenizer(sys.path[0])\nresult = [t.encode(text, pair) for text, pair in payload]"


def pairs_of(lines: list[str]) -> list[tuple[str, str | None]]:
    return [(line, lines[i + 1] if i % 4 == 0 and i + 1 < len(lines) else None) for i, line in enumerate(lines)]


@pytest.mark.parametrize(
    ("lang", "corpus"),
    [
        ("en", "en/enwiki_sample.txt.gz"),
        ("jieba", "zh/pku199801_sample.txt.gz"),
        ("thulac", "zh/pku199801_sample.txt.gz"),
    ],
)
def test_standalone_ids_equal_the_multigrained_tokenizer_on_bundled_text(tmp_path, lang, corpus):
    artifact = tmp_path / "artifact"
    build_en(artifact) if lang == "en" else build_zh(artifact, segmenter=lang)  # thulac: the default segmenter
    export = export_like(artifact, tmp_path / "export")
    payload = pairs_of(bundled_lines(corpus, 120))
    theirs = standalone(export, ENCODE_ALL, payload)
    tokenizer = MultiGrainedTokenizer.from_artifact(str(artifact))
    expected = [ours_of(tokenizer, text, pair) for text, pair in payload]
    assert sum(end - start > 1 for one in expected for start, end in one["align"]) > 10  # phrases / words matched
    for got, want, (text, _) in zip(theirs, expected, payload, strict=True):
        assert got == want, text


def test_ngram_segmenter_and_pre_segmented_words_give_our_ids(tmp_path):
    """The ngram word model read from vocab/segmenter/; words= given as jieba cuts each CJK run."""
    word_model = format_word_model([("北京", 9), ("天安门", 7), ("我们", 5), ("经济发展", 4), ("中国人", 3)])
    (tmp_path / "model.tsv").write_text(word_model, encoding="utf-8")
    artifact = tmp_path / "ngram"
    write_artifact(
        str(artifact),
        lang="zh",
        fine_vocab_lines=read_vocab_lines(str(BERT / "chinese_21128.txt")),
        coarse_units=WORDS,
        dictionary_file_name="words.tsv",
        dictionary_bytes=format_word_tsv([(w, 5) for w in WORDS]).encode(),
        segmenter_spec=segmenter_spec(NgramSegmenter(str(tmp_path / "model.tsv"))),
        created_from={"test": True},
        stats={},
        extra_files={"segmenter/word_model.tsv": word_model.encode()},
    )
    lines = bundled_lines("zh/pku199801_sample.txt.gz", 60) + ["我们在北京天安门看经济发展，中国人民。"]
    theirs = standalone(export_like(artifact, tmp_path / "export"), ENCODE_ALL, pairs_of(lines))
    tokenizer = MultiGrainedTokenizer.from_artifact(str(artifact))
    assert theirs == [ours_of(tokenizer, text, pair) for text, pair in pairs_of(lines)]
    assert "经济发展" not in theirs[-1]["coarse_tokens"] and "经济" in theirs[-1]["coarse_tokens"]  # split into words

    jieba_artifact = tmp_path / "jieba"
    build_zh(jieba_artifact)
    cut = make_segmenter("jieba").cut

    def pre_segmented(text: str) -> list[str]:  # jieba on each CJK run, other characters one by one
        words, position = [], 0
        for start, end in cjk_runs(text):
            words += [*text[position:start], *cut(text[start:end])]
            position = end
        return [*words, *text[position:]]

    program = "t = AmbertTokenizer(sys.path[0], cut=lambda run: list(run))\n"  # cut= unused when words= are given
    program += "result = [t.encode(None, words=words) for words in payload]"
    theirs = standalone(
        export_like(jieba_artifact, tmp_path / "export-jieba"), program, [pre_segmented(t) for t in lines]
    )
    tokenizer = MultiGrainedTokenizer.from_artifact(str(jieba_artifact))
    assert theirs == [ours_of(tokenizer, text, None) for text in lines]


def test_padded_batch_and_command_line(tmp_path):
    artifact = tmp_path / "artifact"
    build_en(artifact)
    export = export_like(artifact, tmp_path / "export")
    (export / "config.json").write_text(json.dumps({"max_position": 12}))
    program = """t = AmbertTokenizer(sys.path[0])
batch = t(payload[:2])
result = {name: tensor.tolist() for name, tensor in batch.items()}
try:
    t.encode(payload[2])
except ValueError as error:
    result["error"] = str(error)"""
    texts = ["I live in New York City.", "Ice cream", "one two three four five six seven eight nine ten eleven"]
    result = standalone(export, program, texts)
    tokenizer = MultiGrainedTokenizer.from_artifact(str(artifact))
    first, second = (ours_of(tokenizer, text, None) for text in texts[:2])
    for prefix in ("", "coarse_"):  # the second row padded with [PAD] (id 0) to the first one's length
        ids, short = first[f"{prefix}input_ids"], second[f"{prefix}input_ids"]
        padding = len(ids) - len(short)
        assert padding > 0 and result[f"{prefix}input_ids"] == [ids, short + [0] * padding]
        assert result[f"{prefix}attention_mask"] == [[1] * len(ids), [1] * len(short) + [0] * padding]
        assert result[f"{prefix}token_type_ids"] == [[0] * len(ids)] * 2
    assert len(first["coarse_input_ids"]) == 7  # [CLS] i live in "new york city" . [SEP]
    assert result["error"] == "13 fine tokens, more than the model's max_position 12: shorten it"
    shown = subprocess.run(
        [sys.executable, str(export / "tokenize_ambert.py"), str(export), "New York", "ice cream"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(shown.stdout)["coarse_tokens"] == ["[CLS]", "new york", "[SEP]", "ice cream", "[SEP]"]
