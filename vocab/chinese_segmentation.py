"""Chinese word segmenters behind one interface: thulac (default), jieba, pkuseg (optional extra)
and ngram (a word model estimated on the corpus by `ambert vocab build`, stored in the artifact).

segmenter = make_segmenter("thulac", user_dict=None)
segmenter.cut("我爱北京天安门") -> ["我", "爱", "北京", "天安门"]   # pieces join back to the input
segmenter_spec(segmenter) -> {"name", "version", "options"}: recorded in a vocab artifact
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import io
import logging
import math
import os
import re
from collections.abc import Callable, Iterable
from typing import Protocol, runtime_checkable


class SegmenterError(RuntimeError):
    """A segmenter that cannot be used (not installed, model missing, mismatching artifact)."""


@runtime_checkable
class Segmenter(Protocol):
    """What the tokenizer and the pipelines need from a word segmenter."""

    name: str
    version: str
    options: dict

    def cut(self, text: str) -> list[str]:
        """Words of `text`; their concatenation is exactly `text`."""
        ...


def _file_sha256(path: str, what: str = "user dictionary") -> str:
    try:
        with open(path, "rb") as handle:
            return hashlib.sha256(handle.read()).hexdigest()
    except OSError as error:
        raise SegmenterError(f"cannot read the segmenter {what} {path}: {error}") from error


class JiebaSegmenter:
    """jieba's precise mode on a private `jieba.Tokenizer` (the global one is never touched)."""

    name = "jieba"

    def __init__(self, user_dict: str | None = None, hmm: bool = True):
        import jieba

        jieba.setLogLevel(logging.WARNING)
        self.version = importlib.metadata.version("jieba")
        self.options = self.spec_options(user_dict, hmm)
        self._tokenizer = jieba.Tokenizer()
        self._tokenizer.initialize()
        if user_dict:
            self._tokenizer.load_userdict(user_dict)
        self._hmm = bool(hmm)

    @staticmethod
    def spec_options(user_dict: str | None = None, hmm: bool = True) -> dict:
        return {"hmm": bool(hmm), "user_dict_sha256": _file_sha256(user_dict) if user_dict else None}

    def cut(self, text: str) -> list[str]:
        return list(self._tokenizer.cut(text, HMM=self._hmm))


_WHITESPACE = re.compile(r"(\s+)")


def cut_between_whitespace(text: str, cut: Callable[[str], list[str]]) -> list[str]:
    """`cut` on each whitespace-free part of `text`, whitespace kept as pieces of its own, so the
    pieces join back to `text` (a part whose words do not is kept whole)."""
    pieces: list[str] = []
    for part in _WHITESPACE.split(text):
        if not part:
            continue
        if part.isspace():
            pieces.append(part)
            continue
        words = cut(part)
        pieces.extend(words if "".join(words) == part else [part])
    return pieces


class PkusegSegmenter:
    """pkuseg with its bundled default model only (any other model is a download, impossible offline)."""

    name = "pkuseg"

    def __init__(self, user_dict: str | None = None, model: str = "default"):
        try:
            import pkuseg
        except ImportError as error:
            raise SegmenterError(
                "pkuseg is not installed: run `pip install numpy cython`, then "
                "`pip install --no-build-isolation '.[pkuseg]'` (it builds Cython extensions against numpy)"
            ) from error
        if model != "default":
            raise SegmenterError(
                f"pkuseg model {model!r} would be downloaded, which is impossible offline; "
                "only the bundled model 'default' is supported"
            )
        bundled = os.path.join(os.path.dirname(os.path.realpath(pkuseg.__file__)), "models", "default")
        if not os.path.isdir(bundled):
            raise SegmenterError(
                f"pkuseg's bundled default model is missing ({bundled}); reinstall pkuseg from its "
                "source distribution, which ships the model"
            )
        self.version = importlib.metadata.version("pkuseg")
        self.options = self.spec_options(user_dict, model)
        try:
            self._segmenter = pkuseg.pkuseg(model_name=model, user_dict=user_dict or "default")
        except OSError as error:  # a missing model file, or any attempt to reach the network
            raise SegmenterError(f"pkuseg could not load its bundled default model from {bundled}: {error}") from error

    @staticmethod
    def spec_options(user_dict: str | None = None, model: str = "default") -> dict:
        return {"model": model, "user_dict_sha256": _file_sha256(user_dict) if user_dict else None}

    def cut(self, text: str) -> list[str]:
        return cut_between_whitespace(text, self._segmenter.cut)  # pkuseg drops whitespace


