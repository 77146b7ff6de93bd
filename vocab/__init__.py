"""Vocab artifacts, normalization and tokenization shared by every stage.

Never imports Beam or torch (see DESIGN.md): pipelines and the trainer both use it.
"""
