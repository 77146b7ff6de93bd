"""Text to AMBERT's fine and coarse ids without the ambert package: copied as tokenize_ambert.py into an
`ambert export --format hf-ambert` directory; needs `tokenizers` (installed with transformers), torch for tensors.

    import sys; sys.path.insert(0, OUT); from tokenize_ambert import AmbertTokenizer
    tokenizer = AmbertTokenizer(OUT)                       # reads OUT/vocab/ (the vocab artifact)
    one = tokenizer.encode("I live in New York.")          # input_ids, coarse_input_ids, align, tokens, types
    batch = tokenizer(["I live in New York.", "Hi."])      # padded tensors: AutoModel.from_pretrained(OUT)(**batch)
    python OUT/tokenize_ambert.py OUT "我们在北京" ["text b"]    # one encoding as JSON
The ids are those of vocab.multigrained.MultiGrainedTokenizer (tests/trainer/test_hf_ambert_tokenize.py compares
them on bundled text): fine tokens from vocab/fine/tokenizer.json (BERT WordPiece; one token per Chinese
character); coarse tokens over them: English phrases of the artifact's dictionary that are coarse tokens, matched
greedily longest-first left to right; Chinese words of 2+ characters from the artifact's word segmenter run on each
maximal run of CJK characters (an out-of-vocabulary word split into the fewest in-vocabulary words and characters).
The segmenter is the one vocab/artifact.json records: thulac, jieba or pkuseg must be installed at that version
(`pip install thulac==VERSION`), ngram's word model is read from vocab/segmenter/; or give `words=` (the text
pre-segmented: its CJK runs are cut where the given words begin and end) or `cut=` (any function str -> words).
align[j] = the fine positions [start, end) under coarse token j. No truncation: longer texts than the model's
max_position are refused.
"""

from __future__ import annotations

import importlib.metadata
import json
import math
import os
import re
import sys
import unicodedata

from tokenizers import Tokenizer, normalizers, pre_tokenizers

_CJK_RANGES = (
    (0x4E00, 0x9FFF),
    (0x3400, 0x4DBF),
    (0x20000, 0x2A6DF),
    (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F),
    (0x2B820, 0x2CEAF),
    (0xF900, 0xFAFF),
    (0x2F800, 0x2FA1F),
)
_CJK_RUN = re.compile("[" + "".join(f"{chr(low)}-{chr(high)}" for low, high in _CJK_RANGES) + "]+")
_NORMALIZER = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=True, lowercase=True)
_PRE_TOKENIZER = pre_tokenizers.BertPreTokenizer()
_SEGMENTER_FILES = {"user_dict": "segmenter/user_dict.txt", "word_model": "segmenter/word_model.tsv"}


def _read_lines(path):
    with open(path, encoding="utf-8", newline="") as handle:
        text = handle.read()
    return text[:-1].split("\n") if text.endswith("\n") else text.split("\n")


def _is_punctuation(word):
    if len(word) != 1:
        return False
    cp = ord(word)
    return (
        33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126 or unicodedata.category(word)[0] == "P"
    )


def _phrase_trie(phrases):
    root = {}
    for phrase in phrases:
        words = phrase.split(" ")
        if len(words) < 2 or "" in words or any(_is_punctuation(word) for word in words):
            continue
        node = root
        for word in words:
            node = node.setdefault(word, {})
        node[""] = True  # a phrase ends here
    return root


def _phrase_spans(root, words):
    """Greedy longest match, left to right: the multi-word phrases as half-open word spans."""
    spans, position = [], 0
    while position < len(words):
        node, following, end = root.get(words[position]), position + 1, 0
        while node is not None and following < len(words):
            node = node.get(words[following])
            following += 1
            if node is not None and "" in node:
                end = following
        if end:
            spans.append((position, end))
            position = end
        else:
            position += 1
    return spans


