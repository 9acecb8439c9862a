"""`python -m lambdascope.extension [NAME]` runs the agent (for debugging; Lambda runs the
layer's launcher)."""

import sys

from .agent import main

sys.exit(main())
