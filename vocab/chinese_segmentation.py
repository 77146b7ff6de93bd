"""Chinese word segmenters behind one interface: jieba (default) and pkuseg (optional extra).

    segmenter = make_segmenter("jieba", user_dict=None, hmm=True)
    segmenter.cut("我爱北京天安门") -> ["我", "爱", "北京", "天安门"]
    segmenter_spec(segmenter) -> {"name": "jieba", "version": "0.42.1", "options": {...}}

The spec goes into a vocab artifact; a tokenizer refuses a segmenter whose spec differs.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import logging
import os


class SegmenterError(RuntimeError):
    """A segmenter that cannot be used (not installed, model missing, mismatching artifact)."""


def _file_sha256(path: str) -> str:
    try:
        with open(path, "rb") as handle:
            return hashlib.sha256(handle.read()).hexdigest()
    except OSError as error:
        raise SegmenterError(f"cannot read the segmenter user dictionary {path}: {error}") from error


class JiebaSegmenter:
    name = "jieba"

    def __init__(self, user_dict: str | None = None, hmm: bool = True):
        import jieba

        jieba.setLogLevel(logging.WARNING)
        self.version = importlib.metadata.version("jieba")
        self.options = {"hmm": hmm, "user_dict_sha256": _file_sha256(user_dict) if user_dict else None}
        self._tokenizer = jieba.Tokenizer()
        self._tokenizer.initialize()
        if user_dict:
            self._tokenizer.load_userdict(user_dict)
        self._hmm = hmm

    def cut(self, text: str) -> list[str]:
        return list(self._tokenizer.cut(text, HMM=self._hmm))


class PkusegSegmenter:
    name = "pkuseg"

    def __init__(self, user_dict: str | None = None, model: str = "default"):
        try:
            import pkuseg
        except ImportError as error:
            raise SegmenterError(
                "pkuseg is not installed: pip install numpy cython, then pip install --no-build-isolation "
                "'.[pkuseg]' (it ships its default model; other models would need a download, impossible offline)"
            ) from error
        if model != "default":
            raise SegmenterError(f"pkuseg model {model!r} would need a download; only its bundled default model works")
        self.version = importlib.metadata.version("pkuseg")
        self.options = {"model": model, "user_dict_sha256": _file_sha256(user_dict) if user_dict else None}
        try:
            self._segmenter = pkuseg.pkuseg(user_dict=user_dict or "default")
        except OSError as error:  # a missing model file would trigger a download attempt
            raise SegmenterError(f"pkuseg could not load its bundled model: {error}") from error

    def cut(self, text: str) -> list[str]:
        return self._segmenter.cut(text)


SEGMENTERS = {"jieba": JiebaSegmenter, "pkuseg": PkusegSegmenter}


def make_segmenter(name: str, **options):
    if name not in SEGMENTERS:
        raise SegmenterError(f"unknown segmenter {name!r}; expected one of {sorted(SEGMENTERS)}")
    user_dict = options.get("user_dict")
    if user_dict and not os.path.isfile(user_dict):
        raise SegmenterError(f"segmenter user dictionary not found: {user_dict}")
    return SEGMENTERS[name](**options)


def segmenter_spec(segmenter) -> dict:
    return {"name": segmenter.name, "version": segmenter.version, "options": dict(segmenter.options)}
