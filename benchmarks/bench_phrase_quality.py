"""Phrase quality of `ambert phrases`: precision of the top-K phrases against WordNet's multiword lemmas.

    .venv/bin/python benchmarks/bench_phrase_quality.py [--corpus PATH ...] [--phrases-dir DIR] [--no-gensim]

Gold list: every multiword lemma of WordNet 3.0 (nouns, verbs, adjectives, adverbs; e.g.
`united_states`, `grace_period`, `look_up`), read from /usr/share/wordnet/index.* of the Debian
package `wordnet-base` (`apt-get install wordnet-base`; WordNet 3.0 license: use, copy, modify and
distribute for any purpose, with Princeton's copyright notice), BERT-normalized like our phrases,
entries with punctuation dropped. It rewards lexical units only: names absent from WordNet count
as misses, so read the precision as relative (before/after, against gensim), not absolute.
Figures, one JSON line each: precision@K of the whole dictionary and of its bigrams; the same for
gensim's `Phrases` (npmi scoring, same normalized text, same minimum count) as the same-run
baseline; the share of the top 1,000 that start or end with a closed-class word (a fixed
English list used for evaluation only); 50 phrases drawn (seed 0) from the top 1,000 for a
human to read; the coarse ratio of a vocab artifact built from the dictionary on the corpus.
Without --phrases-dir it runs `ambert phrases` (defaults, 2 workers) on the corpus first.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_CORPUS = sorted(str(p) for p in (REPO.parent / "shared" / "data" / "en").glob("*.txt.gz"))
WORDNET = Path("/usr/share/wordnet")
KS = (100, 1000, 5000)
# Closed-class English words (determiners, pronouns, auxiliaries, prepositions, conjunctions): for
# the evaluation only; the scoring learns its boundary words from the corpus.
CLOSED_CLASS = set(
    """a an the this that these those my your his her its our their some any no every each all both
    either neither i you he she it we they me him us them who whom whose which what there here
    be is am are was were been being have has had having do does did can could may might must shall
    should will would of in on at by for with from to into onto upon over under about as than then
    and or but nor so if because while when where not""".split()
)


def emit(figure: str, **values) -> None:
    print(json.dumps({"figure": figure, **values}, ensure_ascii=False), flush=True)


def wordnet_phrases() -> set[str]:
    """WordNet's multiword lemmas as BERT-normalized, space-joined words without punctuation."""
    from vocab.normalization import basic_words, is_punctuation

    if not (WORDNET / "index.noun").exists():
        sys.exit("WordNet is missing: apt-get install wordnet-base (it installs /usr/share/wordnet/index.*)")
    gold = set()
    for part in ("noun", "verb", "adj", "adv"):
        with open(WORDNET / f"index.{part}", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith(" "):  # the license header
                    continue
                lemma = line.split(" ", 1)[0]
                if "_" not in lemma:
                    continue
                words = basic_words(lemma.replace("_", " "))
                if len(words) >= 2 and not any(is_punctuation(word) for word in words):
                    gold.add(" ".join(words))
    return gold


def precision(phrases: list[str], gold: set[str], k: int) -> float | None:
    top = phrases[:k]
    return round(sum(1 for phrase in top if phrase in gold) / len(top), 4) if len(top) == k else None


def normalized_segments(paths: list[str]):
    """The corpus as BERT words cut at punctuation (what the phrase pipeline counts)."""
    from vocab.normalization import basic_words, phrase_segments

    for path in paths:
        with gzip.open(path, "rt", encoding="utf-8", errors="replace") as lines:
            for line in lines:
                yield from phrase_segments(basic_words(line))


def gensim_bigrams(paths: list[str], min_count: int) -> list[str]:
    """gensim Phrases (npmi) bigrams with count >= min_count, best score first."""
    from gensim.models.phrases import Phrases

    segments = list(normalized_segments(paths))
    model = Phrases(segments, min_count=min_count, threshold=-1.0, scoring="npmi", delimiter=" ")
    scored = model.export_phrases()
    return [phrase for phrase, _score in sorted(scored.items(), key=lambda item: (-item[1], item[0]))]


def report(name: str, phrases: list[str], bigrams: list[str], gold: set[str]) -> dict:
    values = {f"precision_at_{k}": precision(phrases, gold, k) for k in KS}
    values.update({f"bigram_precision_at_{k}": precision(bigrams, gold, k) for k in KS})
    top = [phrase.split(" ") for phrase in phrases[:1000]]
    closed = sum(1 for words in top if words[0] in CLOSED_CLASS or words[-1] in CLOSED_CLASS)
    values["closed_class_edge_share_top_1000"] = round(closed / max(1, len(top)), 4)
    emit(name, phrases=len(phrases), **values)
    return values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--corpus",
        nargs="+",
        action="extend",
        help="Corpus paths (--corpus A B or --corpus A --corpus B; default: ../shared/data/en/*.txt.gz).",
    )
    parser.add_argument("--phrases-dir", help="an `ambert phrases` output directory to evaluate (default: run it)")
    parser.add_argument("--min-count", type=int, default=5)
    parser.add_argument("--no-gensim", action="store_true", help="skip the gensim baseline")
    parser.add_argument("--no-coarse-ratio", action="store_true", help="skip the vocab build for the coarse ratio")
    args = parser.parse_args()
    args.corpus = args.corpus or list(DEFAULT_CORPUS)
    from vocab.phrase_dictionary import read_phrase_tsv

    gold = wordnet_phrases()
    emit("gold", source="WordNet 3.0 multiword lemmas (Debian wordnet-base)", entries=len(gold))
    with tempfile.TemporaryDirectory(prefix="bench-quality-") as work:
        out = args.phrases_dir
        if out is None:
            out = os.path.join(work, "phrases")
            corpus_flags = [flag for path in args.corpus for flag in ("--corpus", path)]
            started = time.monotonic()
            subprocess.run(
                [
                    str(Path(sys.executable).parent / "ambert"),
                    "phrases",
                    *corpus_flags,
                    "--out",
                    out,
                    "--min-count",
                    str(args.min_count),
                    "--direct_num_workers",
                    "2",
                    "--direct_running_mode",
                    "multi_processing",
                ],
                check=True,
                stdout=subprocess.DEVNULL,
            )
            emit("ambert_phrases_run", seconds=round(time.monotonic() - started, 1))
        entries = read_phrase_tsv(os.path.join(out, "phrases.tsv"))
        phrases = [entry.phrase for entry in entries]
        ours = report("ours", phrases, [e.phrase for e in entries if e.n == 2], gold)
        emit("ours_by_length", **{str(n): sum(1 for e in entries if e.n == n) for n in range(2, 7)})
        emit("ours_top_30", phrases=phrases[:30])
        emit("ours_sample_50_of_top_1000", seed=0, phrases=sorted(random.Random(0).sample(phrases[:1000], 50)))
        if not args.no_gensim:
            started = time.monotonic()
            baseline = gensim_bigrams(args.corpus, args.min_count)
            theirs = report("gensim_phrases_npmi", baseline, baseline, gold)
            emit("gensim_seconds", value=round(time.monotonic() - started, 1), top_30=baseline[:30])
            for k in KS:
                if ours[f"bigram_precision_at_{k}"] and theirs[f"bigram_precision_at_{k}"]:
                    emit(
                        f"bigram_precision_at_{k}_ours_vs_gensim",
                        value=round(ours[f"bigram_precision_at_{k}"] / theirs[f"bigram_precision_at_{k}"], 3),
                    )
        if not args.no_coarse_ratio:
            from pipelines.vocab_build import VocabConfig, build_vocab

            artifact = build_vocab(
                VocabConfig(
                    lang="en",
                    corpus=tuple(args.corpus),
                    out=os.path.join(work, "vocab"),
                    phrases=os.path.join(out, "phrases.tsv"),
                ),
                ["--direct_num_workers", "2", "--direct_running_mode", "multi_processing"],
            )
            emit("coarse_ratio", value=artifact["stats"]["corpus"]["coarse_ratio"], paper=0.131)


if __name__ == "__main__":
    main()
