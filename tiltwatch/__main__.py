"""``python -m tiltwatch`` is the ``tiltwatch`` command."""

from .cli import main

main()
