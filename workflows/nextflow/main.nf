#!/usr/bin/env nextflow
// genomamba as a Nextflow pipeline: cut a genome into shards at window boundaries (`genomamba regions`), run
// `genomamba predict` or `genomamba embed` per shard, and publish a Hive-partitioned Parquet dataset
//   <outdir>/<command>/chrom=<name>/part-<k>.parquet
// that DuckDB, Polars and pyarrow open as one table. Every shard starts on a window boundary and genomamba reads
// each window's burn-in (and flanks) from outside the shard, so the gathered dataset equals one un-sharded run.
// Without --window and --overlap the model's own apply (causal: 1 Mi-base windows, 8 Ki of burn-in; Caduceus:
// 98,304-base windows, 16 Ki-base flanks), and `genomamba regions --model` cuts the shards on that window.
// `--command score` scores a VCF against the genome in one job instead (`genomamba score` runs only the windows
// holding sites, so there is nothing to shard), published as <outdir>/score/<vcf name>.parquet.
//
//   nextflow run workflows/nextflow --fasta data/mixed.fa --window 1024 --shard_bases 2048
//   nextflow run workflows/nextflow --command score --vcf data/variants/lambda_calls.vcf.gz \
//       --fasta data/genomes/lambda_virus.fa

include { GENOMAMBA_PREDICT } from './modules/genomamba/predict/main'
include { GENOMAMBA_EMBED   } from './modules/genomamba/embed/main'
include { GENOMAMBA_SCORE   } from './modules/genomamba/score/main'

// The shard plan: shards.bed (one line per shard, 4th column its place in the dataset) and one BED per shard.
process GENOMAMBA_REGIONS {
    tag "$meta.id"
    label 'process_single'

    input:
    tuple val(meta), path(fasta), path(fai)
    path(model)

    output:
    tuple val(meta), path("shards.bed"), emit: bed
    tuple val(meta), path("shards/*.bed"), emit: shards
    tuple val("${task.process}"), val('genomamba'), eval("genomamba --version | sed 's/^genomamba //'"), emit: versions_genomamba, topic: versions

    script:
    // No --window: the model's own (causal 1 Mi bases, Caduceus 98,304), read from its config.json. embed's pool
    // is checked against the window here, before any shard runs.
    def window    = params.window != null ? "--window ${params.window}" : ''
    def model_arg = model ? "--model ${model}" : ''
    def pool      = params.command == 'embed' ? "--pool ${params.pool}" : ''
    """
    genomamba regions ${fasta} --max-bases ${params.shard_bases} ${window} ${model_arg} ${pool} -o shards.bed
    mkdir shards
    awk '{ f = sprintf("shards/%06d.bed", NR); print > f; close(f) }' shards.bed
    """

    stub:
    """
    awk '{ printf "%s\\t0\\t%s\\tchrom=%s/part-00000\\n", \$1, \$2, \$1 }' ${fai} > shards.bed
    mkdir shards
    awk '{ f = sprintf("shards/%06d.bed", NR); print > f; close(f) }' shards.bed
    """
}

workflow {
    if (!params.fasta) {
        error "Give the genome with --fasta GENOME.fa (its .fai beside it, or --fai)"
    }
    if (!(params.command in ['predict', 'embed', 'score'])) {
        error "--command must be predict, embed or score, not '${params.command}'"
    }
    if (params.command == 'score' && !params.vcf) {
        error "--command score needs the variants with --vcf CALLS.vcf.gz (VCF, plain, gzip or bgzip, or BCF)"
    }
    if (params.command == 'embed' && params.window && params.pool ==~ /\d+/ && (params.window as long) % (params.pool as long) != 0) {
        error "--pool ${params.pool} must divide --window ${params.window} (or be 'window') so shards gather into one table"
    }

    def fasta = file(params.fasta, checkIfExists: true)
    def model = params.model ? file(params.model, checkIfExists: true) : []

    if (params.command == 'score') {
        // One job, meta.id the VCF's name without extensions. The .fai is optional for score: without it
        // genomamba reads each record holding a site whole, which gives the same scores (more work on a large
        // genome, hence the warning), so a VCF over an unindexed genome still runs.
        def vcf = file(params.vcf, checkIfExists: true)
        def fai = params.fai ? file(params.fai, checkIfExists: true) : file("${params.fasta}.fai")
        def has_fai = fai.exists()
        if (!has_fai) {
            log.warn "No ${fai}: genomamba score will read each record holding a site whole (samtools faidx makes it)"
        }
        GENOMAMBA_SCORE(
            channel.of([ [ id: vcf.simpleName ], vcf ]),
            channel.value([ [ id: params.genome ?: fasta.simpleName ], fasta, has_fai ? fai : [] ]),
            model
        )
    } else {
        def fai = file(params.fai ?: "${params.fasta}.fai", checkIfExists: true)
        def ch_genome = channel.of([ [ id: params.genome ?: fasta.simpleName ], fasta, fai ])

        GENOMAMBA_REGIONS(ch_genome, model)

        // One job per shard; meta.partition is `chrom=<percent-encoded name>`, meta.part is `part-<k>`.
        def ch_jobs = GENOMAMBA_REGIONS.out.shards
            .transpose()
            .map { meta, bed ->
                def name = bed.text.trim().split('\t')[3]
                def partition = name.tokenize('/')[0]
                def part = name.tokenize('/')[1]
                [ meta + [ id: "${meta.id}.${partition}.${part}", genome: meta.id, partition: partition, part: part ], bed ]
            }
            .multiMap { meta, bed ->
                genome: [ meta, fasta, fai ]
                region: [ [ id: "${meta.partition}/${meta.part}" ], bed ]
            }

        if (params.command == 'predict') {
            GENOMAMBA_PREDICT(ch_jobs.genome, ch_jobs.region, model)
        } else {
            GENOMAMBA_EMBED(ch_jobs.genome, ch_jobs.region, model)
        }
    }

    channel.topic('versions')
        .unique()
        .map { proc, tool, version -> "${proc.tokenize(':').last()}:\n  ${tool}: ${version}\n" }
        .collectFile(name: 'versions.yml', storeDir: "${params.outdir}/pipeline_info", sort: true)
}
