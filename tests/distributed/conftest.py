"""The distributed test runs only under ``make test-distributed`` (which sets PIXVERSE_DISTRIBUTED=1).

Without the variable the folder is not collected at all (not skipped), so ``pytest tests`` and
``make test`` never start PostgreSQL, Redis and nine Airflow processes.
"""

from __future__ import annotations

import os

collect_ignore_glob = [] if os.environ.get("PIXVERSE_DISTRIBUTED") == "1" else ["*"]
