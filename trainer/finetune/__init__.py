"""Fine-tuning and evaluation of pre-trained AMBERT runs: the loop, task types, native readers, metrics, ablation."""
