#!/usr/bin/env bash
# What `score --output-vcf` costs: the same `score` with and without it, whole commands (/usr/bin/time), best of 3,
# on a VCF that has every base of the lambda genome as a record with its three other bases as ALT alleles
# (48,502 records, 145,506 alleles), the embedded model, the CPU engine, one thread. Prints the seconds and peak
# memory of each and the difference per allele, and checks that the annotated VCF got its tabix index; then the same
# with `--output-vcf .bcf` (and its CSI index).
#
# Usage: bash tests/bench/output_vcf.sh   (needs a release build, data/derived from data/make.sh, and bgzip)
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${GENOMAMBA_BIN:-target/release/genomamba}
reference=data/derived/lambda_virus.fa
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 - "$reference" > "$work/all.vcf" <<'PY'
import sys
lines = open(sys.argv[1]).read().splitlines()
name, seq = lines[0][1:].split()[0], "".join(lines[1:])
print("##fileformat=VCFv4.2")
print(f"##contig=<ID={name},length={len(seq)}>")
print('##INFO=<ID=DP,Number=1,Type=Integer,Description="depth">')
print("#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO")
for i, base in enumerate(seq.upper()):
    alts = ",".join(b for b in "ACGT" if b != base)
    print(f"{name}\t{i + 1}\t.\t{base}\t{alts}\t50\tPASS\tDP={i % 40}")
PY
bgzip -f "$work/all.vcf"
alleles=$(( $(zcat "$work/all.vcf.gz" | grep -vc '^#') * 3 ))
best() {  # best of 3 of: seconds and peak KB
  local out=$1; shift
  for _ in 1 2 3; do
    /usr/bin/time -f '%e %M' -o "$work/time" "$bin" score --vcf "$work/all.vcf.gz" --reference "$reference" \
      -o "$work/$out.parquet" --force -q --threads 1 "$@"
    cat "$work/time"
  done | sort -n | head -1
}
read -r plain_s plain_kb < <(best plain)
read -r vcf_s vcf_kb < <(best annotated --output-vcf "$work/all.out.vcf.gz")
test -s "$work/all.out.vcf.gz.tbi"
read -r bcf_s bcf_kb < <(best bcf --output-vcf "$work/all.out.bcf")
test -s "$work/all.out.bcf.csi"
echo "table only:          ${plain_s} s, ${plain_kb} KB peak"
echo "table and VCF+index: ${vcf_s} s, ${vcf_kb} KB peak"
echo "table and BCF+index: ${bcf_s} s, ${bcf_kb} KB peak"
python3 -c "import sys; d = float(sys.argv[2]) - float(sys.argv[1]); \
print(f'--output-vcf: +{d:.2f} s over {int(sys.argv[3]):,} alleles, {d / int(sys.argv[3]) * 1e6:.1f} us per allele')" \
  "$plain_s" "$vcf_s" "$alleles"
python3 -c "import sys; d = float(sys.argv[2]) - float(sys.argv[1]); \
print(f'--output-vcf .bcf: +{d:.2f} s, {d / int(sys.argv[3]) * 1e6:.1f} us per allele')" \
  "$plain_s" "$bcf_s" "$alleles"
