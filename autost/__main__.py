"""``python -m autost`` runs the command line."""

import sys

from autost.cli import main

sys.exit(main())
