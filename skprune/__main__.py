"""``python -m skprune demo``."""

import sys

from ._cli import main

sys.exit(main())
