"""Similar words from corpus statistics on Beam: the `similar.tsv` of `ambert vocab build --similar-words K`.

    table, stats = compute_similar_words(artifact_dir, corpus_files, SimilarWordsConfig(top_k=10), beam_args, work)

`ComputeSimilarWords` tokenizes the corpus with the artifact (loaded once per worker) into words (vocab/similar_words
`word_units`: Chinese words and characters, English words and phrases), counts them, keeps the most frequent,
counts which frequent words stand `window` places to their left and right (exact integer sums, so any number of
workers gives the same counts), and in one final step turns the counts into PPMI vectors (context distribution
smoothing 0.75), reduces them by truncated SVD (numpy `eigh`, singular values weighted by √) and lists each word's
`top_k` nearest neighbours by cosine among the words of its own shape (fine and coarse token counts).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import apache_beam as beam
import numpy as np

from pipelines.corpus import NormalizeLines, ReadCorpus
from pipelines.files import read_bytes, write_atomically
from pipelines.runner import beam_pipeline
from vocab.artifact import SPECIAL_TOKENS
from vocab.similar_words import (
    Entry,
    WordIds,
    check_similar_table,
    format_similar_tsv,
    unit_text,
    word_units,
)

SPECIALS = frozenset(SPECIAL_TOKENS.values())
BLOCK_ROWS = 1024  # words per block of the pair counts and of the dense pieces of the final step
CONTEXT_SMOOTHING = 0.75  # P(c) ** 0.75 in PMI (Levy, Goldberg and Dagan 2015)
EIGENVALUE_WEIGHT = 0.5  # vectors U Σ^0.5


@dataclass(frozen=True)
class SimilarWordsConfig:
    top_k: int = field(default=10, metadata={"help": "Similar words kept per word (--similar-words K)."})
    window: int = field(default=2, metadata={"help": "Context words on each side; left and right count apart."})
    contexts: int = field(default=2000, metadata={"help": "The most frequent words, used as context features."})
    dimensions: int = field(default=100, metadata={"help": "Dimensions of the word vectors (truncated SVD)."})
    min_count: int = field(default=5, metadata={"help": "Words seen fewer times get no vector and no table entry."})
    max_words: int = field(default=50_000, metadata={"help": "The most frequent words that get a vector."})

    def __post_init__(self):
        for name in ("top_k", "window", "contexts", "dimensions", "min_count", "max_words"):
            if getattr(self, name) < 1:
                raise ValueError(f"similar words: {name} must be at least 1, got {getattr(self, name)}")


@dataclass(frozen=True)
class UnitBatch:
    """The words of a batch of lines: `units` (distinct texts) and `sequence`, indices into them with `window`
    copies of -1 between lines, so that no context crosses a line."""

    units: tuple[str, ...]
    sequence: np.ndarray  # int32


@dataclass(frozen=True)
class WordVocabulary:
    """The words that get vectors, most frequent first (ties by text); the first `contexts` are the features."""

    words: tuple[str, ...]
    counts: tuple[int, ...]
    shapes: tuple[tuple[int, int], ...]  # (fine tokens, coarse tokens) of each word
    contexts: int

    @property
    def index(self) -> dict[str, int]:
        return {word: rank for rank, word in enumerate(self.words)}


class _TokenizeWords(beam.DoFn):
    """Cleaned lines → UnitBatch, with the artifact's tokenizer (loaded once per worker)."""

    def __init__(self, artifact_dir: str, window: int):
        self._artifact_dir = artifact_dir
        self._window = window
        self._tokenizer = None
        self._continues = None

    def setup(self):
        from vocab.artifact import read_vocab_lines
        from vocab.multigrained import MultiGrainedTokenizer

        self._tokenizer = MultiGrainedTokenizer.from_artifact(self._artifact_dir)
        fine_vocab = read_vocab_lines(f"{self._artifact_dir}/fine/vocab.txt")
        self._continues = np.asarray([token.startswith("##") for token in fine_vocab])

    def process(self, batch):
        index: dict[str, int] = {}
        sequence: list[int] = []
        for example in self._tokenizer.encode_batch(list(batch.lines)):
            tokens = example.coarse_tokens
            starts_word = ~self._continues[np.asarray(example.fine_ids)]
            for start, end in word_units(np.asarray(example.align), starts_word):
                if any(token in SPECIALS for token in tokens[start:end]):
                    sequence.append(-1)  # [CLS], [SEP]; an [UNK] holds a place but is no word
                else:
                    sequence.append(index.setdefault(unit_text(tokens[start:end]), len(index)))
            sequence.extend([-1] * self._window)
        yield UnitBatch(tuple(index), np.asarray(sequence, dtype=np.int32))


