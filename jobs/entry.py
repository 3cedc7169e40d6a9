"""Entry point for Ray Jobs: ``python -m jobs.entry run jobs/mnist_4_9.yaml`` runs like ``drlim``."""

import sys

from pipeline.cli import main

if __name__ == "__main__":
    sys.exit(main())
