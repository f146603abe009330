"""``python -m nas.cli``: the ``ctsnas`` command line."""
import sys

from .main import main

sys.exit(main())
