"""Labeled data for fine-tuning: classification and sentence-pair files read, then encoded as aligned examples.

    rows = read_labeled("data/labeled/zh_sentiment_train.tsv.gz")       # or .tsv, .jsonl, .jsonl.gz
    labels = label_vocabulary(rows); examples = encode_labeled(tokenizer, rows, max_seq_len=128)

TSV: `label<TAB>text[<TAB>text_b]` without a header (the format of ../shared/data/labeled), or with a header
line naming the columns `label`, `text` and optionally `text_b` in any order. JSONL: one object per line with
the same keys. Errors name the file and the line.
"""

from __future__ import annotations

import gzip
import json
import re
import zlib
from dataclasses import dataclass

import numpy as np

from vocab.aligned_codec import ShardExample

COLUMNS = ("label", "text", "text_b")
_HEADER_FIELD = re.compile(r"[a-z_]+")


class LabeledDataError(ValueError):
    """A labeled file that cannot be read as labeled examples (names the file and the line)."""


@dataclass(frozen=True)
class LabeledExample:
    """One labeled text (or pair). line: 1-based line in the file it came from (0 when built in code)."""

    text: str
    label: str
    text_b: str | None = None
    line: int = 0


def read_labeled(path: str) -> list[LabeledExample]:
    """The examples of a `.tsv`, `.tsv.gz`, `.jsonl` or `.jsonl.gz` file, in file order."""
    stem = path[:-3] if path.endswith(".gz") else path
    if not stem.endswith((".tsv", ".jsonl")):
        raise LabeledDataError(f"{path}: unsupported file type; use .tsv, .jsonl (optionally .gz)")
    lines = list(_decoded_lines(path))
    if not lines:
        raise LabeledDataError(f"{path} holds no examples")
    return _read_tsv(path, lines) if stem.endswith(".tsv") else _read_jsonl(path, lines)


def label_vocabulary(examples: list[LabeledExample]) -> list[str]:
    """The distinct labels, sorted as strings (so "10" sorts before "2"): label id = index in this list."""
    return sorted({example.label for example in examples})


def encode_labeled(
    tokenizer, examples: list[LabeledExample], max_seq_len: int, split: str = "train"
) -> list[ShardExample]:
    """[CLS] text [SEP] (text_b [SEP]) at both granularities, truncated to ≤ max_seq_len tokens on each side.

    `tokenizer` is a vocab.multigrained.MultiGrainedTokenizer. Keys are f"{split}-{index}" (index in
    `examples`). Truncation drops whole coarse tokens from the end (of the longer segment first for pairs).
    """
    if max_seq_len < 4:
        raise ValueError(f"max_seq_len {max_seq_len} leaves no room for text besides [CLS] and two [SEP]")
    singles = [index for index, example in enumerate(examples) if example.text_b is None]
    encoded = dict(zip(singles, tokenizer.encode_batch([examples[i].text for i in singles]), strict=True))
    result = []
    for index, example in enumerate(examples):
        aligned = encoded[index] if example.text_b is None else tokenizer.encode_pair(example.text, example.text_b)
        result.append(truncate_aligned(aligned, max_seq_len, key=f"{split}-{index}"))
    return result


