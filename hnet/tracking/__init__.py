"""MLflow as the mirror of the results files: the store and run identity, the live mirror of a
job, after-the-fact sync, and the small plots uploaded as artifacts."""
