"""The multi-grained tokenizer: every text as fine (BERT) and coarse (phrase / word) tokens, aligned.

example = MultiGrainedTokenizer.from_artifact("out/vocab-en").encode("I live in New York.")
example.coarse_tokens -> ('[CLS]', 'i', 'live', 'in', 'new york', '.', '[SEP]')
example.align         -> ((0, 1), (1, 2), (2, 3), (3, 4), (4, 6), (6, 7), (7, 8))   # into fine tokens
"""

from __future__ import annotations

import os
from dataclasses import dataclass

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

    # -- coarse units -----------------------------------------------------------------------
    def _groups(
        self, text: str, tokens: list[str], offsets: list[Span], word_starts: list[int]
    ) -> list[tuple[int, int, str]]:
        """The coarse units that are one coarse token, as (first word, end word, token), in order;
        every word outside them falls back to its fine pieces."""
        if self.lang == "en":
            return self._phrase_groups(text, tokens, word_starts)
        return self._word_groups(text, offsets, word_starts)

    def _phrase_groups(self, text: str, tokens: list[str], word_starts: list[int]) -> list[tuple[int, int, str]]:
        if "[UNK]" in tokens[word_starts[0] : word_starts[-1]]:  # an [UNK] hides its word: normalize again
            words = basic_words(text)
            if len(words) != len(word_starts) - 1:
                raise ArtifactError(
                    f"the fine tokenizer and BERT normalization disagree on {text[:80]!r}: is "
                    "fine/tokenizer.json the BERT uncased pipeline?"
                )
        else:  # a word is its pieces joined (WordPiece never splits elsewhere)
            words = [
                tokens[a] if b - a == 1 else tokens[a] + "".join(t[2:] for t in tokens[a + 1 : b])
                for a, b in zip(word_starts, word_starts[1:], strict=False)
            ]
        # one call per text: phrases hold no punctuation word, so no match crosses punctuation
        groups = [(start, end, " ".join(words[start:end])) for start, end in self.matcher.phrase_spans(words)]
        return groups

    def _word_groups(self, text: str, offsets: list[Span], word_starts: list[int]) -> list[tuple[int, int, str]]:
        runs = cjk_runs(text)
        if not runs:
            return []
        starts = {offsets[first][0]: index for index, first in enumerate(word_starts[:-1])}
        ends = {offsets[following - 1][1]: index for index, following in enumerate(word_starts[1:])}
        groups = []
        for run_start, run_end in runs:
            run = text[run_start:run_end]
            words = self.segmenter.cut(run)
            if "".join(words) != run:
                raise SegmenterError(
                    f"segmenter {self.segmenter.name} lost or changed characters of {run[:80]!r}: "
                    "its pieces must join back to the input"
                )
            position = run_start
            for word in in_vocabulary_words(words, self.coarse_index):
                start, position = position, position + len(word)
                if len(word) > 1:
                    first, last = starts.get(start), ends.get(position)
                    if first is not None and last is not None and first <= last:  # on fine word boundaries
                        groups.append((first, last + 1, word))
        return groups

    # -- assembly ---------------------------------------------------------------------------
    def _build(self, texts: list[str], encoding) -> AlignedExample:
        # read each Encoding property once: every access builds a new Python list
        ids, tokens, types = encoding.ids, encoding.tokens, encoding.type_ids
        offsets, word_ids, sequence_ids = encoding.offsets, encoding.word_ids, encoding.sequence_ids
        coarse_ids: list[int] = []
        coarse_tokens: list[str] = []
        align: list[Span] = []
        coarse_type: list[int] = []
        coarse_offsets: list[Span] = []

        def fallback(start: int, end: int) -> None:  # one coarse token per fine token
            coarse_ids.extend(ids[start:end])
            coarse_tokens.extend(tokens[start:end])
            align.extend(zip(range(start, end), range(start + 1, end + 1), strict=True))
            coarse_type.extend(types[start:end])
            coarse_offsets.extend(offsets[start:end])

        total, position = len(ids), 0
        while position < total:
            sequence = sequence_ids[position]
            if sequence is None:  # [CLS] / [SEP]: one-to-one, offsets (0, 0)
                fallback(position, position + 1)
                position += 1
                continue
            end = position + 1
            while end < total and sequence_ids[end] == sequence:
                end += 1
            # fine positions [position, end) hold text `sequence`; word k is [word_starts[k], word_starts[k+1])
            word_starts = [p for p in range(position, end) if p == position or word_ids[p] != word_ids[p - 1]]
            word_starts.append(end)
            cursor = position
            for first, last, unit in self._groups(texts[sequence], tokens, offsets, word_starts):
                start, stop = word_starts[first], word_starts[last]
                fallback(cursor, start)
                coarse_ids.append(self.coarse_index[unit])
                coarse_tokens.append(unit)
                align.append((start, stop))
                coarse_type.append(types[start])
                coarse_offsets.append((offsets[start][0], offsets[stop - 1][1]))
                cursor = stop
            fallback(cursor, end)
            position = end
        return AlignedExample(
            fine_ids=tuple(ids),
            coarse_ids=tuple(coarse_ids),
            align=tuple(align),
            fine_type=tuple(types),
            coarse_type=tuple(coarse_type),
            fine_offsets=tuple(offsets),
            coarse_offsets=tuple(coarse_offsets),
            fine_tokens=tuple(tokens),
            coarse_tokens=tuple(coarse_tokens),
        )


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


def in_vocabulary_words(words: list[str], vocabulary) -> list[str]:
    """The segmenter's words with every word of 2+ characters outside `vocabulary` split by
    split_out_of_vocabulary (the same characters, in order)."""
    result: list[str] = []
    for word in words:
        if len(word) > 1 and word not in vocabulary:
            result.extend(split_out_of_vocabulary(word, vocabulary))
        else:
            result.append(word)
    return result


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
