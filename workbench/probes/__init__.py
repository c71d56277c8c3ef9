"""Probes: compute-only views inside a model (attention, attributions, MoE routing). Never plots."""
