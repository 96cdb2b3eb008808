# All cells → tables and figures (hnet report), shown in `snakemake --report`.


localrules:
    aggregate,


rule aggregate:
    """Collect every cell's metrics.json into tables (CSV, Markdown, LaTeX) and figures."""
    input:
        grid=f"{OUT}/grid.json",
        runs=CELL_METRICS,
        selection=[SELECTION] if TUNING else [],
    output:
        tables=report(
            directory(f"{OUT}/tables"),
            patterns=["{name}.csv"],
            caption="../report/tables.rst",
            category="Tables",
            labels={"table": "{name}"},
        ),
        figures=[
            report(
                directory(f"{OUT}/figures/{kind}"),
                patterns=["{benchmark}__{scenario}.png"],
                caption=f"../report/{kind}.rst",
                category=title,
                subcategory="{benchmark} {scenario}",
                labels={"benchmark": "{benchmark}", "scenario": "{scenario}"},
            )
            for kind, (title, _) in FIGURE_KINDS.items()
        ],
    log:
        f"{LOGS}/aggregate.log",
    conda:
        "../../envs/hnet.yaml"
    params:
        # Figure captions come from hnet.report.layout (one home); each report/<kind>.rst
        # renders its entry with Jinja.
        captions=FIGURE_CAPTIONS,
        runs=lambda wildcards, input: os.path.join(os.path.dirname(input.grid), "runs"),
        out=lambda wildcards, input: os.path.dirname(input.grid),
        # the paired comparison's reference, fixed by the study before any result exists
        hnet_ref=hnet_reference(config),
        selection=lambda wildcards, input: (
            f"--selection {input.selection}" if input.selection else ""
        ),
    shell:
        "hnet report {params.runs} --out {params.out} --expected {input.grid} "
        "--hnet-ref {params.hnet_ref} {params.selection} > {log} 2>&1"
