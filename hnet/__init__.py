"""hnet: continual learning with task-conditioned hypernetworks (von Oswald et al., ICLR 2020)."""

__version__ = "0.1.0"  # the one home of the version: pyproject.toml reads it (dynamic)
