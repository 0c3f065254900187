"""``python -m jupiter_local.broker``: see :mod:`jupiter_local.broker.cli`."""

import sys

from jupiter_local.broker.cli import main

sys.exit(main())
