"""``python -m dd3d`` runs the ``dd3d`` command line."""
import sys

from dd3d.cli import main

sys.exit(main())
