"""Analyses: read only the model, produce findings."""
