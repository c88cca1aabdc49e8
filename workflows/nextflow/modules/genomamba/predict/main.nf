// genomamba predict: per-base probabilities of A, C, G, T from a Mamba DNA language model, as Parquet.
//
// genomamba is not packaged on bioconda or in a public image yet, so this module sets no `conda` or
// `container`: the pipeline names an image (see ../../../nextflow.config), or genomamba must be on PATH.
// GPU: label 'process_gpu'; the pipeline sets `ext.use_gpu` and `accelerator` for that label (gpu profile).
process GENOMAMBA_PREDICT {
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
    genomamba predict \\
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
