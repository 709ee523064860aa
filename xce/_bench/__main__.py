"""``python -m xce._bench``: a worker process (``--worker SPEC`` or ``--memory SPEC``, started by
:func:`xce._bench.workers.spawn`), or else the benchmark itself."""

import json
import sys

from . import main
from .workers import memory_worker, worker

if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] in ("--worker", "--memory"):
        (worker if sys.argv[1] == "--worker" else memory_worker)(json.loads(sys.argv[2]))
    else:
        sys.exit(main())
