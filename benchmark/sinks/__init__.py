"""Sinks turn a RunRecord into files, MLflow runs and terminal output. The engine never imports them."""
