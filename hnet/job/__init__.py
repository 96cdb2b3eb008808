"""One training run: the job loop, its checkpoints, data order, signals and environment."""
