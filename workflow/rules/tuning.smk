# Studies with sweeps: the tuning cells (rule train_tuning, in train.smk) feed one selection per
# swept benchmark × scenario × method × size. The selection is a checkpoint: the final cells of
# swept methods read their values from its output, so Snakemake evaluates those jobs only once
# it exists, and one command runs both stages.


localrules:
    select,


checkpoint select:
    """Pick each swept group's values by the validation metric of its tuning cells (never a
    test metric; ties go to the value listed first in the sweep)."""
    input:
        runs=TUNING_METRICS,
    output:
        SELECTION,
    log:
        f"{LOGS}/select.log",
    conda:
        "../../envs/hnet.yaml"
    params:
        # the tuning cells with their points in listed order, and the rule: reselect on change
        cells=tuning_record(config, TUNING),
        tuning=config.get("tuning", {}),
        # the study directory, which the tuning cells' run_dir entries are relative to
        out=lambda wildcards, output: os.path.dirname(os.path.dirname(output[0])),
    script:
        "../scripts/select.py"
