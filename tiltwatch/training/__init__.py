"""Training, evaluation and export of tiltwatch's emotion models (torch is needed here only)."""
