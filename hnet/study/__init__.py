"""Studies: a study config → its grid of cells (torch-free, read by Snakemake at parse time),
the catalog of names it is checked against, and the full pre-flight check of every cell."""