def _word_counts(batch: UnitBatch):
    counts = np.bincount(batch.sequence[batch.sequence >= 0], minlength=len(batch.units))
    return zip(batch.units, counts.tolist(), strict=True)


class _ChooseVocabulary(beam.DoFn):
    """All (word, count) pairs → the WordVocabulary: count ≥ min_count, no [UNK] piece, the max_words first."""

    def __init__(self, artifact_dir: str, cfg: SimilarWordsConfig):
        self._artifact_dir = artifact_dir
        self._cfg = cfg

    def process(self, keyed):
        _key, pairs = keyed
        ranked = sorted((pair for pair in pairs if pair is not None), key=lambda pair: (-pair[1], pair[0]))
        ids = WordIds.from_artifact(self._artifact_dir).of([word for word, _ in ranked]) if ranked else []
        kept = [(word, count, unit) for (word, count), unit in zip(ranked, ids, strict=True) if unit is not None]
        kept = kept[: self._cfg.max_words]
        yield WordVocabulary(
            words=tuple(word for word, _, _ in kept),
            counts=tuple(count for _, count, _ in kept),
            shapes=tuple((len(unit[0]), len(unit[1])) for _, _, unit in kept),
            contexts=min(self._cfg.contexts, len(kept)),
        )


def count_pairs(batch: UnitBatch, vocabulary: WordVocabulary, index: dict[str, int], window: int):
    """(block, (keys, counts)) of a batch: key = word × 2·contexts + feature, feature = context rank (left of the
    word) or contexts + context rank (right of it), for every frequent word and frequent context within `window`."""
    ranks = np.asarray([index.get(unit, -1) for unit in batch.units] + [-1], dtype=np.int64)
    words = ranks[batch.sequence]  # a -1 of the sequence picks the appended -1
    contexts = np.where(words < vocabulary.contexts, words, -1)
    features = 2 * vocabulary.contexts
    if features == 0:
        return
    keys = []
    for distance in range(1, window + 1):
        for word, context, side in (
            (words[distance:], contexts[:-distance], 0),  # the context is on the left
            (words[:-distance], contexts[distance:], vocabulary.contexts),  # on the right
        ):
            both = (word >= 0) & (context >= 0)
            keys.append(word[both] * features + side + context[both])
    keys, counts = np.unique(np.concatenate(keys), return_counts=True)
    bounds = np.searchsorted(keys // features // BLOCK_ROWS, np.arange(len(vocabulary.words) // BLOCK_ROWS + 2))
    for block, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):
        if hi > lo:
            yield block, (keys[lo:hi], counts[lo:hi].astype(np.int64))


class _CountPairs(beam.DoFn):
    def __init__(self, window: int):
        self._window = window
        self._cached: tuple[WordVocabulary, dict[str, int]] | None = None

    def process(self, batch, vocabulary):
        if self._cached is None or self._cached[0] is not vocabulary:
            self._cached = (vocabulary, vocabulary.index)
        yield from count_pairs(batch, vocabulary, self._cached[1], self._window)


def _sum_sparse(parts) -> tuple[np.ndarray, np.ndarray]:
    """Sum of sparse (keys, counts) pairs, sorted by key: exact, and the same whatever the order of the parts."""
    parts = list(parts)
    keys = np.concatenate([np.zeros(0, np.int64), *(keys for keys, _ in parts)])
    counts = np.concatenate([np.zeros(0, np.int64), *(counts for _, counts in parts)])
    if len(keys) == 0:
        return keys, counts
    order = np.argsort(keys, kind="stable")
    keys, counts = keys[order], counts[order]
    starts = np.flatnonzero(np.concatenate([[True], keys[1:] != keys[:-1]]))
    return keys[starts], np.add.reduceat(counts, starts)


class SumSparseCounts(beam.CombineFn):
    """Combines (keys, counts) pairs of one block by key; integer sums, so exact in any order."""

    def create_accumulator(self):
        return np.zeros(0, np.int64), np.zeros(0, np.int64)

    def add_input(self, accumulator, element):
        return _sum_sparse([accumulator, element])

    def merge_accumulators(self, accumulators):
        return _sum_sparse(accumulators)

    def extract_output(self, accumulator):
        return accumulator


