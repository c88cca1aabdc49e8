#!/usr/bin/env bash
# Derives into data/derived/ (git-ignored) the files tests and benches need and that are not committed.
# Idempotent and fast: a target is rebuilt only when missing or older than its source.
# Needs samtools and bgzip (Debian packages samtools, tabix). Usage: data/make.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="$here/derived"
mkdir -p "$out"

for tool in samtools bgzip gzip; do
  command -v "$tool" >/dev/null || { echo "data/make.sh: error: '$tool' not found (apt-get install samtools tabix)" >&2; exit 1; }
done

# stale TARGET SOURCE...: true when TARGET is missing or older than any SOURCE.
stale() {
  local t="$1"; shift
  [[ -e "$t" ]] || return 0
  for s in "$@"; do [[ "$s" -nt "$t" ]] && return 0; done
  return 1
}

# E. coli 536: plain FASTA (+.fai), bgzip (+.fai, .gzi) and plain gzip (no index possible).
if stale "$out/ecoli536.fa" "$here/genomes/ecoli536.fna.gz"; then
  gzip -cd "$here/genomes/ecoli536.fna.gz" > "$out/ecoli536.fa.tmp" && mv "$out/ecoli536.fa.tmp" "$out/ecoli536.fa"
fi
# FASTA copies next to which the readers find their indexes.
for f in genomes/lambda_virus.fa mixed.fa mixed_crlf.fa; do
  b="$(basename "$f")"
  if stale "$out/$b" "$here/$f"; then cp "$here/$f" "$out/$b"; fi
done

for b in ecoli536.fa lambda_virus.fa mixed.fa mixed_crlf.fa; do
  if stale "$out/$b.fai" "$out/$b"; then samtools faidx "$out/$b"; fi
  if stale "$out/$b.gz" "$out/$b"; then
    bgzip -c "$out/$b" > "$out/$b.gz.tmp" && mv "$out/$b.gz.tmp" "$out/$b.gz"
    rm -f "$out/$b.gz.fai" "$out/$b.gz.gzi"
  fi
  if stale "$out/$b.gz.gzi" "$out/$b.gz" || stale "$out/$b.gz.fai" "$out/$b.gz"; then
    samtools faidx "$out/$b.gz"   # writes both .fai and .gzi
  fi
done

# Plain (non-block) gzip: streamable but not indexable; region queries on it must fail with advice.
for b in mixed.fa lambda_virus.fa ecoli536.fa; do
  if stale "$out/${b%.fa}.plain.fa.gz" "$out/$b"; then gzip -n -c "$out/$b" > "$out/${b%.fa}.plain.fa.gz"; fi
done

# The lambda reads without their index (for the "region query without an index" test), and as SAM text.
if stale "$out/lambda_noindex.bam" "$here/reads/lambda.bam"; then cp "$here/reads/lambda.bam" "$out/lambda_noindex.bam"; fi
if stale "$out/lambda_name.bam" "$here/reads/lambda.bam"; then
  samtools sort -n --no-PG -o "$out/lambda_name.bam" "$here/reads/lambda.bam"
fi
echo "data/make.sh: data/derived is up to date"
