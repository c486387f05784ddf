"""Evaluation: GenEval's scoring rules (detector-independent) and held-out evaluation helpers."""
