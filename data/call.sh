#!/usr/bin/env bash
# Recreates data/variants/lambda_calls.vcf.gz (and the same calls as lambda_calls.bcf): variants called from the committed lambda reads (data/reads/lambda.bam,
# made by data/align.sh) against data/genomes/lambda_virus.fa. Real calls by a real caller, so `genomamba score`
# is tested on the VCF a user would bring: SNVs and indels, bcftools' header, bgzip.
# Needs: bcftools and tabix (Debian 1.16). CI does not run this; the output is committed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cp "$here/genomes/lambda_virus.fa" "$tmp/"
cd "$tmp"
mkdir -p "$here/variants"
# --no-version and a relative reference path: the header holds no command line, date or temporary path
# (reproducible byte for byte). bcftools' chatter goes to a log, shown only when a step fails.
if ! bcftools mpileup --no-version -f lambda_virus.fa "$here/reads/lambda.bam" 2>>"$tmp/bcftools.log" |
  bcftools call --no-version -mv 2>>"$tmp/bcftools.log" |
  bgzip -c > "$here/variants/lambda_calls.vcf.gz"; then
  cat "$tmp/bcftools.log" >&2
  echo "call.sh: bcftools failed (log above)" >&2
  exit 1
fi
tabix -f -p vcf "$here/variants/lambda_calls.vcf.gz"
# The same calls as BCF (bgzip-compressed binary VCF), for the reader's BCF path.
bcftools view --no-version -Ob -o "$here/variants/lambda_calls.bcf" "$here/variants/lambda_calls.vcf.gz"
echo "$(gzip -cd "$here/variants/lambda_calls.vcf.gz" | grep -vc '^#') records" >&2
