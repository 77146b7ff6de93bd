"""Shared fixtures: paths to the bundled sample corpora and a planted-phrase corpus."""

from __future__ import annotations

import gzip
import random
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
EN_SAMPLES = sorted((REPO / "data" / "en").glob("*.txt.gz"))


@pytest.fixture(scope="session")
def en_small_corpus(tmp_path_factory) -> Path:
    """The first 1,500 lines of each bundled English sample (a quick but real corpus)."""
    path = tmp_path_factory.mktemp("corpus") / "en_small.txt.gz"
    with gzip.open(path, "wt", encoding="utf-8") as out:
        for sample in EN_SAMPLES:
            with gzip.open(sample, "rt", encoding="utf-8") as source:
                for number, line in enumerate(source):
                    if number == 1500:
                        break
                    out.write(line)
    return path


def write_planted_corpus(path: Path, lines: int = 4000, seed: int = 7) -> Path:
    """Random sentences in which "new york" is a fixed unit and "of", "the" occur independently.

    "of the" ends up far more frequent than "new york", but "the" does not depend on "of".
    """
    rng = random.Random(seed)
    filler = [f"w{i}" for i in range(300)]
    with open(path, "w", encoding="utf-8") as out:
        for _ in range(lines):
            words = []
            for _ in range(rng.randint(8, 20)):
                roll = rng.random()
                if roll < 0.15:
                    words.append("of")
                elif roll < 0.40:
                    words.append("the")
                elif roll < 0.415:
                    words += ["new", "york"]
                elif roll < 0.42:
                    words.append("new")
                else:
                    words.append(rng.choice(filler))
            out.write(" ".join(words).capitalize() + ".\n")
    return path
