"""``python -m tiltwatch.server [OPTIONS]``: the same as ``tiltwatch serve``."""

import logging

import typer

from ..native import quiet_native_logs
from .cli import serve_command

if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    quiet_native_logs()
    typer.run(serve_command)
