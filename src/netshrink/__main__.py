"""`python -m netshrink ...` runs the command line."""

import sys

from netshrink.cli import main

sys.exit(main())
