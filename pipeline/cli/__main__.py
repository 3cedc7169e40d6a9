"""``python -m pipeline.cli ...`` runs the ``drlim`` command."""

import sys

from pipeline.cli.main import main

sys.exit(main())
