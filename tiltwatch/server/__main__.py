"""``python -m tiltwatch.server [OPTIONS]``: the same as ``tiltwatch serve``."""

import logging

import typer

from .cli import serve_command

if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    typer.run(serve_command)
