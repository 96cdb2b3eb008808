"""Aggregate many runs into tables and figures: the run table (runs.py, the bottom module),
tables, missing cells, figure style and figures, and ``make_report`` (build.py)."""
