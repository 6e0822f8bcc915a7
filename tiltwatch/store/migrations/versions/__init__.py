"""Migrations of the store, applied in order by ``Store`` on open (``upgrade head``)."""
