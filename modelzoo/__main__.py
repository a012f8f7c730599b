"""``python -m modelzoo`` runs the command line."""

import sys

from modelzoo.cli import main

sys.exit(main())
