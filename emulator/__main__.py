"""`python -m emulator serve --config FILE` / `python -m emulator invoke NAME`."""

import sys

from emulator.cli import main

sys.exit(main())
