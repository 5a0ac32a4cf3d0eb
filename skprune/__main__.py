"""``python -m skprune demo``."""

import sys

from .cli import main

sys.exit(main())
