"""``python -m kqlmagic_plus.cli``: the same as the ``kqlmagic-plus`` command."""

import sys

from kqlmagic_plus.cli.app import console_main

sys.exit(console_main())
