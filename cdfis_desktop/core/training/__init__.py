"""Training: engine, handlers, checkpoints, datasets, models and metrics (no Qt)."""
