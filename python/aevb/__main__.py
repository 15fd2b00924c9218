"""``python -m aevb``: the ``aevb`` command (see ``aevb._cli``), e.g. ``python -m aevb demo``."""

import sys

from aevb._cli import main

if __name__ == "__main__":
    sys.exit(main())