def _split_out_of_vocabulary(word, vocabulary):
    """The fewest pieces that are in-vocabulary words of 2+ characters or single characters (ties: the longer
    first piece)."""
    length = len(word)
    fewest, first_end = [0] * (length + 1), [0] * (length + 1)
    for start in range(length - 1, -1, -1):
        fewest[start] = length + 1
        for end in range(length, start, -1):
            if fewest[end] + 1 < fewest[start] and (end == start + 1 or word[start:end] in vocabulary):
                fewest[start], first_end[start] = fewest[end] + 1, end
    pieces, start = [], 0
    while start < length:
        pieces.append(word[start : first_end[start]])
        start = first_end[start]
    return pieces


def _ngram_cut(word_model):
    """The ngram segmenter: the most probable words under the unigram model (Viterbi; unseen character: half an
    occurrence)."""
    counts = {}
    for line in _read_lines(word_model):
        word, _, count = line.partition("\t")
        counts[word] = int(count)
    total = sum(counts.values()) or 1
    log_probability = {word: math.log(count / total) for word, count in counts.items()}
    unknown, longest = math.log(0.5 / total), max((len(word) for word in counts), default=1)

    def cut(text):
        best, start_of = [0.0] * (len(text) + 1), [0] * (len(text) + 1)
        for end in range(1, len(text) + 1):
            score, start = best[end - 1] + log_probability.get(text[end - 1], unknown), end - 1
            for begin in range(max(0, end - longest), end - 1):
                word_score = log_probability.get(text[begin:end])
                if word_score is not None and best[begin] + word_score > score:
                    score, start = best[begin] + word_score, begin
            best[end], start_of[end] = score, start
        words, end = [], len(text)
        while end > 0:
            words.append(text[start_of[end] : end])
            end = start_of[end]
        return words[::-1]

    return cut


def load_segmenter(vocab_dir, spec):
    """The cut function (str -> words) of the segmenter `spec` (artifact.json's "segmenter"), without our package."""
    name, options = spec["name"], {}
    for key, value in spec.get("options", {}).items():
        if key.endswith("_sha256"):
            if value:
                options[key[: -len("_sha256")]] = os.path.join(vocab_dir, _SEGMENTER_FILES[key[: -len("_sha256")]])
        else:
            options[key] = value
    if name == "ngram":
        return _ngram_cut(options["word_model"])
    try:
        version = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        version = None
    if version != spec["version"]:
        raise RuntimeError(
            f"the vocabulary was segmented with {name} {spec['version']}, this Python has "
            f"{version or 'none'}: pip install {name}=={spec['version']}, or pass words= / cut="
        )
    if name == "jieba":
        import logging

        import jieba

        jieba.setLogLevel(logging.WARNING)
        tokenizer = jieba.Tokenizer()
        if options.get("user_dict"):
            tokenizer.load_userdict(options["user_dict"])
        return lambda text: list(tokenizer.cut(text, HMM=bool(options.get("hmm", True))))
    if name == "thulac":
        import contextlib
        import io

        import thulac

        with contextlib.redirect_stdout(io.StringIO()):  # it prints "Model loaded succeed"
            segmenter = thulac.thulac(user_dict=options.get("user_dict"), seg_only=True)
        return lambda text: [word for word, _tag in segmenter.cut(text)]
    if name == "pkuseg":
        import pkuseg

        segmenter = pkuseg.pkuseg(
            model_name=options.get("model", "default"), user_dict=options.get("user_dict") or "default"
        )
        return segmenter.cut
    raise RuntimeError(f"unknown segmenter {name!r} in vocab/artifact.json: pass words= or cut=")


