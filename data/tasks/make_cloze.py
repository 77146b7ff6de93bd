"""Build data/tasks/zh_cloze/{train,dev,test}.jsonl: a real-text cloze multiple-choice task (ChID-style) from the
bundled Chinese sentences, for `ambert finetune --task choice --context-field context --options-field options`.

    .venv/bin/python data/tasks/make_cloze.py        # regenerates the files byte-identically
    .venv/bin/python data/tasks/make_cloze.py --similar-from out/vocab-zh --out out/zh_cloze_similar

Each line of data/zh/pku199801_sample.txt.gz (People's Daily, 1998-01) with 12-80 characters is segmented with
jieba 0.42.1 (its default dictionary); one two-character word that occurs at least 5 times in the sample is blanked
as [MASK] (the word and the line chosen by sha256 of the line, not by a random generator); 3 distractors are
other two-character words of the sample's 200 most frequent, picked by sha256 of (line, word). Options are sorted,
the label is the blanked word's index. Split by sha256(line) mod 5: 0-2 train, 3 dev, 4 test; at most 400 / 100 / 100.
With --similar-from ARTIFACT (a vocab artifact with the similar-word table similar.tsv, `ambert vocab build
--similar-words K`) the distractors are the blanked word's most similar words of its length, best first (the
frequent words, as above, fill in when it has fewer than 3): a harder set, where the options fit the context.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import sys
from collections import Counter
from pathlib import Path

import jieba

HERE = Path(__file__).resolve().parent
SOURCE = HERE.parent / "zh" / "pku199801_sample.txt.gz"
LIMITS = {"train": 400, "dev": 100, "test": 100}


def digest(*parts: str) -> int:
    return int(hashlib.sha256("\t".join(parts).encode("utf-8")).hexdigest(), 16)


def similar_words(artifact: str) -> dict[str, list[str]]:
    """{word: its similar words, best first} from the artifact's similar.tsv."""
    sys.path.insert(0, str(HERE.parents[1]))  # the repository's vocab package, when run as a script
    from vocab.artifact import SIMILAR_WORDS_FILE
    from vocab.similar_words import read_similar_tsv

    path = os.path.join(artifact, SIMILAR_WORDS_FILE)
    if not os.path.exists(path):
        sys.exit(f"{artifact} has no {SIMILAR_WORDS_FILE}: build the vocab with `ambert vocab build --similar-words K`")
    return {word: [other for other, _score in similar] for word, similar in read_similar_tsv(path)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--similar-from", help="a vocab artifact with similar.tsv: distractors from similar words")
    parser.add_argument("--out", default=str(HERE / "zh_cloze"), help="directory to write (default: the bundled set)")
    args = parser.parse_args(argv)
    similar = similar_words(args.similar_from) if args.similar_from else {}
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
        close = [w for w in similar.get(answer, ()) if len(w) == len(answer) and w != answer][:3]
        others = close + sorted((w for w in frequent if w not in (answer, *close)), key=lambda w: digest(line, w))
        others = others[:3]
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
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for split, rows in splits.items():
        with open(out / f"{split}.jsonl", "w", encoding="utf-8") as handle:
            for row in rows:
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        print(split, len(rows))


if __name__ == "__main__":
    main()