def word_vectors(rows: np.ndarray, columns: np.ndarray, counts: np.ndarray, shape: tuple[int, int], dimensions: int):
    """Unit-length word vectors [words, ≤ dimensions] from sparse co-occurrence counts: PPMI with smoothed context
    probabilities, truncated SVD (the smaller Gram matrix's eigenvectors), U Σ^0.5. A word without features gets
    the zero vector."""
    words, features = shape
    if len(counts) == 0:
        return np.zeros((words, 0))
    counts = counts.astype(np.float64)
    row_totals = np.bincount(rows, weights=counts, minlength=words)
    smoothed = np.bincount(columns, weights=counts, minlength=features) ** CONTEXT_SMOOTHING
    pmi = np.log(counts) + np.log(smoothed.sum()) - np.log(row_totals[rows]) - np.log(smoothed[columns])
    positive = pmi > 0
    rows, columns, values = rows[positive], columns[positive], pmi[positive]

    def dense_rows(start: int, stop: int) -> np.ndarray:
        lo, hi = np.searchsorted(rows, [start, stop])
        block = np.zeros((stop - start, features))
        block[rows[lo:hi] - start, columns[lo:hi]] = values[lo:hi]
        return block

    if words <= features:  # eigenvectors of P Pᵀ are U directly
        ppmi = dense_rows(0, words)
        eigenvalues, eigenvectors = np.linalg.eigh(ppmi @ ppmi.T)
        top = np.argsort(eigenvalues)[::-1][:dimensions]
        top = top[eigenvalues[top] > 1e-9 * max(eigenvalues[top[0]], 1e-300)]
        vectors = eigenvectors[:, top] * eigenvalues[top] ** (EIGENVALUE_WEIGHT / 2)
    else:  # eigenvectors of Pᵀ P are V: U Σ^w = P V Σ^(w - 1)
        gram = np.zeros((features, features))
        for start in range(0, words, BLOCK_ROWS):
            block = dense_rows(start, min(start + BLOCK_ROWS, words))
            gram += block.T @ block
        eigenvalues, eigenvectors = np.linalg.eigh(gram)
        top = np.argsort(eigenvalues)[::-1][:dimensions]
        top = top[eigenvalues[top] > 1e-9 * max(eigenvalues[top[0]], 1e-300)]
        projection = eigenvectors[:, top] * eigenvalues[top] ** ((EIGENVALUE_WEIGHT - 1) / 2)
        vectors = np.concatenate(
            [dense_rows(start, min(start + BLOCK_ROWS, words)) @ projection for start in range(0, words, BLOCK_ROWS)]
        )
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)


def nearest_neighbours(vectors: np.ndarray, shapes: list[tuple[int, int]], top_k: int) -> list[list[tuple[int, float]]]:
    """For each word, up to top_k (word, cosine) of the same shape with a positive cosine, best first; cosines
    rounded to 4 decimals and ties broken by rank, so the list does not depend on the last bits of the product."""
    neighbours: list[list[tuple[int, float]]] = [[] for _ in shapes]
    has_vector = np.linalg.norm(vectors, axis=1) > 0 if vectors.size else np.zeros(len(shapes), dtype=bool)
    by_shape: dict[tuple[int, int], list[int]] = {}
    for rank, shape in enumerate(shapes):
        if has_vector[rank]:
            by_shape.setdefault(shape, []).append(rank)
    for members in by_shape.values():
        members = np.asarray(members)
        group = vectors[members]
        for start in range(0, len(members), BLOCK_ROWS):
            scores = np.round(group[start : start + BLOCK_ROWS] @ group.T, 4)
            for offset, row in enumerate(scores):
                row[start + offset] = -np.inf  # not its own neighbour
                if len(row) > top_k:
                    threshold = np.partition(row, -top_k)[-top_k]
                    candidates = np.flatnonzero(row >= threshold)
                else:
                    candidates = np.arange(len(row))
                candidates = candidates[np.lexsort((candidates, -row[candidates]))][:top_k]
                neighbours[members[start + offset]] = [
                    (int(members[c]), float(row[c])) for c in candidates if row[c] > 0
                ]
    return neighbours


