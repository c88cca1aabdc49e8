// genomamba embed: pooled or per-base embeddings from a Mamba DNA language model, as Parquet. Pass --pool,
// --strand and --dtype through ext.args; with --regions the default pooling is one row per BED interval, so
// scattered runs should set --pool N (N dividing the window) to match an un-sharded run.
//
// genomamba is not packaged on bioconda or in a public image yet, so this module sets no `conda` or
// `container`: the pipeline names an image (see ../../../nextflow.config), or genomamba must be on PATH.
// GPU: label 'process_gpu'; the pipeline sets `ext.use_gpu` and `accelerator` for that label (gpu profile).
process GENOMAMBA_EMBED {
    tag "$meta.id"
    label 'process_medium'
    label 'process_gpu'

    input:
    tuple val(meta), path(fasta), path(fai)
    tuple val(meta2), path(region_bed)
    path(model)

    output:
    tuple val(meta), path("*.parquet"), emit: parquet
    tuple val("${task.process}"), val('genomamba'), eval("genomamba --version | sed 's/^genomamba //'"), emit: versions_genomamba, topic: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args      = task.ext.args ?: ''
    def prefix    = task.ext.prefix ?: "${meta.id}"
    def device    = task.ext.use_gpu ? 'cuda' : 'cpu'
    def regions   = region_bed ? "--regions ${region_bed}" : ''
    def model_arg = model ? "--model ${model}" : ''
    """
    genomamba embed \\
        ${fasta} \\
        ${regions} \\
        ${model_arg} \\
        --device ${device} \\
        --threads ${task.cpus} \\
        --quiet \\
        ${args} \\
        -o ${prefix}.parquet
    """

    stub:
    def prefix    = task.ext.prefix ?: "${meta.id}"
    """
    touch ${prefix}.parquet
    """
}
