"""Apache Beam pipelines: corpora to n-gram statistics, KenLM models and phrase dictionaries.

Each stage is one composite PTransform; `ambert phrases` runs them (see pipelines/phrases.py).
Never imports torch (see DESIGN.md).
"""
