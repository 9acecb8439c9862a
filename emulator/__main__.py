"""`python -m lambdascope.emulator serve --config FILE`,
`python -m lambdascope.emulator invoke NAME`."""

import sys

from lambdascope.emulator.cli import main

sys.exit(main())
