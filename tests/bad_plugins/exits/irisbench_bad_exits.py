"""A plugin module that ends the process at import: irisbench must warn and carry on."""

import sys

sys.exit(7)
