"""``python -m xce``: see :mod:`xce._cli`."""

import sys

from ._cli import main

if __name__ == "__main__":
    sys.exit(main())
