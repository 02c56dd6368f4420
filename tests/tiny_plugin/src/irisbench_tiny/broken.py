"""An entry point that fails to import: irisbench must warn and carry on."""

raise ImportError("irisbench_tiny.broken is broken on purpose")
