"""``python -m tiltwatch.training CONFIG``: train without the full CLI (handy on a bare GPU box)."""

import sys

from .train import load_config, log_progress_to_stdout, train

if __name__ == "__main__":
    log_progress_to_stdout()
    print(train(load_config(sys.argv[1])))