class ThulacSegmenter:
    """THULAC (Tsinghua) in segmentation-only mode, with the model its PyPI package ships."""

    name = "thulac"

    def __init__(self, user_dict: str | None = None):
        import thulac

        self.version = importlib.metadata.version("thulac")
        self.options = self.spec_options(user_dict)
        with contextlib.redirect_stdout(io.StringIO()):  # it prints "Model loaded succeed"
            self._segmenter = thulac.thulac(user_dict=user_dict, seg_only=True)

    @staticmethod
    def spec_options(user_dict: str | None = None) -> dict:
        return {"user_dict_sha256": _file_sha256(user_dict) if user_dict else None}

    def _cut(self, part: str) -> list[str]:
        return [word for word, _tag in self._segmenter.cut(part)]

    def cut(self, text: str) -> list[str]:
        return cut_between_whitespace(text, self._cut)  # thulac merges runs of whitespace


class NgramSegmenter:
    """The most probable words under a unigram word model (`word<TAB>count` lines), by Viterbi over
    every dictionary word and single character; an unseen character counts half an occurrence.

    `ambert vocab build --segmenter ngram` estimates the model from the corpus's own segmentation
    by another segmenter and stores it in the artifact (segmenter/word_model.tsv)."""

    name = "ngram"
    VERSION = "1"

    @staticmethod
    def spec_options(word_model: str) -> dict:
        return {"word_model_sha256": _file_sha256(word_model, "word model")}

    def __init__(self, word_model: str):
        self.version = self.VERSION
        self.options = self.spec_options(word_model)
        counts = dict(read_word_model(word_model))
        total = sum(counts.values()) or 1
        self._log_probability = {word: math.log(count / total) for word, count in counts.items()}
        self._unknown = math.log(0.5 / total)
        self._longest = max((len(word) for word in counts), default=1)

    def cut(self, text: str) -> list[str]:
        log_probability, unknown, longest = self._log_probability, self._unknown, self._longest
        best = [0.0] * (len(text) + 1)
        start_of = [0] * (len(text) + 1)
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


def format_word_model(counts: Iterable[tuple[str, int]]) -> str:
    """A word model file: `word<TAB>count` lines, most frequent first (ties by the word)."""
    return "".join(f"{word}\t{count}\n" for word, count in sorted(counts, key=lambda item: (-item[1], item[0])))


def read_word_model(path: str) -> list[tuple[str, int]]:
    words = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            word, _, count = line.rstrip("\n").partition("\t")
            if not word or not count.isdigit():
                raise SegmenterError(f"{path}:{number}: expected word<TAB>count, got {line!r}")
            words.append((word, int(count)))
    return words


SEGMENTERS = {"thulac": ThulacSegmenter, "jieba": JiebaSegmenter, "pkuseg": PkusegSegmenter, "ngram": NgramSegmenter}
SEGMENTER_OPTIONS = {
    "thulac": ("user_dict",),
    "jieba": ("user_dict", "hmm"),
    "pkuseg": ("user_dict", "model"),
    "ngram": ("word_model",),
}
DEFAULT_SEGMENTER = "thulac"
# the files a segmenter option names, as stored in an artifact (its spec records their sha256)
SEGMENTER_FILES = {"user_dict": "segmenter/user_dict.txt", "word_model": "segmenter/word_model.tsv"}


def make_segmenter(name: str, **options) -> Segmenter:
    """A segmenter by name: thulac (option user_dict), jieba (user_dict, hmm), pkuseg (user_dict,
    model) or ngram (word_model, a file)."""
    _check_options(name, options)
    return SEGMENTERS[name](**options)


def describe_segmenter(name: str, **options) -> dict:
    """segmenter_spec(make_segmenter(name, **options)) without loading the segmenter's model."""
    _check_options(name, options)
    if name == "ngram":
        version = NgramSegmenter.VERSION
    else:
        try:
            version = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError as error:
            raise SegmenterError(
                f"segmenter {name} is not installed (see README: Chinese word segmentation)"
            ) from error
    return {"name": name, "version": version, "options": SEGMENTERS[name].spec_options(**options)}


def _check_options(name: str, options: dict) -> None:
    if name not in SEGMENTERS:
        raise SegmenterError(f"unknown segmenter {name!r}; expected one of {sorted(SEGMENTERS)}")
    unknown = sorted(set(options) - set(SEGMENTER_OPTIONS[name]))
    if unknown:
        raise SegmenterError(f"segmenter {name} has no option(s) {unknown}; it accepts {list(SEGMENTER_OPTIONS[name])}")
    user_dict = options.get("user_dict")
    if user_dict and not os.path.isfile(user_dict):
        raise SegmenterError(f"segmenter user dictionary not found: {user_dict}")
    if name == "ngram" and not os.path.isfile(options.get("word_model") or ""):
        raise SegmenterError(
            f"the ngram segmenter needs its word model file (word_model), not found: {options.get('word_model')}; "
            "it is built by `ambert vocab build --segmenter ngram` and loaded from the artifact"
        )


def segmenter_spec(segmenter: Segmenter) -> dict:
    """What an artifact records about its segmenter: {"name", "version", "options"}."""
    return {"name": segmenter.name, "version": segmenter.version, "options": dict(segmenter.options)}
