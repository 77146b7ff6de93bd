"""The options of the Beam pipelines, as frozen dataclasses: `ambert phrases`, `vocab build` and `shard build`.

Each field is declared once, with its default and help (`field(default=..., metadata={"help": ...})`); the CLI
generates its options from them (cli/options.py). Beam-free, so `ambert --help` stays fast.

    PhrasesConfig(corpus=("data/en",), out="out/phrases", min_count=3)
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field

from vocab.chinese_segmentation import DEFAULT_SEGMENTER, SEGMENTERS

MAX_KENLM_ORDER = 6  # the pip kenlm module and our lmplz are built with KENLM_MAX_ORDER=6


@dataclass(frozen=True)
class PhrasesConfig:
    corpus: tuple[str, ...] = field(
        metadata={"help": "Corpus files, directories or globs (.txt, .jsonl, optionally .gz/.bz2, .parquet)."}
    )
    out: str = field(metadata={"help": "Output directory (local path or Beam-supported URL)."})
    order: int = field(default=4, metadata={"help": "Longest n-gram counted and KenLM model order (2-6)."})
    min_count: int = field(default=5, metadata={"help": "Keep n-grams seen at least this often."})
    max_phrases: int = field(default=77_645, metadata={"help": "Size of the phrase dictionary (the paper: 77,645)."})
    min_dependency: float = field(
        default=1.0, metadata={"help": "Minimum cohesion (log10) of a phrase; see pipelines/phrase_scoring.py."}
    )
    boundary_word_share: float = field(
        default=0.4,
        metadata={"help": "Boundary (function) words: the most frequent words making this share of the corpus."},
    )
    boundary_min_bits: float = field(
        default=4.0,
        metadata={"help": "A frequent word is a boundary word on a side where its neighbour has this entropy (bits)."},
    )
    boundary_margin: float = field(
        default=1.5, metadata={"help": "Extra cohesion (log10) a phrase needs per edge word that is a boundary word."}
    )
    min_significance: float = field(
        default=1.96, metadata={"help": "Minimum t-score of a phrase's association (1.96: p < 0.025)."}
    )
    dominance: float = field(
        default=0.5,
        metadata={
            "help": "Drop a phrase when a longer kept phrase starting or ending with it has this share of its count."
        },
    )
    num_shards: int = field(default=8, metadata={"help": "Number of n-gram Parquet files."})
    batch_bytes: int = field(default=1 << 20, metadata={"help": "Bytes of corpus lines read per batch by each worker."})
    max_line_bytes: int = field(default=1 << 20, metadata={"help": "Lines longer than this are dropped as too_long."})
    kenlm_memory: str = field(default="20%", metadata={"help": "lmplz -S memory limit (e.g. 20%, 2G)."})
    kenlm_temp_dir: str | None = field(
        default=None,
        metadata={"help": "lmplz -T directory for KenLM's temporary and ARPA files (default: the system temp dir)."},
    )

    def __post_init__(self):
        if not 2 <= self.order <= MAX_KENLM_ORDER:
            raise ValueError(f"--order must be between 2 and {MAX_KENLM_ORDER}, got {self.order}")
        if self.min_count < 1 or self.max_phrases < 1 or self.num_shards < 1:
            raise ValueError("--min-count, --max-phrases and --num-shards must be positive")
        if not 0 <= self.boundary_word_share < 1 or not 0 < self.dominance <= 1:
            raise ValueError("--boundary-word-share must be in [0, 1) and --dominance in (0, 1]")
        if self.kenlm_temp_dir is not None and not os.path.isdir(self.kenlm_temp_dir):
            raise ValueError(f"--kenlm-temp-dir {self.kenlm_temp_dir} is not a directory: create it or drop the flag")

    @property
    def work_dir(self) -> str:
        return f"{self.out}/.work"


# Chinese: the word cap (max_words) bounds the dictionary on a large corpus; the minimum count
# only drops hapaxes. A cut at 5 cost 0.04 word F1 against PKU gold on a 5 MB corpus, 2 costs none
# (benchmarks/README.md).
DEFAULT_MIN_COUNT = {"en": 5, "zh": 2}


@dataclass(frozen=True)
class VocabConfig:
    lang: str = field(metadata={"help": "en (words + phrases) or zh (characters + words)."})
    corpus: tuple[str, ...] = field(
        metadata={"help": "Corpus files, directories or globs (.txt, .jsonl, optionally .gz/.bz2, .parquet)."}
    )
    out: str = field(metadata={"help": "Artifact directory to write."})
    fine_vocab: str | None = field(
        default=None, metadata={"help": "Fine vocab.txt, or 'train' (WordPiece); default: the bundled BERT vocabulary."}
    )
    fine_size: int | None = field(default=None, metadata={"help": "WordPiece vocabulary size with --fine-vocab train."})
    phrases: str | None = field(default=None, metadata={"help": "en: use this phrases.tsv instead of building one."})
    max_phrases: int = field(default=77_645, metadata={"help": "en: phrases kept (the paper: 77,645)."})
    max_words: int = field(default=72_635, metadata={"help": "zh: words kept (the paper: 72,635)."})
    min_count: int | None = field(
        default=None, metadata={"help": "Minimum count of a phrase or word (default: en 5, zh 2)."}
    )
    segmenter: str = field(
        default=DEFAULT_SEGMENTER,
        metadata={
            "help": "zh: thulac, jieba, pkuseg (an optional extra, see README) or ngram (a word model of the corpus, "
            "estimated from --ngram-initial-segmenter's words)."
        },
    )
    ngram_initial_segmenter: str = field(
        default=DEFAULT_SEGMENTER, metadata={"help": "zh, --segmenter ngram: whose words the word model counts."}
    )
    user_dict: str | None = field(
        default=None, metadata={"help": "zh: a user dictionary for the segmenter (ngram: for its initial one)."}
    )
    num_shards: int = field(default=8, metadata={"help": "Number of n-gram Parquet files (en)."})
    kenlm_memory: str = field(default="20%", metadata={"help": "en: lmplz -S memory limit (e.g. 20%, 2G)."})
    kenlm_temp_dir: str | None = field(
        default=None,
        metadata={
            "help": "en: lmplz -T directory for KenLM's temporary and ARPA files (default: the system temp dir)."
        },
    )
    similar_words: int = field(
        default=0, metadata={"help": "Add similar.tsv: up to K similar words per word, from the corpus (0: none)."}
    )
    similar_words_file: str | None = field(
        default=None, metadata={"help": "Add this similar.tsv (word<TAB>similar<TAB>score lines) instead."}
    )

    def __post_init__(self):
        if self.lang not in ("en", "zh"):
            raise ValueError(f"--lang must be en or zh, got {self.lang!r}")
        if self.fine_vocab == "train" and not self.fine_size:
            raise ValueError("--fine-vocab train needs --fine-size N (e.g. 30522)")
        if self.fine_vocab not in (None, "train") and not os.path.isfile(self.fine_vocab):
            raise ValueError(f"fine vocabulary not found: {self.fine_vocab} (a vocab.txt, or 'train')")
        if self.phrases and not os.path.isfile(self.phrases):
            raise ValueError(f"phrase dictionary not found: {self.phrases}")
        if self.user_dict and not os.path.isfile(self.user_dict):
            raise ValueError(f"segmenter user dictionary not found: {self.user_dict}")
        if self.segmenter not in SEGMENTERS:
            raise ValueError(f"--segmenter must be one of {', '.join(SEGMENTERS)}, got {self.segmenter!r}")
        if self.ngram_initial_segmenter not in SEGMENTERS or self.ngram_initial_segmenter == "ngram":
            choices = ", ".join(name for name in SEGMENTERS if name != "ngram")
            raise ValueError(
                f"--ngram-initial-segmenter must be one of {choices}, got {self.ngram_initial_segmenter!r}"
            )
        if self.similar_words < 0:
            raise ValueError(f"--similar-words must be 0 (none) or a number of words, got {self.similar_words}")
        if self.similar_words and self.similar_words_file:
            raise ValueError("give --similar-words K (computed from the corpus) or --similar-words-file, not both")
        if self.similar_words_file and not os.path.isfile(self.similar_words_file):
            raise ValueError(f"similar-word table not found: {self.similar_words_file}")

    @property
    def effective_min_count(self) -> int:
        return self.min_count if self.min_count is not None else DEFAULT_MIN_COUNT[self.lang]

    @property
    def segmenter_options(self) -> dict:
        return {"user_dict": self.user_dict} if self.user_dict else {}


PACKINGS = ("document", "full")


@dataclass(frozen=True)
class ShardConfig:
    vocab: str = field(metadata={"help": "Vocab artifact directory."})
    corpus: tuple[str, ...] = field(
        metadata={"help": "Corpus files, directories or globs (.txt, .jsonl, optionally .gz/.bz2, .parquet)."}
    )
    out: str = field(
        metadata={"help": "Shard set directory to write (a local path, a Beam filesystem URL or any fsspec URL)."}
    )
    max_seq_len: int = field(default=128, metadata={"help": "Most tokens per example, on both granularities."})
    nsp: bool = field(default=True, metadata={"help": "Sentence pairs with next-sentence labels."})
    packing: str = field(
        default="document",
        metadata={
            "help": "Without NSP: 'document' packs consecutive sentences of one document per example; 'full' "
            "(RoBERTa's FULL-SENTENCES) lets sentences flow across documents, a [SEP] after each document's "
            "piece, examples filled to max_seq_len and cut only between coarse tokens."
        },
    )
    samples_per_shard: int = field(
        default=10_000,
        metadata={
            "help": "About this many samples per shard (ceil(examples / N) shards, "
            "each an equal slice of the key space)."
        },
    )
    seed: int = field(default=12345, metadata={"help": "Seed of every random choice (hashed with document ids)."})
    docs_per_line: bool = field(
        default=False, metadata={"help": "One document per line in .txt (default: documents separated by blank lines)."}
    )
    pool_docs: int = field(
        default=1000,
        metadata={"help": "NSP: consecutive documents of a corpus split sharing a pool of random next segments."},
    )
    max_line_bytes: int = field(default=1 << 20, metadata={"help": "Lines longer than this are dropped as too_long."})
    split_bytes: int = field(
        default=0,
        metadata={
            "help": "Plain .txt/.jsonl files are read in pieces of this many bytes, one task each (compressed and "
            "Parquet files whole); 0: about 256 pieces, 1 MiB to 1 GiB each. NSP pools stay inside a piece."
        },
    )
    run_bytes: int = field(
        default=64 << 20,
        metadata={"help": "Examples a task holds in memory before writing a sorted run file (memory, not output)."},
    )

    def __post_init__(self):
        if not 8 <= self.max_seq_len <= 65_535:
            raise ValueError(f"--max-seq-len must be between 8 and 65535, got {self.max_seq_len}")
        if min(self.samples_per_shard, self.pool_docs, self.run_bytes) < 1 or self.split_bytes < 0:
            raise ValueError("--samples-per-shard and --pool-docs must be positive, --split-bytes ≥ 0 (0: auto)")
        if self.packing not in PACKINGS:
            raise ValueError(f"--packing must be one of {', '.join(PACKINGS)}, got {self.packing!r}")
        if self.packing == "full" and self.nsp:
            raise ValueError("--packing full packs single segments across documents: add --no-nsp")

    @property
    def work_dir(self) -> str:
        return f"{self.out}/.work"

    def manifest_options(self) -> dict:
        """The options that decide the shards' bytes (not where they go, nor memory use)."""
        options = {
            k: v for k, v in dataclasses.asdict(self).items() if k not in ("vocab", "corpus", "out", "run_bytes")
        }
        return {**options, "corpus": list(self.corpus)}
