"""Pipeline fixtures: one real `ambert phrases` run on a bundled-sample corpus, shared."""

from __future__ import annotations

import pytest

from pipelines.phrases import PhrasesConfig, run


def run_phrases(corpus, out, beam_args=(), **options):
    cfg = PhrasesConfig(corpus=tuple(str(c) for c in corpus), out=str(out), **options)
    return run(cfg, list(beam_args))


@pytest.fixture(scope="session")
def phrases_run(en_small_corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("phrases") / "out"
    stats = run_phrases([en_small_corpus], out, min_count=3)
    return out, stats
