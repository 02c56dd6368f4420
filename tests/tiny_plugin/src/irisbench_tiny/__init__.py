"""Tiny third-party plugins for irisbench's tests."""
