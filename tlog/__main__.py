"""`python -m tlog`: the same as the `zsb-verify` command (tlog.cli)."""

import sys

from tlog.cli import main

sys.exit(main())
