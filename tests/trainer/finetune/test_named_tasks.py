"""Every named benchmark task reads its bundled native-format sample (data/tasks/) and refuses a file that lacks
a field, naming the field and the fields it found; a missing file names the file and what the directory holds."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from trainer.finetune.choice import ChoiceExample
from trainer.finetune.readers import NAMED_TASKS, LabeledDataError, LabeledExample, named_task, named_task_files
from trainer.finetune.span_windows import SquadError, SquadExample

TASKS = Path(__file__).resolve().parents[3] / "data" / "tasks"
ROW_TYPE = {"classify": LabeledExample, "regress": LabeledExample, "choice": ChoiceExample, "span": SquadExample}
# a field each task's files must have, and how to delete it from a sample file's first record
FIELD = {
    "clue/tnews": "sentence",
    "clue/iflytek": "sentence",
    "clue/afqmc": "sentence2",
    "clue/cmnli": "label",
    "clue/csl": "abst",
    "clue/wsc": "target",
    "clue/chid": "candidates",
    "glue/sst2": "sentence",
    "glue/mrpc": "#2 String",
    "glue/qqp": "is_duplicate",
    "glue/stsb": "score",
    "glue/mnli": "gold_label",
    "glue/qnli": "question",
    "glue/rte": "sentence1",
}


@pytest.mark.parametrize("name", list(NAMED_TASKS))
def test_named_task_reads_its_sample(name):
    task = named_task(name)
    files = named_task_files(task, str(TASKS / name))
    for split, path in files.items():
        rows = task.read(path)
        assert rows and all(isinstance(row, ROW_TYPE[task.kind]) for row in rows), (split, rows[:2])
    if task.kind == "regress":
        assert {float(row.label) for row in task.read(files["train"])} >= {4.8, 0.0}


def test_sample_contents_by_hand():
    cmnli = named_task("clue/cmnli").read(str(TASKS / "clue/cmnli/train.json"))
    assert len(cmnli) == 4  # the "-" (no majority) example dropped
    chid = named_task("clue/chid").read(str(TASKS / "clue/chid/train.json"))
    assert [row.label for row in chid] == [0, 1, 0] and "[MASK]" in chid[0].context and "＿＿" not in chid[2].context
    race = named_task("race").read(str(TASKS / "race/train"))
    assert [row.label for row in race] == [1, 0, 2]  # letters B, A, C
    c3 = named_task("clue/c3").read(str(TASKS / "clue/c3/train.json"))
    assert [row.label for row in c3] == [1, 0, 2] and [len(row.options) for row in c3] == [3, 2, 4]
    cola = named_task("glue/cola").read(str(TASKS / "glue/cola/train.tsv"))
    assert [row.label for row in cola] == ["1", "0", "1", "0"] and cola[0].text == "The lighthouse stands on the hill."
    assert named_task("glue/mrpc").positive == "1" and named_task("glue/stsb").kind == "regress"
    squad2 = named_task("squad2").read(str(TASKS / "squad2/dev-v2.0.json"))
    assert [bool(example.answers) for example in squad2] == [True, True, False]


@pytest.mark.parametrize("name", list(FIELD))
def test_a_missing_field_is_named(name, tmp_path):
    task = named_task(name)
    source = Path(named_task_files(task, str(TASKS / name))["train"])
    target = tmp_path / source.name
    if source.suffix == ".tsv":
        lines = source.read_text(encoding="utf-8").splitlines()
        column = lines[0].split("\t").index(FIELD[name])
        lines = ["\t".join(v for i, v in enumerate(line.split("\t")) if i != column) for line in lines]
        target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    else:
        lines = source.read_text(encoding="utf-8").splitlines()
        first = json.loads(lines[0])
        del first[FIELD[name]]
        target.write_text("\n".join([json.dumps(first, ensure_ascii=False), *lines[1:]]) + "\n", encoding="utf-8")
        for answers in source.parent.glob("*_answer.json"):
            shutil.copy(answers, tmp_path / answers.name)
    with pytest.raises(LabeledDataError, match=rf"missing field '{FIELD[name]}' \(fields found: .+\)"):
        task.read(str(target))


def test_nested_and_directory_formats_name_a_missing_field(tmp_path):
    c3 = json.loads((TASKS / "clue/c3/train.json").read_text(encoding="utf-8"))
    del c3[0][1][0]["answer"]
    (tmp_path / "c3.json").write_text(json.dumps(c3, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(
        LabeledDataError, match=r"item 0: missing field 'answer' \(fields found: choice, id, question\)"
    ):
        named_task("clue/c3").read(str(tmp_path / "c3.json"))
    article = json.loads((TASKS / "race/train/high/1.txt").read_text(encoding="utf-8"))
    del article["options"]
    (tmp_path / "race" / "high").mkdir(parents=True)
    (tmp_path / "race" / "high" / "1.txt").write_text(json.dumps(article), encoding="utf-8")
    with pytest.raises(LabeledDataError, match="1.txt, article: missing field 'options'"):
        named_task("race").read(str(tmp_path / "race"))
    with pytest.raises(LabeledDataError, match="no RACE article files"):
        named_task("race").read(str(tmp_path / "nothing"))
    shutil.copy(TASKS / "clue/chid/train.json", tmp_path / "train.json")
    with pytest.raises(LabeledDataError, match="train_answer.json not found"):
        named_task("clue/chid").read(str(tmp_path / "train.json"))
    with pytest.raises(SquadError):
        named_task("squad1").read(str(tmp_path / "train.json"))


def test_a_missing_file_and_an_unknown_task_are_named(tmp_path):
    (tmp_path / "train.tsv").write_text("sentence\tlabel\nok\t1\n", encoding="utf-8")
    with pytest.raises(LabeledDataError, match=r"glue/sst2: .*dev.tsv is missing .*holds: train.tsv"):
        named_task_files(named_task("glue/sst2"), str(tmp_path))
    with pytest.raises(LabeledDataError, match="unknown task 'glue/sst3'; named tasks: clue/tnews"):
        named_task("glue/sst3")


def test_the_task_help_lists_every_named_task():
    from trainer.finetune.config import NAMED_TASKS_HELP

    assert NAMED_TASKS_HELP.split() == list(NAMED_TASKS)


def test_generic_choice_fields_read_the_bundled_cloze_set():
    from trainer.finetune.config import FinetuneConfig
    from trainer.finetune.loop import task_reader

    kind, read, _ = task_reader(FinetuneConfig(task="choice", question_field=""))
    rows = read(str(TASKS / "zh_cloze" / "dev.jsonl"))
    assert kind == "choice" and len(rows) == 100
    assert all(len(row.options) == 4 and "[MASK]" in row.context and row.question == "" for row in rows)
    kind, read, _ = task_reader(FinetuneConfig(task="choice", options_field="choices"))
    with pytest.raises(
        LabeledDataError, match=r"missing field 'choices' \(fields found: context, id, label, options\)"
    ):
        read(str(TASKS / "zh_cloze" / "dev.jsonl"))


def test_cloze_distractors_come_from_the_similar_word_table(tmp_path):
    """make_cloze.py --similar-from: a blanked word listed in similar.tsv gets its most similar words of its length
    as distractors; words without neighbours keep the frequent-word distractors of the bundled set."""
    import importlib.util

    from tests.vocab.conftest import build_zh
    from vocab.artifact import SIMILAR_WORDS_FILE
    from vocab.similar_words import format_similar_tsv

    bundled = [json.loads(line) for line in (TASKS / "zh_cloze" / "train.jsonl").read_text("utf-8").splitlines()]
    answers = {row["options"][row["label"]] for row in bundled[:3]}
    pool = ["甲乙", "丙丁", "戊己", "庚辛"]
    table = [(word, (("中华人民", 0.9), *((other, 0.5 - k / 10) for k, other in enumerate(pool)))) for word in answers]
    artifact = tmp_path / "vocab"
    build_zh(artifact)
    (artifact / SIMILAR_WORDS_FILE).write_text(format_similar_tsv(table), encoding="utf-8")
    spec = importlib.util.spec_from_file_location("make_cloze", TASKS / "make_cloze.py")
    make_cloze = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_cloze)
    make_cloze.main(["--similar-from", str(artifact), "--out", str(tmp_path / "cloze")])
    made = [json.loads(line) for line in (tmp_path / "cloze" / "train.jsonl").read_text("utf-8").splitlines()]
    assert [row["id"] for row in made] == [row["id"] for row in bundled]
    changed = 0
    for ours, theirs in zip(made, bundled, strict=True):
        answer = theirs["options"][theirs["label"]]
        assert ours["options"][ours["label"]] == answer and ours["context"] == theirs["context"]
        if answer in answers:  # the 3 best of its length: 中华人民 has 4 characters
            assert ours["options"] == sorted([answer, *pool[:3]])
            changed += 1
        else:
            assert ours == theirs
    assert changed >= 3
    with pytest.raises(SystemExit, match="has no similar.tsv"):
        make_cloze.main(["--similar-from", str(tmp_path), "--out", str(tmp_path / "never")])
