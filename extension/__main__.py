"""`python -m extension [NAME]` runs the agent (for debugging; Lambda runs the layer's launcher)."""

import sys

from extension.agent import main

sys.exit(main())
