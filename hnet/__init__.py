"""hnet: continual learning with task-conditioned hypernetworks (von Oswald et al., ICLR 2020)."""

__version__ = "0.1.0"
