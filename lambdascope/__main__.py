import sys

from lambdascope.cli import main

sys.exit(main())
