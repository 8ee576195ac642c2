"""``python -m ntkcourse``: the same as the ``ntkcourse`` command."""
import sys

from ntkcourse.cli import main

sys.exit(main())
