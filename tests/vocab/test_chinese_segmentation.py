"""Chinese segmenters: lossless cuts, private jieba state, thulac's bundled model, the ngram word model,
specs, clear errors, optional pkuseg."""

from __future__ import annotations

import importlib.util

import jieba
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vocab.chinese_segmentation import (
    Segmenter,
    SegmenterError,
    describe_segmenter,
    format_word_model,
    make_segmenter,
    segmenter_spec,
)

HAS_PKUSEG = importlib.util.find_spec("pkuseg") is not None


@pytest.fixture(scope="module")
def jieba_segmenter():
    return make_segmenter("jieba")


@settings(max_examples=150, deadline=None)
@given(
    st.text(
        alphabet=st.one_of(
            st.sampled_from(list("我们在北京天安门中国人民经济发展 ,。！\t\nabc12Ａ😀")),
            st.characters(codec="utf-8", exclude_categories=("Cs",)),
        ),
        max_size=50,
    )
)
def test_jieba_pieces_join_back_to_the_input(jieba_segmenter, text):
    assert "".join(jieba_segmenter.cut(text)) == text


def test_jieba_spec_and_private_user_dictionary(jieba_segmenter, tmp_path):
    assert isinstance(jieba_segmenter, Segmenter)
    assert segmenter_spec(jieba_segmenter) == {
        "name": "jieba",
        "version": "0.42.1",
        "options": {"hmm": True, "user_dict_sha256": None},
    }
    assert jieba_segmenter.cut("我爱北京天安门") == ["我", "爱", "北京", "天安门"]
    user_dict = tmp_path / "user.txt"
    user_dict.write_text("爱北京 100000 v\n", encoding="utf-8")
    custom = make_segmenter("jieba", user_dict=str(user_dict), hmm=False)
    assert custom.cut("我爱北京天安门") == ["我", "爱北京", "天安门"]
    assert len(segmenter_spec(custom)["options"]["user_dict_sha256"]) == 64
    assert segmenter_spec(custom)["options"]["hmm"] is False
    # neither the other instance nor jieba's global tokenizer saw the user word
    assert jieba_segmenter.cut("我爱北京天安门") == ["我", "爱", "北京", "天安门"]
    assert "爱北京" not in jieba.lcut("我爱北京天安门")


@pytest.fixture(scope="module")
def thulac_segmenter():
    return make_segmenter("thulac")


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("我们在北京天安门中国人民经济发展 ,。！\t\nabc12Ａ😀")), max_size=40))
def test_thulac_pieces_join_back_to_the_input(thulac_segmenter, text):
    assert "".join(thulac_segmenter.cut(text)) == text


def test_thulac_bundled_model_and_spec(thulac_segmenter):
    assert thulac_segmenter.cut("我爱北京天安门  中国人民") == ["我", "爱", "北京", "天安门", "  ", "中国", "人民"]
    assert segmenter_spec(thulac_segmenter) == {
        "name": "thulac",
        "version": "0.2.2",
        "options": {"user_dict_sha256": None},
    }


def test_ngram_segmenter_decodes_the_most_probable_words(tmp_path):
    model = tmp_path / "word_model.tsv"
    model.write_text(format_word_model([("北京", 50), ("天安门", 20), ("天安", 1), ("门", 1), ("我", 30), ("爱", 20)]))
    segmenter = make_segmenter("ngram", word_model=str(model))
    assert segmenter.cut("我爱北京天安门") == ["我", "爱", "北京", "天安门"]
    assert segmenter.cut("我爱东京 x") == ["我", "爱", "东", "京", " ", "x"]  # unseen characters stand alone
    assert segmenter.cut("") == []
    assert len(segmenter_spec(segmenter)["options"]["word_model_sha256"]) == 64
    with pytest.raises(SegmenterError, match="needs its word model file"):
        make_segmenter("ngram", word_model=str(tmp_path / "missing.tsv"))


def test_specs_are_known_without_loading_a_model(jieba_segmenter, thulac_segmenter, tmp_path):
    assert describe_segmenter("jieba") == segmenter_spec(jieba_segmenter)
    assert describe_segmenter("thulac") == segmenter_spec(thulac_segmenter)
    model = tmp_path / "word_model.tsv"
    model.write_text(format_word_model([("北京", 5)]))
    assert describe_segmenter("ngram", word_model=str(model)) == segmenter_spec(
        make_segmenter("ngram", word_model=str(model))
    )
    if HAS_PKUSEG:
        assert describe_segmenter("pkuseg") == segmenter_spec(make_segmenter("pkuseg"))


def test_clear_errors(tmp_path):
    with pytest.raises(SegmenterError, match="unknown segmenter 'stanza'; expected one of"):
        make_segmenter("stanza")
    with pytest.raises(SegmenterError, match=r"segmenter jieba has no option\(s\) \['model'\]"):
        make_segmenter("jieba", model="default")
    with pytest.raises(SegmenterError, match="segmenter user dictionary not found: .*nope.txt"):
        make_segmenter("jieba", user_dict=str(tmp_path / "nope.txt"))


@pytest.mark.skipif(HAS_PKUSEG, reason="pkuseg is installed")
def test_pkuseg_missing_says_how_to_install():
    with pytest.raises(SegmenterError, match=r"pkuseg is not installed.*--no-build-isolation '\.\[pkuseg\]'"):
        make_segmenter("pkuseg")


@pytest.mark.skipif(not HAS_PKUSEG, reason="pkuseg is an optional extra (pip install .[pkuseg])")
def test_pkuseg_bundled_model():
    with pytest.raises(SegmenterError, match="would be downloaded, which is impossible offline"):
        make_segmenter("pkuseg", model="news")
    segmenter = make_segmenter("pkuseg")
    text = "我爱北京天安门 中国人民\t发展经济"
    assert "".join(segmenter.cut(text)) == text
    assert {"北京", "天安门"} <= set(segmenter.cut(text))
    assert segmenter_spec(segmenter)["options"] == {"model": "default", "user_dict_sha256": None}
