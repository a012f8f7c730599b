"""``python -m modelzoo.cli`` runs the command line."""

import sys

from modelzoo.cli import main

sys.exit(main())
