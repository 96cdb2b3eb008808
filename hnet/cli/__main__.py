"""``python -m hnet.cli``: the same as the ``hnet`` console script."""

from hnet.cli import run

run()