def truncate_aligned(aligned, max_seq_len: int, key: str = "") -> ShardExample:
    """An AlignedExample ([CLS] a [SEP] (b [SEP])) as a ShardExample of ≤ max_seq_len fine (hence coarse) tokens.

    Like BERT's truncate_seq_pair but cutting between coarse tokens only: drop the last coarse token of
    the longer segment (b on ties) until the fine tokens fit. A minimal cousin of
    pipelines/pretraining_examples.truncate_pair (trainer/ must not import pipelines/). A single coarse
    token longer than the budget is dropped whole, which can leave a segment empty.
    """
    align = np.asarray(aligned.align, dtype=np.int32)
    coarse_type = np.asarray(aligned.coarse_type)
    first_b = int(np.sum(coarse_type == 0))  # coarse index of segment b's first token ([SEP] of a is first_b - 1)
    total = len(aligned.coarse_ids)
    segments = [[1, first_b - 1]] + ([[first_b, total - 1]] if first_b < total else [])
    widths = align[:, 1] - align[:, 0]
    lengths = [int(widths[start:stop].sum()) for start, stop in segments]
    budget = max_seq_len - 1 - len(segments)
    while sum(lengths) > budget:
        side = 0 if len(segments) == 1 or lengths[0] > lengths[1] else 1
        segments[side][1] -= 1
        lengths[side] -= int(widths[segments[side][1]])
    kept = [0]  # coarse indices: [CLS], each segment's kept tokens and its [SEP]
    for (start, stop), sep in zip(segments, (first_b - 1, total - 1), strict=False):
        kept += [*range(start, stop), sep]
    coarse = np.asarray(kept, dtype=np.int64)
    fine = np.concatenate([np.arange(align[j, 0], align[j, 1]) for j in kept])
    ends = np.cumsum(widths[coarse]).astype(np.int32)
    pairs = lambda values: np.asarray(values, dtype=np.int32).reshape(-1, 2)  # noqa: E731
    return ShardExample(
        key=key,
        doc_id="",
        fine_ids=np.asarray(aligned.fine_ids, dtype=np.int32)[fine],
        coarse_ids=np.asarray(aligned.coarse_ids, dtype=np.int32)[coarse],
        align=np.stack([np.concatenate([[0], ends[:-1]]), ends], axis=1).astype(np.int32),
        fine_type=np.asarray(aligned.fine_type, dtype=np.uint8)[fine],
        coarse_type=coarse_type.astype(np.uint8)[coarse],
        fine_offsets=pairs(aligned.fine_offsets)[fine],
        coarse_offsets=pairs(aligned.coarse_offsets)[coarse],
        nsp_label=-1,
    )


