"""The PyTorch side: AMBERT model and variants (model.py), masking (masking.py), streaming loader (data.py), the
pre-training loop (train.py), checkpoints, Hugging Face interop, fine-tuning (finetune.py, span_finetune.py),
evaluation metrics and the small ablation. Never imports Beam (DESIGN.md)."""
