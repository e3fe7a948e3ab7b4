"""``python -m orthgate``: the ``orthgate`` command."""

import sys

from orthgate.cli import main

sys.exit(main())
