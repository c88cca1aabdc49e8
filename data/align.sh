#!/usr/bin/env bash
# Recreates the committed read fixtures in data/reads/ from the Debian package bowtie2-examples 2.5.0-3.
# Needs: bowtie2 (Debian 2.5.0), samtools (1.16), an unpacked bowtie2-examples .deb (dpkg-deb -x).
# Usage: data/align.sh /path/to/unpacked/bowtie2-examples   (default /tmp/debs/x/bowtie2-examples)
# CI does not run this; the outputs are committed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
pkg="${1:-/tmp/debs/x/bowtie2-examples}"
src="$pkg/usr/share/doc/bowtie2/examples/reads"
ref="$here/genomes/lambda_virus.fa"
out="$here/reads"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$out"

# Subsets: the first 1000 pairs, the first 50 long reads. gzip -n: no name/time in the header (reproducible).
gzip -cd "$src/reads_1.fq.gz" | awk 'NR <= 4000' | gzip -n -9 > "$out/lambda_pairs_1.fq.gz"
gzip -cd "$src/reads_2.fq.gz" | awk 'NR <= 4000' | gzip -n -9 > "$out/lambda_pairs_2.fq.gz"
gzip -cd "$src/longreads.fq.gz" | awk 'NR <= 200' | gzip -n -9 > "$out/lambda_long.fq.gz"

bowtie2-build --quiet --threads 1 --seed 1 "$ref" "$tmp/lambda"
bowtie2 --seed 1 -p 1 --reorder -x "$tmp/lambda" -1 "$out/lambda_pairs_1.fq.gz" -2 "$out/lambda_pairs_2.fq.gz" \
  --rg-id pairs --rg SM:lambda -S "$tmp/pairs.sam" 2> "$tmp/pairs.log"
bowtie2 --seed 1 -p 1 --reorder --local -x "$tmp/lambda" -U "$out/lambda_long.fq.gz" \
  --rg-id long --rg SM:lambda -S "$tmp/long.sam" 2> "$tmp/long.log"
cat "$tmp/pairs.log" "$tmp/long.log" >&2

# Merge (headers of both have the same @SQ), coordinate-sort, index; CRAM of the same against lambda.
samtools merge -f --no-PG -o "$tmp/merged.bam" "$tmp/pairs.sam" "$tmp/long.sam"
samtools sort --no-PG -@1 -o "$out/lambda.bam" "$tmp/merged.bam"
samtools index "$out/lambda.bam"
samtools view --no-PG -C -T "$ref" -o "$out/lambda.cram" "$out/lambda.bam"
samtools index "$out/lambda.cram"
ls -l "$out"
