"""Building a versioned vocab artifact (DESIGN.md, "Vocab artifact") from raw corpora.

    ambert vocab build --lang en --corpus data/en --out out/vocab-en [--phrases FILE]
    ambert vocab build --lang zh --corpus data/zh --out out/vocab-zh [--max-words N] [--segmenter ngram]
        [--similar-words K]

Fine vocabulary: the bundled BERT vocabulary of the language, a given file, or WordPiece
trained with `tokenizers`. Coarse vocabulary: the fine one plus English phrases (the phrases
pipeline on the same corpus, or --phrases) or the most frequent Chinese words (counted on Beam
with the segmenter loaded once per worker; `--segmenter ngram` first estimates its word model from
another segmenter's words, and the artifact stores it). A second Beam pass tokenizes the corpus with the
new vocabulary to measure the coarse ratio, which goes into stats.json; with --similar-words K a
third (pipelines/similar_words.py) adds similar.tsv (or --similar-words-file FILE). Nothing that
varies between identical builds (timings, runner flags) goes into the artifact: same inputs and
options give byte-identical artifacts on any runner.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import tempfile
from collections import Counter
from pathlib import Path

import apache_beam as beam

from pipelines.accounting import WriteCounters, counter
from pipelines.configs import VocabConfig
from pipelines.corpus import NormalizeLines, ReadCorpus
from pipelines.files import expand_corpus_paths, file_size, read_bytes, read_lines, write_atomically
from pipelines.runner import beam_pipeline
from pipelines.similar_words import similar_words_table
from pipelines.word_counts import CountWords
from vocab.artifact import read_vocab_lines
from vocab.chinese_segmentation import SEGMENTER_FILES, format_word_model
from vocab.phrase_dictionary import format_phrase_tsv, rank_phrases, read_phrase_tsv
from vocab.similar_words import read_similar_tsv
from vocab.word_dictionary import format_word_tsv, rank_words

BUNDLED_FINE_VOCABS = {
    "en": Path(__file__).resolve().parent.parent / "vocab" / "bert" / "uncased_30522.txt",
    "zh": Path(__file__).resolve().parent.parent / "vocab" / "bert" / "chinese_21128.txt",
}
PAPER_SIZES = {"en": {"fine": 30_522, "coarse_units": 77_645}, "zh": {"fine": 21_128, "coarse_units": 72_635}}


def fine_vocab_lines(cfg: VocabConfig, corpus_files: list[str]) -> list[str]:
    """The fine WordPiece vocabulary, [PAD]/[UNK]/[CLS]/[SEP]/[MASK] included."""
    if cfg.fine_vocab is None:
        return read_vocab_lines(str(BUNDLED_FINE_VOCABS[cfg.lang]))
    if cfg.fine_vocab != "train":
        return read_vocab_lines(cfg.fine_vocab)
    from tokenizers import BertWordPieceTokenizer

    def texts():
        for path in corpus_files:
            for line in read_lines(path, 1 << 20):
                if line.data is not None:
                    yield line.data.decode("utf-8", errors="replace")

    trainer = BertWordPieceTokenizer(lowercase=True, strip_accents=True, handle_chinese_chars=True)
    trainer.train_from_iterator(texts(), vocab_size=cfg.fine_size, min_frequency=2, show_progress=False)
    vocab = trainer.get_vocab()
    return [token for token, _id in sorted(vocab.items(), key=lambda item: item[1])]


def english_dictionary(cfg: VocabConfig, beam_args: list[str], work: str) -> tuple[list[str], bytes, dict]:
    """(phrases, phrases.tsv bytes, the phrase pipeline's stats or {})."""
    if cfg.phrases:
        entries, stats = read_phrase_tsv(cfg.phrases), {"phrases_file": cfg.phrases}
    else:
        from pipelines.phrases import PhrasesConfig, run

        phrase_cfg = PhrasesConfig(
            corpus=cfg.corpus,
            out=f"{work}/phrases",
            min_count=cfg.effective_min_count,
            max_phrases=cfg.max_phrases,
            num_shards=cfg.num_shards,
            kenlm_memory=cfg.kenlm_memory,
            kenlm_temp_dir=cfg.kenlm_temp_dir,
        )
        stats = run(phrase_cfg, beam_args)
        entries = read_phrase_tsv(f"{work}/phrases/phrases.tsv")
    entries = rank_phrases(entries, cfg.max_phrases)
    return [e.phrase for e in entries], format_phrase_tsv(entries).encode("utf-8"), stats


class _WriteRows(beam.DoFn):
    def __init__(self, path: str):
        self._path = path

    def process(self, keyed):
        _key, shards = keyed
        rows = sorted(row for rows in shards for row in rows)
        write_atomically(self._path, json.dumps(rows, ensure_ascii=False).encode("utf-8"))
        yield counter("words_written", len(rows))


def count_words(
    corpus_files: list[str],
    beam_args: list[str],
    work: str,
    name: str,
    segmenter: str,
    options: dict,
    min_count: int,
    num_shards: int,
    min_length: int = 2,
) -> tuple[list[tuple[str, int]], dict]:
    """(sorted [(word, count)], counters) from a Beam pass of `segmenter` over the corpus."""
    with beam_pipeline(beam_args) as p:
        batches, read_counts = p | "ReadCorpus" >> ReadCorpus(corpus_files)
        texts, clean_counts = batches | "CleanLines" >> NormalizeLines("clean_text")
        rows, word_counts = texts | "CountWords" >> CountWords(
            segmenter, options, min_count, num_shards, f"{work}/{name}_counts", min_length
        )
        written = (
            rows
            | "OneKey" >> beam.Map(lambda keyed: (None, keyed[1]))
            | "Gather" >> beam.GroupByKey()
            | "WriteRows" >> beam.ParDo(_WriteRows(f"{work}/{name}_rows.json"))
        )
        (read_counts, clean_counts, word_counts, written) | "WriteCounters" >> WriteCounters(
            f"{work}/{name}_counters.json"
        )
    rows = [tuple(row) for row in json.loads(read_bytes(f"{work}/{name}_rows.json"))]
    return rows, json.loads(read_bytes(f"{work}/{name}_counters.json"))


def ngram_word_model(cfg: VocabConfig, corpus_files: list[str], beam_args: list[str], work: str) -> bytes:
    """The ngram segmenter's word model: every word and character of the initial segmenter's output,
    words of 2+ characters kept from the minimum count on (module vocab.chinese_segmentation)."""
    rows, _counters = count_words(
        corpus_files,
        beam_args,
        work,
        "model",
        cfg.ngram_initial_segmenter,
        cfg.segmenter_options,
        1,
        cfg.num_shards,
        min_length=1,
    )
    kept = [(word, count) for word, count in rows if len(word) == 1 or count >= cfg.effective_min_count]
    return format_word_model(kept).encode("utf-8")


def chinese_dictionary(
    cfg: VocabConfig, corpus_files: list[str], beam_args: list[str], work: str
) -> tuple[list[str], bytes, dict, dict]:
    """(words, words.tsv bytes, counters, segmenter files) from a Beam pass of the segmenter over the corpus."""
    segmenter, options, files = cfg.segmenter, cfg.segmenter_options, {}
    if cfg.user_dict:
        files[SEGMENTER_FILES["user_dict"]] = Path(cfg.user_dict).read_bytes()
    if cfg.segmenter == "ngram":
        model = ngram_word_model(cfg, corpus_files, beam_args, work)
        Path(work, "word_model.tsv").write_bytes(model)
        options, files = {"word_model": f"{work}/word_model.tsv"}, {SEGMENTER_FILES["word_model"]: model}
    rows, counters = count_words(
        corpus_files, beam_args, work, "words", segmenter, options, cfg.effective_min_count, cfg.num_shards
    )
    words = rank_words(rows, cfg.max_words)
    return (
        [w for w, _c in words],
        format_word_tsv(words).encode("utf-8"),
        counters,
        {
            "options": options,
            "files": files,
        },
    )


class _MeasureCoarseRatio(beam.DoFn):
    """Tokenizes cleaned lines with the new artifact (loaded once per worker) and counts."""

    def __init__(self, artifact_dir: str):
        self._artifact_dir = artifact_dir
        self._tokenizer = None

    def setup(self):
        from vocab.multigrained import MultiGrainedTokenizer

        self._tokenizer = MultiGrainedTokenizer.from_artifact(self._artifact_dir)

    def process(self, batch):
        stats: Counter[str] = Counter()
        for example in self._tokenizer.encode_batch(list(batch.lines)):
            spans = [end - start for start, end in example.align[1:-1]]  # without [CLS], [SEP]
            stats["coarse_tokens"] += len(spans)
            stats["coarse_multi_fine"] += sum(1 for width in spans if width > 1)
            stats["fine_tokens"] += len(example.fine_ids) - 2
        for name, amount in stats.items():
            yield counter(name, amount)


def measure_coarse_ratio(artifact_dir: str, corpus_files: list[str], beam_args: list[str], work: str) -> dict:
    with beam_pipeline(beam_args) as p:
        batches, _ = p | "ReadCorpus" >> ReadCorpus(corpus_files)
        texts, _ = batches | "CleanLines" >> NormalizeLines("clean_text")
        counts = texts | "Tokenize" >> beam.ParDo(_MeasureCoarseRatio(artifact_dir))
        (counts,) | "WriteCounters" >> WriteCounters(f"{work}/ratio_counters.json")
    counts = json.loads(read_bytes(f"{work}/ratio_counters.json"))
    coarse = counts.get("coarse_tokens", 0)
    return {
        "coarse_tokens": coarse,
        "fine_tokens": counts.get("fine_tokens", 0),
        "coarse_multi_fine": counts.get("coarse_multi_fine", 0),
        "coarse_ratio": round(counts.get("coarse_multi_fine", 0) / coarse, 4) if coarse else 0.0,
    }


def corpus_fingerprints(corpus_files: list[str]) -> list[dict]:
    return [{"path": path, "bytes": file_size(path)} for path in corpus_files]


def build_vocab(cfg: VocabConfig, beam_args: list[str] | None = None) -> dict:
    """Build the artifact into cfg.out; returns its artifact.json content."""
    from vocab.artifact import read_artifact, write_artifact

    beam_args = list(beam_args or [])
    corpus_files = expand_corpus_paths(list(cfg.corpus))
    user_similar = read_similar_tsv(cfg.similar_words_file) if cfg.similar_words_file else None  # format errors first
    work = tempfile.mkdtemp(prefix="ambert-vocab-")
    try:
        fine = fine_vocab_lines(cfg, corpus_files)
        if cfg.lang == "en":
            units, dictionary, dictionary_stats = english_dictionary(cfg, beam_args, work)
            dictionary_name, segmenter = "phrases.tsv", None
            extra_files = {}
        else:
            from vocab.chinese_segmentation import describe_segmenter

            units, dictionary, dictionary_stats, used = chinese_dictionary(cfg, corpus_files, beam_args, work)
            dictionary_name = "words.tsv"
            segmenter = describe_segmenter(cfg.segmenter, **used["options"])
            extra_files = used["files"]
        options = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in ("out", "corpus")}
        created_from = {"corpus": corpus_fingerprints(corpus_files), "options": options}
        fine_set = set(fine)
        coarse_units = [unit for unit in units if unit not in fine_set]
        artifact_args = dict(
            lang=cfg.lang,
            fine_vocab_lines=fine,
            coarse_units=coarse_units,
            dictionary_file_name=dictionary_name,
            dictionary_bytes=dictionary,
            segmenter_spec=segmenter,
            created_from=created_from,
            extra_files=extra_files,
        )
        provisional = f"{work}/provisional"
        write_artifact(provisional, stats={}, **artifact_args)
        ratio = measure_coarse_ratio(provisional, corpus_files, beam_args, work)
        similar, similar_stats = similar_words_table(
            provisional, corpus_files, cfg.similar_words, user_similar, cfg.similar_words_file, beam_args, work
        )
        stats = {
            "corpus": ratio,
            "paper_coarse_ratio": {"en": 0.131, "zh": 0.515}[cfg.lang],
            "sizes": {
                "fine": len(fine),
                "coarse": len(fine) + len(coarse_units),
                "coarse_units": len(coarse_units),
                "paper": PAPER_SIZES[cfg.lang],
            },
            # only what the same inputs always reproduce: no timings, runner flags or paths
            "dictionary": {k: v for k, v in dictionary_stats.items() if k not in ("timings_seconds", "options")},
        }
        if similar_stats is not None:
            stats["similar_words"] = similar_stats
        write_artifact(cfg.out, stats=stats, similar_words_bytes=similar, **artifact_args)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return read_artifact(cfg.out)
