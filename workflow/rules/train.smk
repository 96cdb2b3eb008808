# One training job per grid cell. Only metrics.json is declared: Snakemake deletes declared
# outputs before a job runs, and the undeclared state/ checkpoint lets a rerun resume.


localrules:
    check_study,


rule check_study:
    """Resolve every cell's config and hypernetwork size (and load each benchmark's data once)
    before any training job starts; writes the expected grid for the report."""
    output:
        f"{OUT}/grid.json",
    log:
        f"{LOGS}/check_study.log",
    conda:
        "../../envs/hnet.yaml"
    params:
        study=config,  # rerun when the study config changes
    script:
        "../scripts/check_study.py"


rule train:
    """hnet train for one cell; resumes from the cell's state/ after preemption or a crash."""
    input:
        grid=ancient(f"{OUT}/grid.json"),
        tracking=ancient(f"{OUT}/mlflow.json"),
        selection=selection_input,  # swept methods: their values come from the tuning stage
    output:
        f"{RUNS}/{CELL_PATTERN}/metrics.json",
    log:
        f"{LOGS}/train/{CELL_PATTERN}.log",
    group:
        batch_of
    conda:
        "../../envs/hnet.yaml"
    threads: lambda wildcards: resources(config, wildcards.benchmark)["threads"]
    resources:
        mem_mb=job_resource("mem_mb"),
        runtime=job_resource("runtime"),
        gpu=job_resource("gpu"),
        hnet_cell=cell_slot,
    params:
        args=job_args,
        run_dir=lambda wildcards, output: os.path.dirname(output[0]),
    shell:
        # --if-changed restart: a cell whose config changed is retrained (the old run dir is
        # moved aside); an unchanged one resumes or returns its finished metrics. Snakemake
        # never gives its jobs more threads than cores: they may spin (HNET_DEDICATED_CORES,
        # hnet.job.environment.omp_wait_policy).
        'echo "== $(date -Is) attempt on $(hostname)" >> {log}; '
        "HNET_DEDICATED_CORES=1 hnet train {params.args} --threads {threads} "
        "--out {params.run_dir} "
        "--tracking-file {input.tracking} --if-changed restart --quiet >> {log} 2>&1"


# A tuning cell of a study with sweeps: the same job, below tuning/runs/ with the swept point in
# its path; it needs no selection.
use rule train as train_tuning with:
    input:
        grid=ancient(f"{OUT}/grid.json"),
        tracking=ancient(f"{OUT}/mlflow.json"),
    output:
        f"{TUNING_RUNS}/{TUNING_PATTERN}/metrics.json",
    log:
        f"{LOGS}/tuning/{TUNING_PATTERN}.log",


# pack_seeds: K > 1. Seeds of one cell train together, one job per pack (hnet.study.packs),
# declaring every seed's metrics.json; these rules win over the one-cell rule `train` for the
# cells they cover. Resources: a pack holds K seeds' data and weights, so its memory and
# runtime requests are the cell's times K (an upper bound: a pack of 8 trained in ~2× the
# time of one seed on split_digits).
for _pack in PACKS:
    _first = _pack[0]

    rule:
        name:
            pack_name(_pack)
        input:
            grid=ancient(f"{OUT}/grid.json"),
            tracking=ancient(f"{OUT}/mlflow.json"),
        output:
            [f"{RUNS}/{c.path}/metrics.json" for c in _pack],
        log:
            f"{LOGS}/train/{_first.path.rsplit('/', 1)[0]}/pack{_first.seed}-{_pack[-1].seed}.log",
        group:
            BATCH_OF.get(_first)
        conda:
            "../../envs/hnet.yaml"
        threads: resources(config, _first.benchmark)["threads"]
        resources:
            mem_mb=AUTO_RESOURCES.value(_first.benchmark, _first.method, "mem_mb")
            * len(_pack),
            runtime=AUTO_RESOURCES.value(_first.benchmark, _first.method, "runtime")
            * len(_pack),
            gpu=resources(config, _first.benchmark)["gpu"],
            hnet_cell=cell_slot,
        params:
            args=pack_args(config, _pack),
            # a function: Snakemake would otherwise expand "{seed}" as a wildcard
            out=lambda wildcards, p=f"{RUNS}/{_first.path.rsplit('/', 1)[0]}": f"{p}/seed{{seed}}",
        shell:
            'echo "== $(date -Is) attempt on $(hostname)" >> {log}; '
            "HNET_DEDICATED_CORES=1 hnet train {params.args} --threads {threads} "
            "--out {params.out:q} "
            "--tracking-file {input.tracking} --if-changed restart --quiet >> {log} 2>&1"

    workflow.ruleorder(pack_name(_pack), "train")


# cluster.cells_per_job > 1: the record of a batch, written last in its group job after its
# cells have trained (which cluster job trained which cells). Depending on every cell of the
# batch, it makes the batch one connected group: one cluster job.
rule batch_done:
    """Write which cells a batch (one cluster job) trained, and where."""
    input:
        lambda wildcards: [
            f"{OUT}/{c.run_dir}/metrics.json"
            for c in BATCH_BY_NAME[wildcards.batch].cells
        ],
    output:
        f"{OUT}/{RECORDS}/{{batch}}.json",
    log:
        f"{LOGS}/{RECORDS}/{{batch}}.log",
    group:
        lambda wildcards: wildcards.batch
    conda:
        "../../envs/hnet.yaml"
    threads: 1
    resources:
        mem_mb=100,
        runtime=1,
        gpu=0,
    params:
        cells=lambda wildcards: [
            c.run_dir for c in BATCH_BY_NAME[wildcards.batch].cells
        ],
    script:
        "../scripts/batch_record.py"
