"""Build data/tasks/zh_cloze/{train,dev,test}.jsonl: a real-text cloze multiple-choice task (ChID-style) from the
bundled Chinese sentences, for `ambert finetune --task choice --context-field context --options-field options`.

    .venv/bin/python data/tasks/make_cloze.py        # regenerates the files byte-identically

Each line of data/zh/pku199801_sample.txt.gz (People's Daily, 1998-01) with 12-80 characters is segmented with
jieba 0.42.1 (its default dictionary); one two-character word that occurs at least 5 times in the sample is blanked
as [MASK] (the word and the line chosen by sha256 of the line, not by a random generator); 3 distractors are
other two-character words of the sample's 200 most frequent, picked by sha256 of (line, word). Options are sorted,
the label is the blanked word's index. Split by sha256(line) mod 5: 0-2 train, 3 dev, 4 test; at most 400 / 100 / 100.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections import Counter
from pathlib import Path

import jieba

HERE = Path(__file__).resolve().parent
SOURCE = HERE.parent / "zh" / "pku199801_sample.txt.gz"
LIMITS = {"train": 400, "dev": 100, "test": 100}


def digest(*parts: str) -> int:
    return int(hashlib.sha256("\t".join(parts).encode("utf-8")).hexdigest(), 16)


def main() -> None:
    jieba.setLogLevel(60)
    with gzip.open(SOURCE, "rt", encoding="utf-8") as handle:
        lines = [line.strip() for line in handle if 12 <= len(line.strip()) <= 80]
    words = {line: jieba.lcut(line) for line in lines}
    counts = Counter(
        w for ws in words.values() for w in ws if len(w) == 2 and all("\u4e00" <= c <= "\u9fa5" for c in w)
    )
    frequent = [w for w, _ in counts.most_common(200)]
    splits = {name: [] for name in LIMITS}
    for line in sorted(lines, key=lambda text: digest(text)):
        candidates = [i for i, w in enumerate(words[line]) if counts.get(w, 0) >= 5]
        if not candidates:
            continue
        position = candidates[digest(line, "blank") % len(candidates)]
        answer = words[line][position]
        others = sorted((w for w in frequent if w != answer), key=lambda w: digest(line, w))[:3]
        options = sorted([answer, *others])
        context = "".join(words[line][:position]) + "[MASK]" + "".join(words[line][position + 1 :])
        split = ("train", "train", "train", "dev", "test")[digest(line) % 5]
        if len(splits[split]) < LIMITS[split]:
            splits[split].append(
                {
                    "id": f"cloze-{digest(line) % 10**8:08d}",
                    "context": context,
                    "options": options,
                    "label": options.index(answer),
                }
            )
    (HERE / "zh_cloze").mkdir(exist_ok=True)
    for split, rows in splits.items():
        with open(HERE / "zh_cloze" / f"{split}.jsonl", "w", encoding="utf-8") as handle:
            for row in rows:
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        print(split, len(rows))


if __name__ == "__main__":
    main()
