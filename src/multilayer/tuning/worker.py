"""``python -m multilayer.tuning.worker TUNE_DIR INDEX``: one worker process of ``mlp tune
--workers K`` (see `multilayer.tuning.study.worker_main`)."""

import sys

from multilayer.tuning.study import worker_main

if __name__ == "__main__":
    sys.exit(worker_main())
