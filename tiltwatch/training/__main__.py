"""``python -m tiltwatch.training CONFIG``: train without the full CLI (handy on a bare GPU box)."""

import sys

from .train import load_config, train

if __name__ == "__main__":
    print(train(load_config(sys.argv[1])))