class _NearestNeighbours(beam.DoFn):
    """All blocks of pair counts (one element) → (similar.tsv text, stats)."""

    def __init__(self, cfg: SimilarWordsConfig):
        self._cfg = cfg

    def process(self, keyed, vocabulary: WordVocabulary):
        _key, blocks = keyed
        parts = sorted((part for part in blocks if part is not None), key=lambda part: part[0])
        keys = np.concatenate([keys for _, (keys, _) in parts]) if parts else np.zeros(0, np.int64)
        counts = np.concatenate([counts for _, (_, counts) in parts]) if parts else np.zeros(0, np.int64)
        features = 2 * vocabulary.contexts
        shape = (len(vocabulary.words), features)
        vectors = word_vectors(keys // max(features, 1), keys % max(features, 1), counts, shape, self._cfg.dimensions)
        neighbours = nearest_neighbours(vectors, list(vocabulary.shapes), self._cfg.top_k)
        words = vocabulary.words
        entries = [
            (words[rank], tuple((words[other], score) for other, score in similar))
            for rank, similar in enumerate(neighbours)
            if similar
        ]
        stats = {
            "source": "corpus",
            "words": len(entries),
            "pairs": sum(len(similar) for _, similar in entries),
            "vocabulary": len(words),
            "contexts": vocabulary.contexts,
            "dimensions": int(vectors.shape[1]),
            "options": {name: getattr(self._cfg, name) for name in self._cfg.__dataclass_fields__},
        }
        yield format_similar_tsv(entries), stats


class ComputeSimilarWords(beam.PTransform):
    """Cleaned-text NormalizedBatch → one (similar.tsv text, stats) element."""

    def __init__(self, artifact_dir: str, cfg: SimilarWordsConfig):
        super().__init__()
        self._artifact_dir = artifact_dir
        self._cfg = cfg

    def expand(self, texts):
        cfg = self._cfg
        # the words of each batch of lines, as indices into its distinct word texts
        units = texts | "Tokenize" >> beam.ParDo(_TokenizeWords(self._artifact_dir, cfg.window))
        # the frequent words, ranked: the rows of the vectors (and the first `contexts`, their features)
        nothing = texts.pipeline | "Nothing" >> beam.Create([(None, None)])  # each gather runs, even on no input
        vocabulary = (
            (
                units
                | "CountPerBatch" >> beam.FlatMap(_word_counts)
                | "SumCounts" >> beam.CombinePerKey(sum)
                | "Frequent" >> beam.Filter(lambda pair, least: pair[1] >= least, cfg.min_count)
                | "OneKey" >> beam.Map(lambda pair: (None, pair)),
                nothing,
            )
            | "WithNothing" >> beam.Flatten()
            | "Gather" >> beam.GroupByKey()
            | "ChooseVocabulary" >> beam.ParDo(_ChooseVocabulary(self._artifact_dir, cfg))
        )
        ranked = beam.pvalue.AsSingleton(vocabulary)
        # (block of words, summed pair counts): which frequent word stands near which
        pairs = (
            units
            | "CountPairs" >> beam.ParDo(_CountPairs(cfg.window), ranked)
            | "SumPairs" >> beam.CombinePerKey(SumSparseCounts())
        )
        # vectors and neighbours, in one step over every block
        return (
            (pairs | "PairsOneKey" >> beam.Map(lambda part: (None, part)), nothing)
            | "PairsWithNothing" >> beam.Flatten()
            | "GatherPairs" >> beam.GroupByKey()
            | "Neighbours" >> beam.ParDo(_NearestNeighbours(cfg), ranked)
        )


class _WriteTable(beam.DoFn):
    def __init__(self, path: str):
        self._path = path

    def process(self, result):
        table, stats = result
        write_atomically(self._path, json.dumps({"table": table, "stats": stats}, ensure_ascii=False).encode("utf-8"))
        yield self._path


def compute_similar_words(
    artifact_dir: str, corpus_files: list[str], cfg: SimilarWordsConfig, beam_args: list[str], work: str
) -> tuple[bytes, dict]:
    """(similar.tsv bytes, stats) for the artifact at `artifact_dir` from the corpus, on Beam."""
    path = f"{work}/similar_words.json"
    with beam_pipeline(beam_args) as p:
        batches, _ = p | "ReadCorpus" >> ReadCorpus(corpus_files)
        texts, _ = batches | "CleanLines" >> NormalizeLines("clean_text")
        _ = texts | "SimilarWords" >> ComputeSimilarWords(artifact_dir, cfg) | "Write" >> beam.ParDo(_WriteTable(path))
    result = json.loads(read_bytes(path))
    return result["table"].encode("utf-8"), result["stats"]


def similar_words_table(
    artifact_dir: str,
    corpus_files: list[str],
    top_k: int,
    user_table: list[Entry] | None,
    user_table_path: str | None,
    beam_args: list[str],
    work: str,
) -> tuple[bytes | None, dict | None]:
    """The similar.tsv bytes and stats for `ambert vocab build`: the user's table checked against the artifact
    (SimilarWordsError names what does not fit), or one computed from the corpus with top_k words per word, or
    (None, None) when neither is asked for."""
    if user_table is not None:
        entries = check_similar_table(user_table, WordIds.from_artifact(artifact_dir), str(user_table_path))
        stats = {"source": "file", "words": len(entries), "pairs": sum(len(similar) for _, similar in entries)}
        return format_similar_tsv(entries).encode("utf-8"), stats
    if top_k:
        return compute_similar_words(artifact_dir, corpus_files, SimilarWordsConfig(top_k=top_k), beam_args, work)
    return None, None
