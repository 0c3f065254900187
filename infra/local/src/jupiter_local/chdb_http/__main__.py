"""``python -m jupiter_local.chdb_http``: see :func:`jupiter_local.chdb_http.run.main`."""

import sys

from jupiter_local.chdb_http.run import main

sys.exit(main())