class AmbertTokenizer:
    """Fine and coarse ids of a text (or pair) from an hf-ambert export directory or a vocab artifact."""

    def __init__(self, directory, cut=None):
        vocab_dir = os.path.join(directory, "vocab") if os.path.isdir(os.path.join(directory, "vocab")) else directory
        with open(os.path.join(vocab_dir, "artifact.json"), encoding="utf-8") as handle:
            artifact = json.load(handle)
        config = os.path.join(directory, "config.json")
        self.max_length = None
        if os.path.exists(config):
            with open(config, encoding="utf-8") as handle:
                self.max_length = json.load(handle).get("max_position")
        self.lang = artifact["lang"]
        self.fine = Tokenizer.from_file(os.path.join(vocab_dir, "fine", "tokenizer.json"))
        self.fine.no_truncation()
        self.fine.no_padding()
        self.coarse_vocab = _read_lines(os.path.join(vocab_dir, "coarse", "vocab.txt"))
        self.coarse_index = {token: index for index, token in enumerate(self.coarse_vocab)}
        self.pad_id = self.coarse_index[artifact.get("special_tokens", {}).get("pad", "[PAD]")]
        self._cut, self._segmenter = cut, artifact.get("segmenter")
        self._vocab_dir, self._trie = vocab_dir, None
        if self.lang == "en":
            dictionary = os.path.join(vocab_dir, artifact["dictionary"])
            phrases = [line.split("\t")[0] for line in _read_lines(dictionary) if line]
            self._trie = _phrase_trie(phrase for phrase in phrases if phrase in self.coarse_index)

    def _segment(self, run, start, boundaries):
        if boundaries is not None:  # pre-segmented: cut where the given words begin and end
            cuts = [0, *(b - start for b in boundaries if start < b < start + len(run)), len(run)]
            return [run[a:b] for a, b in zip(cuts, cuts[1:], strict=False)]
        if self._cut is None:
            if self._segmenter is None:
                raise RuntimeError(f"{self._vocab_dir}/artifact.json records no segmenter: pass words= or cut=")
            self._cut = load_segmenter(self._vocab_dir, self._segmenter)
        words = self._cut(run)
        if "".join(words) != run:
            raise RuntimeError(f"the segmenter's words do not join back to {run[:80]!r}")
        return words

    def _word_groups(self, text, sequence, encoding, boundaries):
        groups = []
        for match in _CJK_RUN.finditer(text):
            position = match.start()
            for word in self._segment(match.group(), match.start(), boundaries):
                if len(word) == 1:
                    position += 1
                    continue
                for unit in (word,) if word in self.coarse_index else _split_out_of_vocabulary(word, self.coarse_index):
                    start, position = position, position + len(unit)
                    first, last = encoding.char_to_word(start, sequence), encoding.char_to_word(position - 1, sequence)
                    if len(unit) < 2 or first is None or last is None:
                        continue
                    if (
                        encoding.word_to_chars(first, sequence)[0] == start
                        and encoding.word_to_chars(last, sequence)[1] == position
                    ):
                        groups.append(
                            (
                                encoding.word_to_tokens(first, sequence)[0],
                                encoding.word_to_tokens(last, sequence)[1],
                                unit,
                            )
                        )
        return groups

    def _phrase_groups(self, text, sequence, encoding, pieces):
        words = " ".join(pieces).replace(" ##", "").split(" ")
        if "[UNK]" in pieces:  # an [UNK] hides its word: normalize again
            words = [word for word, _ in _PRE_TOKENIZER.pre_tokenize_str(_NORMALIZER.normalize_str(text))]
        return [
            (
                encoding.word_to_tokens(first, sequence)[0],
                encoding.word_to_tokens(end - 1, sequence)[1],
                " ".join(words[first:end]),
            )
            for first, end in _phrase_spans(self._trie, words)
        ]

    def encode(self, text, text_pair=None, words=None, words_pair=None):
        """One text (or pair) as {input_ids, token_type_ids, coarse_input_ids, coarse_token_type_ids, align,
        fine_tokens, coarse_tokens}. `words` / `words_pair`: the text given pre-segmented as a list of words."""
        texts, boundaries = [], []
        for value, given in ((text, words), (text_pair, words_pair)):
            if given is not None:
                value = "".join(given) if value is None else value
                if "".join(given) != value:
                    raise ValueError("words must join back to the text")
                ends = [0]
                for word in given:
                    ends.append(ends[-1] + len(word))
                boundaries.append(set(ends))
            else:
                boundaries.append(None)
            if value is not None:
                texts.append(value)
        encoding = self.fine.encode(*texts)
        ids, tokens, total = encoding.ids, encoding.tokens, len(encoding.ids)
        if self.max_length is not None and total > self.max_length:
            raise ValueError(f"{total} fine tokens, more than the model's max_position {self.max_length}: shorten it")
        types = encoding.type_ids if len(texts) > 1 else [0] * total
        ends = [total - 1] if len(texts) == 1 else [types.index(1) - 1, total - 1]
        groups = []
        for sequence, (value, end) in enumerate(zip(texts, ends, strict=True)):
            start = 1 if sequence == 0 else ends[0] + 1
            if end == start:
                continue
            if self.lang == "en":
                groups += self._phrase_groups(value, sequence, encoding, tokens[start:end])
            else:
                groups += self._word_groups(value, sequence, encoding, boundaries[sequence])
        starts = [True] * total
        for first, stop, _unit in groups:
            starts[first + 1 : stop] = [False] * (stop - first - 1)
        firsts = [position for position in range(total) if starts[position]]
        unit_at = {first: unit for first, _stop, unit in groups}  # coarse vocab = fine vocab (same ids) + units
        coarse_tokens = [unit_at.get(position, tokens[position]) for position in firsts]
        return {
            "input_ids": list(ids),
            "token_type_ids": list(types),
            "coarse_input_ids": [self.coarse_index[unit_at[p]] if p in unit_at else ids[p] for p in firsts],
            "coarse_token_type_ids": [types[position] for position in firsts],
            "align": [list(span) for span in zip(firsts, [*firsts[1:], total], strict=True)],
            "fine_tokens": list(tokens),
            "coarse_tokens": coarse_tokens,
        }

    def __call__(self, texts, text_pairs=None):
        """A batch as padded torch tensors: the keyword arguments of the exported models' forward (input_ids,
        attention_mask, token_type_ids, coarse_input_ids, coarse_attention_mask, coarse_token_type_ids, and align
        (B, Lc, 2) for AmbertForQuestionAnswering). For AmbertForMultipleChoice encode the B × options pairs and
        view each tensor as (B, options, -1)."""
        import torch

        pairs = [None] * len(texts) if text_pairs is None else text_pairs
        encoded = [self.encode(text, pair) for text, pair in zip(texts, pairs, strict=True)]
        batch = {}
        for prefix in ("", "coarse_"):
            width = max(len(one[f"{prefix}input_ids"]) for one in encoded)
            for name, fill in (("input_ids", self.pad_id), ("token_type_ids", 0)):
                batch[prefix + name] = torch.tensor(
                    [one[prefix + name] + [fill] * (width - len(one[prefix + name])) for one in encoded]
                )
            batch[f"{prefix}attention_mask"] = torch.tensor(
                [
                    [1] * len(one[f"{prefix}input_ids"]) + [0] * (width - len(one[f"{prefix}input_ids"]))
                    for one in encoded
                ]
            )
        width = max(len(one["align"]) for one in encoded)  # padded coarse tokens cover no fine position
        batch["align"] = torch.tensor([one["align"] + [[0, 0]] * (width - len(one["align"])) for one in encoded])
        return batch


if __name__ == "__main__":
    if len(sys.argv) not in (3, 4):
        sys.exit("usage: python tokenize_ambert.py EXPORT_DIR TEXT [TEXT_B]")
    print(json.dumps(AmbertTokenizer(sys.argv[1]).encode(*sys.argv[2:]), ensure_ascii=False))
