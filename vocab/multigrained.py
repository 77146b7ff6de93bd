"""The multi-grained tokenizer: every text as fine (BERT) and coarse (phrase / word) tokens, aligned.

example = MultiGrainedTokenizer.from_artifact("out/vocab-en").encode("I live in New York.")
example.coarse_tokens -> ('[CLS]', 'i', 'live', 'in', 'new york', '.', '[SEP]')
example.align         -> ((0, 1), (1, 2), (2, 3), (3, 4), (4, 6), (6, 7), (7, 8))   # into fine tokens
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from itertools import compress
from operator import itemgetter

from tokenizers import Tokenizer

from vocab.artifact import ArtifactError, read_artifact, read_vocab_lines, verify_artifact
from vocab.chinese_segmentation import SEGMENTER_FILES, Segmenter, SegmenterError, make_segmenter, segmenter_spec
from vocab.normalization import basic_words, cjk_runs
from vocab.phrase_dictionary import read_phrase_tsv
from vocab.phrase_segmentation import PhraseMatcher

Span = tuple[int, int]


@dataclass(frozen=True)
class AlignedExample:
    """One encoded text (or pair). align[j] = fine positions [start, end) under coarse token j."""

    fine_ids: tuple[int, ...]
    coarse_ids: tuple[int, ...]
    align: tuple[Span, ...]
    fine_type: tuple[int, ...]
    coarse_type: tuple[int, ...]
    fine_offsets: tuple[Span, ...]  # character offsets into the source text; (0, 0) for specials
    coarse_offsets: tuple[Span, ...]
    fine_tokens: tuple[str, ...]
    coarse_tokens: tuple[str, ...]


class MultiGrainedTokenizer:
    """Fine (BERT WordPiece) and coarse (phrases / words) tokens of a text; load with from_artifact.

    Fine tokens are fine/tokenizer.json's (Hugging Face's BERT uncased pipeline). Coarse units are
    whole BERT words: English phrases matched left to right inside punctuation-free runs, or
    Chinese words from the artifact's segmenter, run on maximal CJK runs only. A unit in the
    coarse vocabulary is one coarse token over its fine tokens; a Chinese word that is not is
    split into the fewest in-vocabulary words and characters (split_out_of_vocabulary); any other
    unit falls back to its fine pieces, one coarse token each (coarse vocab ⊇ fine vocab, same ids).
    """

    def __init__(
        self, lang: str, fine: Tokenizer, coarse_vocab: list[str], matcher: PhraseMatcher | None, segmenter=None
    ):
        self.lang = lang
        self.fine = fine
        self.coarse_vocab = coarse_vocab
        self.coarse_index = {token: index for index, token in enumerate(coarse_vocab)}
        self.matcher = matcher
        self.segmenter = segmenter
        # fine token strings by id: a lookup per token is far cheaper than Encoding.tokens,
        # which builds a new string per token (WordPiece tokens are their vocabulary entries)
        by_id = fine.get_vocab(with_added_tokens=True)
        self._fine_tokens = [""] * (max(by_id.values()) + 1)
        for token, index in by_id.items():
            self._fine_tokens[index] = token
        self._splits: dict[str, tuple[str, ...]] = {}  # out-of-vocabulary word -> its split (_split)
        self.cls_id = self.coarse_index["[CLS]"]
        self.sep_id = self.coarse_index["[SEP]"]

    @classmethod
    def from_artifact(
        cls, directory: str, segmenter: str | Segmenter | None = None, verify: bool = True
    ) -> MultiGrainedTokenizer:
        """Load (and by default verify) an artifact. `segmenter` (zh only), a name or a segmenter
        object, is refused unless it is the one recorded in the artifact."""
        document = verify_artifact(directory) if verify else read_artifact(directory)
        fine = Tokenizer.from_file(os.path.join(directory, "fine", "tokenizer.json"))
        coarse_vocab = read_vocab_lines(os.path.join(directory, "coarse", "vocab.txt"))
        if document["lang"] == "en":
            if segmenter is not None:
                raise SegmenterError(
                    f"artifact {directory} is English; English artifacts use no word segmenter: "
                    "drop the segmenter argument (--segmenter)"
                )
            phrases = read_phrase_tsv(os.path.join(directory, document["dictionary"]))
            coarse_set = set(coarse_vocab)
            matcher = PhraseMatcher(e.phrase for e in phrases if e.phrase in coarse_set)
            return cls("en", fine, coarse_vocab, matcher)
        if document["lang"] != "zh":
            raise ArtifactError(f"artifact {directory} has lang {document['lang']!r}; expected en or zh")
        spec = document.get("segmenter")
        if not spec:
            raise ArtifactError(f"Chinese artifact {directory} records no segmenter in artifact.json; rebuild it")
        if isinstance(segmenter, str) and segmenter != spec["name"]:
            raise SegmenterError(
                f"artifact {directory} was built with {spec['name']}; refusing to tokenize "
                f"with {segmenter}: rebuild it with --segmenter {segmenter}, or drop --segmenter"
            )
        if segmenter is not None and not isinstance(segmenter, str):
            if segmenter_spec(segmenter) != spec:
                raise SegmenterError(
                    f"artifact {directory} was built with segmenter {spec}; refusing to tokenize "
                    f"with {segmenter_spec(segmenter)}: rebuild the artifact with that segmenter, "
                    "or pass none to load the artifact's own"
                )
            return cls("zh", fine, coarse_vocab, None, segmenter)
        options = {}
        for key, value in spec.get("options", {}).items():
            if key.endswith("_sha256"):  # a file the artifact holds: user dictionary, word model
                if value:
                    options[key.removesuffix("_sha256")] = os.path.join(directory, SEGMENTER_FILES[key[:-7]])
            else:
                options[key] = value
        loaded = make_segmenter(spec["name"], **options)
        if segmenter_spec(loaded) != spec:
            raise SegmenterError(
                f"artifact {directory} needs segmenter {spec}, but this machine has "
                f"{segmenter_spec(loaded)}; install that version or rebuild the artifact"
            )
        return cls("zh", fine, coarse_vocab, None, loaded)

    # -- public API -------------------------------------------------------------------------
    def encode(self, text: str) -> AlignedExample:
        """[CLS] text [SEP] at both granularities."""
        return self._build([text], self.fine.encode(text))

    def encode_pair(self, text_a: str, text_b: str) -> AlignedExample:
        """[CLS] a [SEP] b [SEP]; segment type 0 up to the first [SEP], 1 after it."""
        return self._build([text_a, text_b], self.fine.encode(text_a, text_b))

    def encode_batch(self, texts: list[str]) -> list[AlignedExample]:
        """[encode(t) for t in texts], with the fine side encoded in parallel by `tokenizers`."""
        encodings = self.fine.encode_batch(texts)
        return [self._build([text], encoding) for text, encoding in zip(texts, encodings, strict=True)]

    # -- coarse units -------------------------------------------------------------------------
    def _phrase_groups(self, text: str, sequence: int, encoding, pieces: list[str]) -> list[tuple[int, int, str]]:
        """English: the phrases of `text` (sequence `sequence` of `encoding`, fine tokens `pieces`)
        as (first fine position, end fine position, phrase), left to right."""
        words = " ".join(pieces).replace(" ##", "").split(" ")  # a word is its pieces joined
        if "[UNK]" in pieces:  # an [UNK] hides its word: normalize again
            normalized = basic_words(text)
            if len(normalized) != len(words):
                raise ArtifactError(
                    f"the fine tokenizer and BERT normalization disagree on {text[:80]!r}: is "
                    "fine/tokenizer.json the BERT uncased pipeline?"
                )
            words = normalized
        # one call per text: phrases hold no punctuation word, so no match crosses punctuation
        return [
            (
                encoding.word_to_tokens(first, sequence)[0],
                encoding.word_to_tokens(end - 1, sequence)[1],
                " ".join(words[first:end]),
            )
            for first, end in self.matcher.phrase_spans(words)
        ]

    def _word_groups(self, text: str, sequence: int, encoding) -> list[tuple[int, int, str]]:
        """Chinese: the in-vocabulary words of 2+ characters of `text` that begin and end on fine
        word boundaries, as (first fine position, end fine position, word), left to right."""
        groups = []
        vocabulary, cut, split = self.coarse_index, self.segmenter.cut, self._split
        for run_start, run_end in cjk_runs(text):
            run = text[run_start:run_end]
            words = cut(run)
            if "".join(words) != run:
                raise SegmenterError(
                    f"segmenter {self.segmenter.name} lost or changed characters of {run[:80]!r}: "
                    "its pieces must join back to the input"
                )
            # as a rule every character of a CJK run is a fine word of one token: then character
            # run_start + k is fine position first_token + k, and every character starts and ends a word
            first_word, last_word = (
                encoding.char_to_word(run_start, sequence),
                encoding.char_to_word(run_end - 1, sequence),
            )
            first_token, last_token = (
                encoding.char_to_token(run_start, sequence),
                encoding.char_to_token(run_end - 1, sequence),
            )
            one_to_one = (
                None not in (first_word, last_word, first_token, last_token)
                and last_word - first_word == last_token - first_token == run_end - run_start - 1
            )
            if not one_to_one:
                position = run_start
                for word in words:
                    length = len(word)
                    if length == 1:
                        position += 1
                        continue
                    for unit in (word,) if word in vocabulary else split(word):
                        start, position = position, position + len(unit)
                        span = self._word_span(encoding, sequence, start, position) if len(unit) > 1 else None
                        if span is not None:
                            groups.append((*span, unit))
                continue
            position = first_token  # character run_start + k is fine position first_token + k
            for word in words:
                length = len(word)
                if length == 1:
                    position += 1
                elif word in vocabulary:
                    groups.append((position, position + length, word))
                    position += length
                else:
                    for unit in split(word):
                        if len(unit) > 1:
                            groups.append((position, position + len(unit), unit))
                        position += len(unit)
        return groups

    def _split(self, word: str) -> tuple[str, ...]:
        """split_out_of_vocabulary(word), remembered: it depends on the word alone, and frequent
        out-of-vocabulary words recur (the memory is emptied at 65,536 words)."""
        pieces = self._splits.get(word)
        if pieces is None:
            if len(self._splits) >= 1 << 16:
                self._splits.clear()
            pieces = self._splits[word] = tuple(split_out_of_vocabulary(word, self.coarse_index))
        return pieces

    @staticmethod
    def _word_span(encoding, sequence: int, start: int, end: int) -> Span | None:
        """The fine positions of characters [start, end) when they begin and end on fine word boundaries."""
        first, last = encoding.char_to_word(start, sequence), encoding.char_to_word(end - 1, sequence)
        if first is None or last is None:
            return None
        if encoding.word_to_chars(first, sequence)[0] != start or encoding.word_to_chars(last, sequence)[1] != end:
            return None
        return encoding.word_to_tokens(first, sequence)[0], encoding.word_to_tokens(last, sequence)[1]

    # -- assembly ---------------------------------------------------------------------------
    def _build(self, texts: list[str], encoding) -> AlignedExample:
        # read each Encoding property once: every access builds a new Python list
        ids, offsets = encoding.ids, encoding.offsets
        fine_tokens = self._fine_tokens
        tokens = list(map(fine_tokens.__getitem__, ids))
        total = len(ids)
        types = encoding.type_ids if len(texts) > 1 else [0] * total  # one text: every type is 0
        # the fine positions of each text: [CLS] A [SEP], or [CLS] A [SEP] B [SEP] (B has type 1)
        ends = [total - 1] if len(texts) == 1 else [types.index(1) - 1, total - 1]
        groups: list[tuple[int, int, str]] = []
        for sequence, (text, end) in enumerate(zip(texts, ends, strict=True)):
            start = 1 if sequence == 0 else ends[0] + 1
            if end == start:
                continue  # a text of no fine token
            if self.lang == "en":
                groups += self._phrase_groups(text, sequence, encoding, tokens[start:end])
            else:
                groups += self._word_groups(text, sequence, encoding)
        fine_ids, fine_offsets = tuple(ids), tuple(offsets)
        identity = _identity_align(total)
        if not groups:  # one coarse token per fine token
            return AlignedExample(
                fine_ids=fine_ids,
                coarse_ids=fine_ids,
                align=identity,
                fine_type=tuple(types),
                coarse_type=tuple(types),
                fine_offsets=fine_offsets,
                coarse_offsets=fine_offsets,
                fine_tokens=tuple(tokens),
                coarse_tokens=tuple(tokens),
            )
        # coarse token j starts at fine position firsts[j]: every position but those inside a unit
        starts_coarse = [True] * total
        for start, stop, _unit in groups:
            starts_coarse[start + 1 : stop] = [False] * (stop - start - 1)
        firsts = list(compress(range(total), starts_coarse))
        pick = itemgetter(*firsts)  # len(firsts) >= 2: [CLS] and [SEP] start tokens of their own
        coarse_ids, coarse_tokens, coarse_offsets = list(pick(ids)), list(pick(tokens)), list(pick(offsets))
        inside = 0  # fine positions inside the units so far: unit k is coarse token start - inside
        for start, stop, unit in groups:
            j = start - inside
            coarse_ids[j], coarse_tokens[j] = self.coarse_index[unit], unit
            coarse_offsets[j] = (offsets[start][0], offsets[stop - 1][1])
            inside += stop - start - 1
        return AlignedExample(
            fine_ids=fine_ids,
            coarse_ids=tuple(coarse_ids),
            align=tuple(zip(firsts, firsts[1:] + [total], strict=True)),
            fine_type=tuple(types),
            coarse_type=pick(types),
            fine_offsets=fine_offsets,
            coarse_offsets=tuple(coarse_offsets),
            fine_tokens=tuple(tokens),
            coarse_tokens=tuple(coarse_tokens),
        )


_IDENTITY: list[tuple[Span, ...]] = [()]


def _identity_align(length: int) -> tuple[Span, ...]:
    """((0, 1), (1, 2), ..., (length - 1, length)), from a cache grown on demand."""
    if len(_IDENTITY[0]) < length:
        _IDENTITY[0] = tuple(zip(range(2 * length), range(1, 2 * length + 1), strict=True))
    return _IDENTITY[0][:length]


def split_out_of_vocabulary(word: str, vocabulary) -> list[str]:
    """`word` as the fewest pieces that are words of 2+ characters in `vocabulary` or single
    characters (ties: the longer first piece); the pieces join back to `word`."""
    length = len(word)
    fewest = [0] * (length + 1)  # fewest[i]: the fewest pieces covering word[i:], filled from the end
    first_end = [0] * (length + 1)
    for start in range(length - 1, -1, -1):
        fewest[start] = length + 1
        for end in range(length, start, -1):  # longest first: a tie keeps the longer piece
            if fewest[end] + 1 < fewest[start] and (end == start + 1 or word[start:end] in vocabulary):
                fewest[start], first_end[start] = fewest[end] + 1, end
    pieces, start = [], 0
    while start < length:
        pieces.append(word[start : first_end[start]])
        start = first_end[start]
    return pieces


def coarse_segments(example: AlignedExample, text: str) -> list[str]:
    """The source text cut into coarse units: WordPiece continuations rejoin their word, and a
    phrase's words are joined by '_' (for a single-text example)."""
    units: list[str] = []
    for token, (start, end) in zip(example.coarse_tokens, example.coarse_offsets, strict=True):
        if token in ("[CLS]", "[SEP]") and (start, end) == (0, 0):
            continue
        surface = "_".join(text[start:end].split())
        if token.startswith("##") and units:
            units[-1] += surface
        else:
            units.append(surface)
    return units
