"""The PyTorch side: AMBERT model, streaming DDP trainer, fine-tuning and export. Not built yet (open issues 6 and 7);
never imports Beam (DESIGN.md)."""
