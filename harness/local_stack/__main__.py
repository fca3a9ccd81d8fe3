"""`python -m harness.local_stack ...`: see harness/local_stack/cli.py."""

import sys

from harness.local_stack.cli import main

sys.exit(main())
