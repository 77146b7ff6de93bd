"""Chinese word segmenters behind one interface: jieba (default) and pkuseg (optional extra).

segmenter = make_segmenter("jieba", user_dict=None, hmm=True)
segmenter.cut("我爱北京天安门") -> ["我", "爱", "北京", "天安门"]   # pieces join back to the input
segmenter_spec(segmenter) -> {"name", "version", "options"}: recorded in a vocab artifact
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import logging
import os
import re
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


def _file_sha256(path: str) -> str:
    try:
        with open(path, "rb") as handle:
            return hashlib.sha256(handle.read()).hexdigest()
    except OSError as error:
        raise SegmenterError(f"cannot read the segmenter user dictionary {path}: {error}") from error


class JiebaSegmenter:
    """jieba's precise mode on a private `jieba.Tokenizer` (the global one is never touched)."""

    name = "jieba"

    def __init__(self, user_dict: str | None = None, hmm: bool = True):
        import jieba

        jieba.setLogLevel(logging.WARNING)
        self.version = importlib.metadata.version("jieba")
        self.options = {"hmm": bool(hmm), "user_dict_sha256": _file_sha256(user_dict) if user_dict else None}
        self._tokenizer = jieba.Tokenizer()
        self._tokenizer.initialize()
        if user_dict:
            self._tokenizer.load_userdict(user_dict)
        self._hmm = bool(hmm)

    def cut(self, text: str) -> list[str]:
        return list(self._tokenizer.cut(text, HMM=self._hmm))


_WHITESPACE = re.compile(r"(\s+)")


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
        self.options = {"model": model, "user_dict_sha256": _file_sha256(user_dict) if user_dict else None}
        try:
            self._segmenter = pkuseg.pkuseg(model_name=model, user_dict=user_dict or "default")
        except OSError as error:  # a missing model file, or any attempt to reach the network
            raise SegmenterError(f"pkuseg could not load its bundled default model from {bundled}: {error}") from error

    def cut(self, text: str) -> list[str]:
        # pkuseg drops whitespace; keep it as pieces of its own so the pieces join back to `text`
        pieces: list[str] = []
        for part in _WHITESPACE.split(text):
            if not part:
                continue
            if part.isspace():
                pieces.append(part)
                continue
            words = self._segmenter.cut(part)
            pieces.extend(words if "".join(words) == part else [part])
        return pieces


SEGMENTERS = {"jieba": JiebaSegmenter, "pkuseg": PkusegSegmenter}
SEGMENTER_OPTIONS = {"jieba": ("user_dict", "hmm"), "pkuseg": ("user_dict", "model")}


def make_segmenter(name: str, **options) -> Segmenter:
    """A segmenter by name: jieba (options user_dict, hmm) or pkuseg (options user_dict, model)."""
    if name not in SEGMENTERS:
        raise SegmenterError(f"unknown segmenter {name!r}; expected one of {sorted(SEGMENTERS)}")
    unknown = sorted(set(options) - set(SEGMENTER_OPTIONS[name]))
    if unknown:
        raise SegmenterError(f"segmenter {name} has no option(s) {unknown}; it accepts {list(SEGMENTER_OPTIONS[name])}")
    user_dict = options.get("user_dict")
    if user_dict and not os.path.isfile(user_dict):
        raise SegmenterError(f"segmenter user dictionary not found: {user_dict}")
    return SEGMENTERS[name](**options)


def segmenter_spec(segmenter: Segmenter) -> dict:
    """What an artifact records about its segmenter: {"name", "version", "options"}."""
    return {"name": segmenter.name, "version": segmenter.version, "options": dict(segmenter.options)}
