# The MLflow mirror of the study's results files. The store and experiment are created once
# here (N jobs racing to create them fail); the store itself (mlflow.db) is never a declared
# output, so Snakemake never deletes it.


localrules:
    mlflow_init,
    mlflow_sync,


rule mlflow_init:
    """Create the tracking store and the study's experiment before any job logs to it."""
    output:
        f"{OUT}/mlflow.json",
    log:
        f"{LOGS}/mlflow_init.log",
    conda:
        "../../envs/hnet.yaml"
    params:
        uri=TRACKING_URI,
        experiment=EXPERIMENT,
        live=LIVE,
        required=REQUIRED,
    script:
        "../scripts/mlflow_init.py"


rule mlflow_sync:
    """Local studies: mirror every finished cell to MLflow from one process (importing mlflow
    and opening the store once per study instead of once per job). Idempotent."""
    input:
        init=f"{OUT}/mlflow.json",
        runs=CELL_METRICS + TUNING_METRICS,
    output:
        f"{OUT}/mlflow_sync.json",
    log:
        f"{LOGS}/mlflow_sync.log",
    conda:
        "../../envs/hnet.yaml"
    params:
        uri=TRACKING_URI,
        experiment=EXPERIMENT,
    script:
        "../scripts/mlflow_sync.py"
