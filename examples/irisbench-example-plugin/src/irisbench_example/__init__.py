"""Example irisbench plugins: see plugin.py."""