# -- reading ----------------------------------------------------------------------------------------
def _decoded_lines(path: str):
    """(line number, text) of every line, strict UTF-8, without its line ending; a final newline ends the file."""
    try:
        if path.endswith(".gz"):
            with gzip.open(path, "rb") as handle:
                data = handle.read()
        else:
            with open(path, "rb") as handle:
                data = handle.read()
    except FileNotFoundError as error:
        raise LabeledDataError(f"{path} not found") from error
    except (OSError, EOFError, zlib.error) as error:
        raise LabeledDataError(
            f"{path} is not readable as {'gzip' if path.endswith('.gz') else 'a file'}: {error}"
        ) from error
    raw_lines = data.split(b"\n")
    if raw_lines and raw_lines[-1] == b"":
        raw_lines.pop()
    for number, raw in enumerate(raw_lines, start=1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise LabeledDataError(
                f"{path}, line {number}: invalid UTF-8 at byte {error.start} ({error.reason}); "
                "convert the file to UTF-8"
            ) from error
        line = line.removesuffix("\r")
        yield number, line.removeprefix("\ufeff") if number == 1 else line


def _read_tsv(path: str, lines: list[tuple[int, str]]) -> list[LabeledExample]:
    first = lines[0][1].split("\t")
    if all(_HEADER_FIELD.fullmatch(field) for field in first) and {"label", "text"} & set(first):
        missing = [name for name in ("label", "text") if name not in first]
        unknown = [name for name in first if name not in COLUMNS]
        if missing or unknown or len(set(first)) != len(first):
            raise LabeledDataError(
                f"{path}, line 1: header {first} must name the columns label and text (and "
                f"optionally text_b) once each; missing {missing}, unknown {unknown}"
            )
        columns, rows = first, lines[1:]
    else:
        columns, rows = None, lines
    examples = []
    for number, line in rows:
        fields = line.split("\t")
        names = columns or COLUMNS[: len(fields)]
        if len(fields) != len(names) or len(fields) < 2:
            expected = (
                f"{len(columns)} tab-separated fields ({', '.join(columns)})"
                if columns
                else "label<TAB>text or label<TAB>text<TAB>text_b"
            )
            raise LabeledDataError(f"{path}, line {number}: {len(fields)} tab-separated fields; expected {expected}")
        examples.append(_example(path, number, dict(zip(names, fields, strict=True))))
    if not examples:
        raise LabeledDataError(f"{path} has a header but no examples")
    return examples


def _read_jsonl(path: str, lines: list[tuple[int, str]]) -> list[LabeledExample]:
    examples = []
    for number, line in lines:
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise LabeledDataError(
                f"{path}, line {number}: invalid JSON ({error.msg} at column {error.colno})"
            ) from error
        if not isinstance(record, dict):
            raise LabeledDataError(
                f"{path}, line {number}: expected a JSON object with label and text, got {type(record).__name__}"
            )
        for name in ("label", "text"):
            if record.get(name) is None:
                raise LabeledDataError(f"{path}, line {number}: missing field {name!r} (has {sorted(record)})")
        for name in ("text", "text_b"):
            if record.get(name) is not None and not isinstance(record[name], str):
                raise LabeledDataError(f"{path}, line {number}: field {name!r} must be a string")
        if isinstance(record["label"], dict | list):
            raise LabeledDataError(f"{path}, line {number}: label must be a string or a number")
        examples.append(
            _example(
                path, number, {"label": str(record["label"]), "text": record["text"], "text_b": record.get("text_b")}
            )
        )
    return examples


def _example(path: str, number: int, fields: dict[str, str | None]) -> LabeledExample:
    for name in ("label", "text", "text_b"):
        value = fields.get(name)
        if value is not None and not value.strip():
            raise LabeledDataError(f"{path}, line {number}: empty {name}; remove the line or fill it in")
    return LabeledExample(text=fields["text"], label=fields["label"].strip(), text_b=fields.get("text_b"), line=number)


# -- named benchmark tasks in their own formats --------------------------------------------------------
@dataclass(frozen=True)
class NamedTask:
    """A benchmark task read from its own distribution's files: kind (classify, regress, choice, span), the file
    of each split inside --data DIR, the reader, and the positive class of F1-scored pair tasks (MRPC, QQP)."""

    name: str
    kind: str
    files: dict
    read: object  # (path) -> rows
    positive: str | None = None


def _json_lines(path: str) -> list[tuple[int, dict]]:
    records = []
    for number, line in _decoded_lines(path):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise LabeledDataError(
                f"{path}, line {number}: invalid JSON ({error.msg} at column {error.colno})"
            ) from None
        if not isinstance(record, dict):
            raise LabeledDataError(f"{path}, line {number}: expected a JSON object, got {type(record).__name__}")
        records.append((number, record))
    return records


def _field(path: str, where, record: dict, name: str):
    """record[name], or an error naming the file, the line (or item), the field and the fields found."""
    if not isinstance(record, dict) or record.get(name) is None:
        found = ", ".join(sorted(record)) if isinstance(record, dict) else type(record).__name__
        place = f"line {where}" if isinstance(where, int) else where
        raise LabeledDataError(f"{path}, {place}: missing field {name!r} (fields found: {found})")
    return record[name]


def _tsv_records(path: str, header: tuple[str, ...] | None = None) -> list[tuple[int, dict]]:
    """Rows of a tab-separated file as {column: value}: columns from its first line, or `header` for a file without
    one (GLUE's CoLA). Fields are split on tabs only (GLUE's files are unquoted)."""
    lines = list(_decoded_lines(path))
    if not lines:
        raise LabeledDataError(f"{path} holds no examples")
    columns, rows = (list(header), lines) if header else (lines[0][1].split("\t"), lines[1:])
    records = []
    for number, line in rows:
        values = line.split("\t")
        if len(values) < len(columns):
            raise LabeledDataError(
                f"{path}, line {number}: {len(values)} tab-separated fields but the header names {len(columns)} "
                f"({', '.join(columns)})"
            )
        records.append((number, dict(zip(columns, values[: len(columns)], strict=True))))
    return records


def labeled_reader(text: str, text_b: str | None, label: str, tsv_header: tuple[str, ...] | None = None, skip=()):
    """A reader of LabeledExamples from JSON lines (.json, .jsonl) or TSV (.tsv) taking the named fields;
    a label in `skip` (CMNLI's "-": no annotator majority) drops the example, as the benchmark's scripts do."""

    def read(path: str) -> list[LabeledExample]:
        records = _tsv_records(path, tsv_header) if path.endswith((".tsv", ".tsv.gz")) else _json_lines(path)
        examples = []
        for number, record in records:
            value = _field(path, number, record, label)
            if str(value) in skip:
                continue
            first = _field(path, number, record, text)
            second = _field(path, number, record, text_b) if text_b else None
            if isinstance(second, list):  # CSL's keywords
                second = "；".join(second)
            examples.append(_example(path, number, {"label": str(value), "text": str(first), "text_b": second}))
        if not examples:
            raise LabeledDataError(f"{path} holds no examples")
        return examples

    return read


def _read_wsc(path: str) -> list[LabeledExample]:
    """CLUEWSC2020: does the pronoun span2 refer to span1? As a pair: text, and "span2：span1"."""
    examples = []
    for number, record in _json_lines(path):
        target = _field(path, number, record, "target")
        pronoun, noun = _field(path, number, target, "span2_text"), _field(path, number, target, "span1_text")
        text = _field(path, number, record, "text")
        label = str(_field(path, number, record, "label"))
        examples.append(_example(path, number, {"label": label, "text": text, "text_b": f"{pronoun}：{noun}"}))
    return examples


def choice_reader(context: str, question: str, options: str, label: str):
    """A reader of ChoiceExamples from JSON lines: the label is the right option's index or its text."""
    from trainer.finetune.choice import ChoiceExample

    def read(path: str) -> list:
        examples = []
        for number, record in _json_lines(path):
            choices = _field(path, number, record, options)
            answer = _field(path, number, record, label)
            index = _option_index(path, number, choices, answer)
            examples.append(
                ChoiceExample(
                    str(_field(path, number, record, context)),
                    str(record.get(question, "")) if question else "",
                    tuple(map(str, choices)),
                    index,
                    str(record.get("id", number)),
                    number,
                )
            )
        return examples

    return read


def _option_index(path: str, where, choices: list, answer) -> int:
    if isinstance(answer, int) and 0 <= answer < len(choices):
        return answer
    if isinstance(answer, str) and len(answer) == 1 and answer in "ABCDEFGH" and answer not in choices:
        return "ABCDEFGH".index(answer)  # RACE's letters
    if answer in choices:
        return choices.index(answer)
    raise LabeledDataError(f"{path}, {where}: answer {answer!r} is none of the options {choices}")


def _read_c3(path: str) -> list:
    """C3: a JSON list of [paragraphs, [{question, choice, answer (text)}], id]."""
    from trainer.finetune.choice import ChoiceExample

    document = _json_document(path)
    examples = []
    for number, item in enumerate(document):
        if not isinstance(item, list) or len(item) < 2:
            raise LabeledDataError(f"{path}, item {number}: expected [paragraphs, questions, id] as C3 has")
        context = "".join(item[0])
        for k, qa in enumerate(item[1]):
            choices = _field(path, f"item {number}", qa, "choice")
            index = _option_index(path, f"item {number}", choices, _field(path, f"item {number}", qa, "answer"))
            qid = str(qa.get("id", f"{item[2] if len(item) > 2 else number}-{k}"))
            examples.append(
                ChoiceExample(context, _field(path, f"item {number}", qa, "question"), tuple(choices), index, qid)
            )
    return examples


def _json_document(path: str):
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        raise LabeledDataError(f"{path} not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise LabeledDataError(f"{path} is not UTF-8 JSON: {error}") from None


BLANK = "＿＿"  # a ChID blank that is not the one being asked about


def _read_chid(path: str) -> list:
    """ChID: JSON lines {candidates, content: [texts with #idiomNNNNNN# blanks]} and, beside the file,
    NAME_answer.json {blank: candidate index}; one cloze example per blank (the others shown as ＿＿)."""
    import os

    from trainer.finetune.choice import ChoiceExample

    answers_path = path.removesuffix(".json") + "_answer.json"
    if not os.path.exists(answers_path):
        raise LabeledDataError(f"{answers_path} not found: ChID keeps the answers of {path} in it")
    answers = _json_document(answers_path)
    blank = re.compile(r"#idiom\d+#")
    examples = []
    for number, record in _json_lines(path):
        candidates = _field(path, number, record, "candidates")
        contents = _field(path, number, record, "content")
        for content in contents if isinstance(contents, list) else [contents]:
            for tag in blank.findall(content):
                if tag not in answers:
                    raise LabeledDataError(f"{answers_path} has no answer for {tag} (line {number} of {path})")
                text = blank.sub(lambda m, tag=tag: "[MASK]" if m.group() == tag else BLANK, content)
                examples.append(ChoiceExample(text, "", tuple(candidates), int(answers[tag]), tag, number))
    return examples


def _read_race_dir(path: str) -> list:
    """RACE: a directory of per-article JSON files (high/*.txt, middle/*.txt) {article, questions, options,
    answers (letters), id}; one example per question."""
    import glob
    import os

    from trainer.finetune.choice import ChoiceExample

    files = sorted(
        glob.glob(os.path.join(path, "**", "*.txt"), recursive=True)
        + glob.glob(os.path.join(path, "**", "*.json"), recursive=True)
    )
    if not files:
        raise LabeledDataError(f"{path}: no RACE article files (*.txt, e.g. high/1.txt, middle/1.txt) found")
    examples = []
    for file in files:
        article = _json_document(file)
        for name in ("article", "questions", "options", "answers"):
            _field(file, "article", article, name)
        for k, (question, choices, answer) in enumerate(
            zip(article["questions"], article["options"], article["answers"], strict=True)
        ):
            index = _option_index(file, f"question {k}", choices, answer)
            examples.append(
                ChoiceExample(
                    article["article"],
                    question.replace("_", " "),
                    tuple(choices),
                    index,
                    f"{article.get('id', file)}-{k}",
                )
            )
    return examples


def _read_squad(path: str) -> list:
    from trainer.finetune.span_windows import read_squad

    return read_squad(path)


_CLUE = {"train": "train.json", "dev": "dev.json"}
_GLUE = {"train": "train.tsv", "dev": "dev.tsv"}
NAMED_TASKS = {
    task.name: task
    for task in (
        NamedTask("clue/tnews", "classify", _CLUE, labeled_reader("sentence", None, "label")),
        NamedTask("clue/iflytek", "classify", _CLUE, labeled_reader("sentence", None, "label")),
        NamedTask("clue/afqmc", "classify", _CLUE, labeled_reader("sentence1", "sentence2", "label")),
        NamedTask("clue/cmnli", "classify", _CLUE, labeled_reader("sentence1", "sentence2", "label", skip=("-",))),
        NamedTask("clue/csl", "classify", _CLUE, labeled_reader("abst", "keyword", "label")),
        NamedTask("clue/wsc", "classify", _CLUE, _read_wsc),
        NamedTask("clue/c3", "choice", _CLUE, _read_c3),
        NamedTask("clue/chid", "choice", _CLUE, _read_chid),
        NamedTask("clue/cmrc2018", "span", _CLUE, _read_squad),
        NamedTask(
            "glue/cola",
            "classify",
            _GLUE,
            labeled_reader("sentence", None, "label", ("source", "label", "original", "sentence")),
        ),
        NamedTask("glue/sst2", "classify", _GLUE, labeled_reader("sentence", None, "label")),
        NamedTask("glue/mrpc", "classify", _GLUE, labeled_reader("#1 String", "#2 String", "Quality"), positive="1"),
        NamedTask(
            "glue/qqp", "classify", _GLUE, labeled_reader("question1", "question2", "is_duplicate"), positive="1"
        ),
        NamedTask("glue/stsb", "regress", _GLUE, labeled_reader("sentence1", "sentence2", "score")),
        NamedTask(
            "glue/mnli",
            "classify",
            {"train": "train.tsv", "dev": "dev_matched.tsv"},
            labeled_reader("sentence1", "sentence2", "gold_label"),
        ),
        NamedTask("glue/qnli", "classify", _GLUE, labeled_reader("question", "sentence", "label")),
        NamedTask("glue/rte", "classify", _GLUE, labeled_reader("sentence1", "sentence2", "label")),
        NamedTask("squad1", "span", {"train": "train-v1.1.json", "dev": "dev-v1.1.json"}, _read_squad),
        NamedTask("squad2", "span", {"train": "train-v2.0.json", "dev": "dev-v2.0.json"}, _read_squad),
        NamedTask("race", "choice", {"train": "train", "dev": "dev", "test": "test"}, _read_race_dir),
    )
}


def named_task_files(task: NamedTask, data_dir: str, splits=("train", "dev")) -> dict[str, str]:
    """{split: path} of a named task's files in `data_dir` (test where the benchmark labels it and it is present);
    a missing one is an error naming it and what the directory holds."""
    import os

    files = {}
    for split in (*splits, *(["test"] if "test" in task.files else [])):  # CLUE/GLUE test sets have no labels
        name = task.files[split]
        path = os.path.join(data_dir, name)
        if os.path.exists(path):
            files[split] = path
        elif split in splits:
            found = ", ".join(sorted(os.listdir(data_dir))) if os.path.isdir(data_dir) else "no such directory"
            raise LabeledDataError(
                f"{task.name}: {path} is missing (the {split} file of {task.name}); {data_dir} holds: {found}"
            )
    return files


def named_task(name: str) -> NamedTask:
    if name not in NAMED_TASKS:
        raise LabeledDataError(f"unknown task {name!r}; named tasks: {', '.join(NAMED_TASKS)}")
    return NAMED_TASKS[name]
