// genomamba score: variant-effect scores of a VCF's SNVs, ln P(alt) - ln P(ref) at each site given the bases
// before it, as Parquet (one row per record and ALT allele, in the VCF's order; alleles that are not scored get a
// status saying why: not_snv, ref_mismatch, unknown_contig, ...). With a Caduceus model each SNV is scored at its
// masked site instead, in a window of its own (ext.args must not pass --window then; the pipeline's do not).
// Indels and multi-base substitutions are scored too with `--indel-flank N` in ext.args. The VCF comes back too,
// as ${prefix}.genomamba.vcf.gz (a name of its own: the input is often ${meta.id}.vcf.gz), with each ALT allele's
// values in INFO (GENOMAMBA_SCORE, GENOMAMBA_LOGP_REF, GENOMAMBA_LOGP_ALT, GENOMAMBA_STATUS) and everything else
// as it came in; its tabix index is emitted when the records are sorted.
// One task per VCF: with the reference's .fai genomamba runs only the windows holding sites, so there is nothing
// to shard. Without a .fai (pass `[]`) it reads each record holding a site whole: the same scores, more work. A
// bgzip FASTA also needs its .gzi, which this module does not stage; give a plain FASTA to use the .fai.
//
// genomamba is not packaged on bioconda or in a public image yet, so this module sets no `conda` or
// `container`: the pipeline names an image (see ../../../nextflow.config), or genomamba must be on PATH.
// GPU: label 'process_gpu'; the pipeline sets `ext.use_gpu` and `accelerator` for that label (gpu profile).
process GENOMAMBA_SCORE {
    tag "$meta.id"
    label 'process_medium'
    label 'process_gpu'

    input:
    tuple val(meta), path(vcf)
    tuple val(meta2), path(fasta), path(fai)
    path(model)

    output:
    tuple val(meta), path("*.parquet"), emit: parquet
    tuple val(meta), path("*.genomamba.vcf.gz"), emit: vcf
    tuple val(meta), path("*.genomamba.vcf.gz.tbi"), emit: tbi, optional: true
    tuple val("${task.process}"), val('genomamba'), eval("genomamba --version | sed 's/^genomamba //'"), emit: versions_genomamba, topic: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args      = task.ext.args ?: ''
    def prefix    = task.ext.prefix ?: "${meta.id}"
    def device    = task.ext.use_gpu ? 'cuda' : 'cpu'
    def model_arg = model ? "--model ${model}" : ''
    """
    if [ "${vcf}" = "${prefix}.genomamba.vcf.gz" ]; then
        echo "genomamba score: the input VCF is named as the output, ${vcf}: set ext.prefix" >&2
        exit 1
    fi
    genomamba score \\
        --vcf ${vcf} \\
        --reference ${fasta} \\
        ${model_arg} \\
        --device ${device} \\
        --threads ${task.cpus} \\
        --quiet \\
        ${args} \\
        -o ${prefix}.parquet \\
        --output-vcf ${prefix}.genomamba.vcf.gz
    """

    stub:
    def prefix    = task.ext.prefix ?: "${meta.id}"
    """
    touch ${prefix}.parquet
    echo | gzip > ${prefix}.genomamba.vcf.gz
    touch ${prefix}.genomamba.vcf.gz.tbi
    """
}
