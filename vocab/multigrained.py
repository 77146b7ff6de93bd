"""The multi-grained tokenizer: every text as fine tokens and coarse tokens, exactly aligned.

    tokenizer = MultiGrainedTokenizer.from_artifact("out/vocab-en")
    example = tokenizer.encode("I live in New York.")      # or encode_pair(a, b), encode_batch(texts)
    example.fine_tokens   -> ['[CLS]', 'i', 'live', 'in', 'new', 'york', '.', '[SEP]']
    example.coarse_tokens -> ['[CLS]', 'i', 'live', 'in', 'new york', '.', '[SEP]']
    example.align         -> ((0, 1), (1, 2), (2, 3), (3, 4), (4, 6), (6, 7), (7, 8))

Fine tokens are BERT's (fine/tokenizer.json, identical to Hugging Face's fast BERT tokenizer).
Coarse units are whole BERT words grouped into English phrases (left-to-right longest match) or
Chinese words (the artifact's segmenter, run on runs of CJK characters only). A unit in the
coarse vocabulary is one coarse token covering its fine tokens; any other unit falls back to
its fine WordPiece pieces, one coarse token per fine token (coarse vocab ⊇ fine vocab).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from tokenizers import Tokenizer

from vocab.artifact import ArtifactError, read_artifact, read_vocab_lines, verify_artifact
from vocab.chinese_segmentation import Segmenter, SegmenterError, make_segmenter, segmenter_spec
from vocab.normalization import basic_words, cjk_runs, is_punctuation
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
    """Fine (BERT WordPiece) and coarse (phrases / words) tokens of a text; load with from_artifact."""

    def __init__(self, lang: str, fine: Tokenizer, coarse_vocab: list[str], matcher: PhraseMatcher | None,
                 segmenter=None):
        self.lang = lang
        self.fine = fine
        self.coarse_vocab = coarse_vocab
        self.coarse_index = {token: index for index, token in enumerate(coarse_vocab)}
        self.matcher = matcher
        self.segmenter = segmenter
        self.cls_id = self.coarse_index["[CLS]"]
        self.sep_id = self.coarse_index["[SEP]"]

    @classmethod
    def from_artifact(cls, directory: str, segmenter: str | Segmenter | None = None,
                      verify: bool = True) -> MultiGrainedTokenizer:
        """Load (and by default verify) an artifact. `segmenter` (zh only), a name or a segmenter
        object, is refused unless it is the one recorded in the artifact."""
        document = verify_artifact(directory) if verify else read_artifact(directory)
        fine = Tokenizer.from_file(os.path.join(directory, "fine", "tokenizer.json"))
        coarse_vocab = read_vocab_lines(os.path.join(directory, "coarse", "vocab.txt"))
        if document["lang"] == "en":
            if segmenter is not None:
                raise SegmenterError(f"artifact {directory} is English; English artifacts use no word segmenter: "
                                     "drop the segmenter argument (--segmenter)")
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
            raise SegmenterError(f"artifact {directory} was built with {spec['name']}; refusing to tokenize "
                                 f"with {segmenter}: rebuild it with --segmenter {segmenter}, or drop --segmenter")
        if segmenter is not None and not isinstance(segmenter, str):
            if segmenter_spec(segmenter) != spec:
                raise SegmenterError(f"artifact {directory} was built with segmenter {spec}; refusing to tokenize "
                                     f"with {segmenter_spec(segmenter)}: rebuild the artifact with that segmenter, "
                                     "or pass none to load the artifact's own")
            return cls("zh", fine, coarse_vocab, None, segmenter)
        options = {k: v for k, v in spec.get("options", {}).items() if k != "user_dict_sha256"}
        if spec.get("options", {}).get("user_dict_sha256"):
            options["user_dict"] = os.path.join(directory, "segmenter", "user_dict.txt")
        loaded = make_segmenter(spec["name"], **options)
        if segmenter_spec(loaded) != spec:
            raise SegmenterError(f"artifact {directory} needs segmenter {spec}, but this machine has "
                                 f"{segmenter_spec(loaded)}; install that version or rebuild the artifact")
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
    def _units(self, text: str, word_spans: list[Span]) -> list[tuple[int, int, str | None]]:
        """Coarse units as (first word, end word, coarse token or None for a fallback)."""
        if self.lang == "en":
            return self._phrase_units(text, len(word_spans))
        return self._word_units(text, word_spans)

    def _phrase_units(self, text: str, word_count: int) -> list[tuple[int, int, str | None]]:
        words = basic_words(text)
        if len(words) != word_count:
            raise ArtifactError(f"fine tokenizer and BERT normalization disagree on {text!r}")
        units: list[tuple[int, int, str | None]] = []
        run: list[int] = []  # word indices of the current punctuation-free run

        def flush():
            for start, end in self.matcher.segment_left_to_right([words[i] for i in run]):
                phrase = " ".join(words[run[start] : run[start] + end - start]) if end - start > 1 else None
                units.append((run[start], run[start] + end - start, phrase))
            run.clear()

        for index, word in enumerate(words):
            if is_punctuation(word):
                flush()
                units.append((index, index + 1, None))
            else:
                run.append(index)
        flush()
        return units

    def _word_units(self, text: str, word_spans: list[Span]) -> list[tuple[int, int, str | None]]:
        starts = {span[0]: index for index, span in enumerate(word_spans)}
        ends = {span[1]: index for index, span in enumerate(word_spans)}
        grouped: dict[int, tuple[int, str]] = {}  # first word -> (end word, word)
        for run_start, run_end in cjk_runs(text):
            run = text[run_start:run_end]
            words = self.segmenter.cut(run)
            if "".join(words) != run:
                raise SegmenterError(f"segmenter {self.segmenter.name} lost or changed characters of {run[:80]!r}: "
                                     "its pieces must join back to the input")
            position = run_start
            for word in words:
                start, position = position, position + len(word)
                if len(word) > 1 and word in self.coarse_index and start in starts and position in ends:
                    grouped[starts[start]] = (ends[position] + 1, word)
        units: list[tuple[int, int, str | None]] = []
        index = 0
        while index < len(word_spans):
            end, word = grouped.get(index, (index + 1, None))
            units.append((index, end, word))
            index = end
        return units

    # -- assembly ---------------------------------------------------------------------------
    def _build(self, texts: list[str], encoding) -> AlignedExample:
        fine_ids = encoding.ids
        sequence_ids, word_ids, offsets = encoding.sequence_ids, encoding.word_ids, encoding.offsets
        coarse_ids, align, coarse_type, coarse_offsets, coarse_tokens = [], [], [], [], []

        def add(coarse_id: int, token: str, span: Span, segment: int, offset: Span):
            coarse_ids.append(coarse_id)
            coarse_tokens.append(token)
            align.append(span)
            coarse_type.append(segment)
            coarse_offsets.append(offset)

        position = 0
        while position < len(fine_ids):
            sequence = sequence_ids[position]
            if sequence is None:  # [CLS] / [SEP]: one-to-one
                add(fine_ids[position], encoding.tokens[position], (position, position + 1),
                    encoding.type_ids[position], (0, 0))
                position += 1
                continue
            end = position
            while end < len(fine_ids) and sequence_ids[end] == sequence:
                end += 1
            # fine positions [position, end) hold sequence `sequence`; group them by word
            first_of_word: dict[int, int] = {}
            for fine_position in range(position, end):
                first_of_word.setdefault(word_ids[fine_position], fine_position)
            word_starts = [first_of_word[w] for w in sorted(first_of_word)] + [end]
            word_spans = [(offsets[word_starts[i]][0], offsets[word_starts[i + 1] - 1][1])
                          for i in range(len(word_starts) - 1)]
            segment = encoding.type_ids[position]
            for first_word, end_word, unit in self._units(texts[sequence], word_spans):
                fine_start, fine_end = word_starts[first_word], word_starts[end_word]
                if unit is not None:
                    offset = (offsets[fine_start][0], offsets[fine_end - 1][1])
                    add(self.coarse_index[unit], unit, (fine_start, fine_end), segment, offset)
                else:
                    for piece in range(fine_start, fine_end):
                        add(fine_ids[piece], encoding.tokens[piece], (piece, piece + 1), segment, offsets[piece])
            position = end
        return AlignedExample(
            fine_ids=tuple(fine_ids), coarse_ids=tuple(coarse_ids), align=tuple(align),
            fine_type=tuple(encoding.type_ids), coarse_type=tuple(coarse_type),
            fine_offsets=tuple(offsets), coarse_offsets=tuple(coarse_offsets),
            fine_tokens=tuple(encoding.tokens), coarse_tokens=tuple(coarse_tokens),
        )


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
