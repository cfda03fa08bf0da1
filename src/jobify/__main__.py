"""``python -m jobify``: the same as the ``jobify`` console script."""

from __future__ import annotations

import sys

from jobify.cli import main

if __name__ == "__main__":
    sys.exit(main())
