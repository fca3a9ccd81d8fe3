import sys

from harness.deploy_check.cli import main

sys.exit(main())
