#!/usr/bin/env python3
"""Runs the Snakemake workflow (workflows/snakemake) for real on the bundled data and checks what it made.

For `predict` and `embed`, in a temporary results folder:
- the gathered Hive dataset (<genome>/<command>/chrom=<name>/part-<k>.parquet) opens as one table in pyarrow,
  Polars, DuckDB and pandas, with the partition column giving back each contig's name;
- predict: one row per base (row count = sum of the contig lengths), coordinates contiguous per contig;
- values identical to one un-sharded genomamba run of the same options;
- per-job logs and benchmark files exist; a second `snakemake` run has nothing to do; removing one shard's
  output reruns that shard only; changing the overlap (a param of the rule) reruns every shard;
- with config.yaml's empty window and a Caduceus model (the golden ps-fused), the shards are cut on the model's
  98,304-base window and the gathered embeddings equal a direct run given no --window or --overlap; a pool that
  does not divide that window stops the shard plan.

For `score`, on data/variants/lambda_calls (.vcf.gz and .bcf, one job each) against a copy of
data/genomes/lambda_virus.fa indexed in the temporary folder (data/genomes/ has no .fai, and must keep it so):
- <genome>/score/<name>.parquet holds the rows of a direct `genomamba score` run of the same options (35 rows,
  18 scored) and its metadata but for the command line; a log and a benchmark file per job; a second run has
  nothing to do;
- without a .fai it warns, reads each record whole, and gives the same rows;
- with a Caduceus model (the golden ps-fused, `extra: --overlap 40`) it scores each SNV at its masked site, the
  rows of a direct run;
- config errors (score without variants, an unknown genome, a missing VCF) stop it before anything runs, with a
  message naming the problem.

Usage (from the repository root): python tests/workflows/check_snakemake.py [--keep DIR]
Env: GENOMAMBA_BIN (default target/release/genomamba, else target/debug/genomamba).
--keep DIR leaves the results in DIR (tests/workflows/check_nextflow.py compares its outputs to them).
Exit 0 when every check passes, 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SNAKEFILE = ROOT / "workflows" / "snakemake" / "Snakefile"
sys.path.insert(0, str(Path(__file__).resolve().parent))
from checks import annotated_scores, check, failures, find_binary, normalise  # noqa: E402


def snakemake(config: dict, workdir: Path, *extra: str,
              configfile: Path | None = None) -> subprocess.CompletedProcess:
    overrides = [f"{k}={v}" for k, v in config.items()]
    # Nested entries (variants:) go in a config file: --config values are parsed as YAML, so a path holding `: `
    # or `, ` would not survive.
    files = ["--configfile", str(configfile)] if configfile else []
    cmd = [sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE), "--cores", "2", "--directory", str(ROOT),
           *files, "--config", *overrides, *extra]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)


def jobs_run(proc: subprocess.CompletedProcess, rule: str) -> int:
    """How many jobs of `rule` Snakemake says it ran (from its `localrule`/`rule` lines)."""
    text = proc.stdout + proc.stderr
    return sum(1 for line in text.splitlines() if line.strip() in (f"rule {rule}:", f"localrule {rule}:"))


# Windows and shards small enough to split the bundled contigs (config.yaml leaves them to the model's defaults).
SHARDING = {"window": 1024, "overlap": 8192, "shard_bases": 2048, "pool": 256}


def run_command(command: str, binary: Path, results: Path, lengths: dict[str, int]) -> None:
    import duckdb
    import pandas as pd
    import polars as pl
    import pyarrow as pa
    import pyarrow.parquet as pq

    print(f"[{command}]")
    config = {"genomamba": binary, "command": command, "outdir": results, "threads": 1} | SHARDING
    proc = snakemake(config, results)
    if not check(proc.returncode == 0, f"{command}: snakemake succeeds"):
        print(proc.stdout[-3000:], proc.stderr[-3000:])
        return
    dataset_dir = results / "mixed" / command
    parts = sorted(dataset_dir.glob("chrom=*/part-*.parquet"))
    plan = (results / "mixed" / "shards.bed").read_text().splitlines()
    check(len(parts) == len(plan) > len(lengths),
          f"{command}: one Parquet file per shard ({len(parts)}), more shards than contigs ({len(lengths)})")
    check(all((results / "logs" / "mixed" / command / p.parent.name / p.name.replace(".parquet", ".log")).exists()
              for p in parts), f"{command}: a log per shard")
    check(all((results / "benchmarks" / "mixed" / command / p.parent.name / p.name.replace(".parquet", ".tsv"))
              .exists() for p in parts), f"{command}: a benchmark file per shard")

    # What a user types: pyarrow, Polars and DuckDB on the folder, Hive partitioning on.
    table = pq.read_table(dataset_dir)
    check(table.num_rows > 0 and set(table["chrom"].to_pylist()) == set(lengths),
          f"{command}: pyarrow opens the folder as one table ({table.num_rows} rows, every contig)")
    gathered = normalise(pa.concat_tables([pq.read_table(p) for p in parts]))
    check(set(gathered["chrom"].to_pylist()) == set(lengths), f"{command}: every contig present")
    misplaced = [p for p in parts if set(pq.read_table(p, columns=["chrom"])["chrom"].to_pylist())
                 != {urllib.parse.unquote(p.parent.name.split("=", 1)[1])}]
    check(not misplaced, f"{command}: each chrom=<name> folder holds only that contig ({misplaced})")
    polars_rows = pl.scan_parquet(str(dataset_dir / "**" / "*.parquet")).select(pl.len()).collect().item()
    duck = duckdb.connect().execute(
        f"SELECT chrom, count(*) FROM read_parquet('{dataset_dir}/*/*.parquet', hive_partitioning = true) "
        "GROUP BY chrom").fetchall()
    duck_rows = sum(n for _, n in duck)
    check(polars_rows == duck_rows == table.num_rows and {c for c, _ in duck} == set(lengths),
          f"{command}: Polars and DuckDB read {polars_rows}, {duck_rows} rows, every contig")
    frame = pd.read_parquet(dataset_dir)
    check(len(frame) == table.num_rows and set(frame["chrom"].astype(str)) == set(lengths),
          f"{command}: pandas reads the folder: {len(frame)} rows, every contig")

    # Order the gathered rows as an un-sharded run writes them: contigs in file order, then by start.
    order = {name: i for i, name in enumerate(lengths)}
    rows = sorted(range(gathered.num_rows), key=lambda i: (order[gathered["chrom"][i].as_py()], gathered["start"][i].as_py()))
    gathered = gathered.take(pa.array(rows))
    if command == "predict":
        check(gathered.num_rows == sum(lengths.values()),
              f"predict: one row per base ({gathered.num_rows} = sum of contig lengths {sum(lengths.values())})")
        contiguous = True
        for name, length in lengths.items():
            starts = [s for c, s in zip(gathered["chrom"].to_pylist(), gathered["start"].to_pylist()) if c == name]
            contiguous &= starts == list(range(length))
        check(contiguous, "predict: coordinates contiguous per contig, from 0 to its length")

    # One un-sharded run with the options the workflow uses.
    whole = results / f"whole-{command}.parquet"
    cfg = read_config()
    args = [str(binary), command, cfg["genomes"]["mixed"], "--window", str(SHARDING["window"]), "--overlap",
            str(SHARDING["overlap"]), "--device", "cpu", "--threads", "1", "-q", "-o", str(whole)]
    if command == "embed":
        args += ["--pool", str(SHARDING["pool"])]
    subprocess.run(args, check=True, cwd=ROOT)
    single = normalise(pq.read_table(whole))
    same = gathered.equals(single)
    check(same, f"{command}: gathered shards equal one un-sharded run ({single.num_rows} rows, every value)")

    # Reruns: nothing to do; then only the removed shard is redone.
    again = snakemake(config, results)
    check(again.returncode == 0 and jobs_run(again, "shard") == 0, f"{command}: a second run has nothing to do")
    parts[0].unlink()
    redo = snakemake(config, results)
    check(redo.returncode == 0 and jobs_run(redo, "shard") == 1 and parts[0].exists(),
          f"{command}: removing one shard's output reruns that shard only ({jobs_run(redo, 'shard')} shard jobs)")
    if command == "predict":
        # What the rows depend on is a param: changing the overlap reruns every shard, and so does changing it back
        # (which leaves the dataset as the checks above saw it, for check_nextflow.py to compare with).
        for overlap in (4096, SHARDING["overlap"]):
            changed = snakemake(config | {"overlap": overlap}, results)
            check(changed.returncode == 0 and jobs_run(changed, "shard") == len(parts),
                  f"predict: overlap {overlap} reruns every shard ({jobs_run(changed, 'shard')} of {len(parts)})")
        check(normalise(pa.concat_tables([pq.read_table(p) for p in parts])).sort_by([("chrom", "ascending"),
              ("start", "ascending")]).equals(single.sort_by([("chrom", "ascending"), ("start", "ascending")])),
              "predict: back to the first overlap, the same rows as the un-sharded run")


def run_model_defaults(binary: Path, results: Path) -> None:
    """config.yaml as it is (no window, overlap or shard bound) with a Caduceus model: the shards are cut on the
    model's own 98,304-base window and the jobs run its own window and flanks, so the gathered embeddings equal a
    direct run given no --window or --overlap; a pool that does not divide that window stops the shard plan."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    print("[embed, Caduceus, the model's window]")
    inputs = results / "caduceus-inputs"
    inputs.mkdir(parents=True)
    lambda_fa = (ROOT / "data" / "genomes" / "lambda_virus.fa").read_text().splitlines()
    fasta = inputs / "lambda3.fa"
    # 145,506 bases: two 98,304-base windows, one per shard with shard_bases 98304.
    fasta.write_text(">lambda3\n" + "".join(lambda_fa[1:]) * 3 + "\n")
    fai = fasta.with_name(fasta.name + ".fai")
    fai.write_text("lambda3\t145506\t9\t145506\t145507\n")  # one line of bases after the 9-byte header
    model = ROOT / "tests" / "golden" / "caduceus" / "ps-fused"
    outdir = results / "caduceus-embed"
    genomes = inputs / "genomes.yaml"
    genomes.write_text(f"genomes:\n  lambda3: {fasta}\n")
    config = {"genomamba": binary, "command": "embed", "outdir": outdir, "threads": 1, "model": model,
              "shard_bases": 98304}
    proc = snakemake(config, results, configfile=genomes)
    if not check(proc.returncode == 0, "caduceus embed: snakemake succeeds with config.yaml's empty window"):
        print(proc.stdout[-3000:], proc.stderr[-3000:])
        return
    plan = [line.split("\t")[1:3] for line in (outdir / "lambda3" / "shards.bed").read_text().splitlines()]
    check(plan == [["0", "98304"], ["98304", "145506"]], f"caduceus embed: shards on the model's window: {plan}")
    parts = sorted((outdir / "lambda3" / "embed").glob("chrom=*/part-*.parquet"))
    gathered = normalise(pa.concat_tables([pq.read_table(p) for p in parts])).sort_by("start")
    whole = results / "caduceus-whole.parquet"
    subprocess.run([str(binary), "embed", str(fasta), "--model", str(model), "--pool", "1024", "--device", "cpu",
                    "--threads", "1", "-q", "-o", str(whole)], check=True)
    single = normalise(pq.read_table(whole))
    check(gathered.equals(single),
          f"caduceus embed: gathered shards equal one run with no --window or --overlap ({single.num_rows} rows)")
    refused = snakemake(config | {"outdir": results / "caduceus-pool", "pool": 1000}, results, configfile=genomes)
    log = results / "caduceus-pool" / "logs" / "lambda3" / "shards.log"
    said = log.read_text() if log.exists() else ""
    check(refused.returncode != 0 and "--pool 1000 does not divide the window (98304 bases)" in said
          and not (results / "caduceus-pool" / "lambda3" / "embed").exists(),
          f"caduceus embed: pool 1000 stops the shard plan before any shard runs ({said.strip()[:120]!r})")


def index_fasta(fasta: Path) -> bool:
    """Writes <fasta>.fai beside a copy of a data/ FASTA: samtools faidx, else the index data/make.sh derived."""
    derived = ROOT / "data" / "derived" / (fasta.name + ".fai")
    if shutil.which("samtools"):
        subprocess.run(["samtools", "faidx", str(fasta)], check=True)
    elif derived.exists():
        shutil.copyfile(derived, fasta.with_name(fasta.name + ".fai"))
    else:
        return check(False, f"score: need samtools (or data/derived/{derived.name} from data/make.sh) for the .fai")
    return True


def run_score(binary: Path, results: Path) -> None:
    import pyarrow.parquet as pq
    import yaml

    print("[score]")
    # The genome the calls were made against (data/call.sh), copied and indexed here: data/genomes/ has no .fai.
    inputs = results / "inputs"
    (inputs / "noindex").mkdir(parents=True)
    fasta = inputs / "lambda_virus.fa"
    shutil.copyfile(ROOT / "data" / "genomes" / "lambda_virus.fa", fasta)
    if not index_fasta(fasta):
        return
    bare = inputs / "noindex" / fasta.name
    shutil.copyfile(fasta, bare)
    vcf = ROOT / "data" / "variants" / "lambda_calls.vcf.gz"
    bcf = ROOT / "data" / "variants" / "lambda_calls.bcf"
    config = {"genomamba": binary, "command": "score", "outdir": results, "threads": 1}
    configfile = results / "score-config.yaml"
    configfile.write_text(yaml.safe_dump({
        "genomes": {"lambda": str(fasta)},
        "variants": {"lambda_calls": {"vcf": str(vcf), "genome": "lambda"},
                     "lambda_calls_bcf": {"vcf": str(bcf), "genome": "lambda"}}}))

    # Config errors stop the workflow before any job, with the message (a dry run: were a check missing, still
    # nothing would run).
    errors = results / "score-errors.yaml"
    cases = [
        ("score without variants", {}, "command score needs `variants:`"),
        ("a variant set naming an unknown genome", {"calls": {"vcf": str(vcf), "genome": "hg38"}},
         "variants 'calls' names genome 'hg38', which is not in `genomes:`"),
        ("a missing VCF", {"calls": {"vcf": str(results / "absent.vcf.gz"), "genome": "lambda"}},
         f"variants 'calls': no VCF file {results / 'absent.vcf.gz'}"),
    ]
    for what, variants, message in cases:
        errors.write_text(yaml.safe_dump({"genomes": {"lambda": str(fasta)}, "variants": variants}))
        proc = snakemake(config | {"outdir": results / "errors"}, results, "-n", configfile=errors)
        check(proc.returncode != 0 and message in proc.stdout + proc.stderr,
              f"score: {what} fails with {message!r}")

    proc = snakemake(config, results, configfile=configfile)
    if not check(proc.returncode == 0, "score: snakemake succeeds"):
        print(proc.stdout[-3000:], proc.stderr[-3000:])
        return
    names = ("lambda_calls", "lambda_calls_bcf")
    outputs = {name: results / "lambda" / "score" / f"{name}.parquet" for name in names}
    check(jobs_run(proc, "score") == 2 and all(p.exists() for p in outputs.values()),
          f"score: one job per VCF ({jobs_run(proc, 'score')}), writing <genome>/score/<name>.parquet")
    check(all((results / "logs" / "lambda" / "score" / f"{name}.log").exists() for name in outputs),
          "score: a log per job")
    check(all((results / "benchmarks" / "lambda" / "score" / f"{name}.tsv").exists() for name in outputs),
          "score: a benchmark file per job")

    # The direct run, with the options the workflow passes (no --window or --overlap: they cut shards, and score has
    # none) and the same paths, so that the metadata matches too.
    direct = results / "direct-score.parquet"
    subprocess.run([str(binary), "score", "--vcf", str(vcf), "--reference", str(fasta), "--device", "cpu",
                    "--threads", "1", "-q", "-o", str(direct)], check=True, cwd=ROOT)
    want = normalise(pq.read_table(direct))
    check(want.num_rows == 35 and want["status"].to_pylist().count("ok") == 18,
          f"score: the direct run has 35 rows, 18 ok ({want.num_rows}, {want['status'].to_pylist().count('ok')})")
    for name, path in outputs.items():
        got = normalise(pq.read_table(path))
        check(got.equals(want), f"score: {name}: the rows equal the direct run's ({got.num_rows} rows, every value)")
        vcf_out = path.with_suffix(".vcf.gz")
        scores = annotated_scores(vcf_out)
        check(scores == got["score"].to_pylist() and Path(f"{vcf_out}.tbi").exists(),
              f"score: {name}: {vcf_out.name} holds the table's scores ({len(scores)} alleles) and has its .tbi")
    got_meta, want_meta = score_metadata(outputs["lambda_calls"]), score_metadata(direct)
    # The workflow also writes the annotated VCF, which the direct run does not: the metadata names it.
    vcf_named = got_meta.get("variants", {}).pop("output_vcf", None)
    check(vcf_named == str(outputs["lambda_calls"].with_suffix(".vcf.gz")),
          f"score: lambda_calls: the metadata names the annotated VCF ({vcf_named})")
    want_meta.get("variants", {}).pop("output_vcf", None)
    differ = sorted(k for k in set(got_meta) | set(want_meta)
                    if k != "command_line" and got_meta.get(k) != want_meta.get(k))
    check(not differ, "score: lambda_calls: metadata equals the direct run's but for command_line and the VCF out"
          + (f" (differs: {differ})" if differ else ""))
    read = got_meta.get("variants", {}).get("reference_read", "")
    check(read.startswith("windows holding sites"), f"score: genomamba read {read!r} (the .fai was used)")

    again = snakemake(config, results, configfile=configfile)
    check(again.returncode == 0 and jobs_run(again, "score") == 0, "score: a second run has nothing to do")

    # Without a .fai: a warning, each record read whole, the same rows.
    bare_config = results / "score-bare.yaml"
    bare_config.write_text(yaml.safe_dump({
        "genomes": {"lambda_bare": str(bare)},
        "variants": {"lambda_calls": {"vcf": str(vcf), "genome": "lambda_bare"}}}))
    proc = snakemake(config, results, configfile=bare_config)
    out = results / "lambda_bare" / "score" / "lambda_calls.parquet"
    if not check(proc.returncode == 0 and out.exists(), "score: a genome without .fai runs"):
        print(proc.stdout[-3000:], proc.stderr[-3000:])
        return
    check(f"has no {bare}.fai" in proc.stderr, "score: ... with a warning that names the missing .fai")
    got = normalise(pq.read_table(out))
    read = score_metadata(out).get("variants", {}).get("reference_read", "")
    check(got.equals(want) and read.startswith("whole records"),
          f"score: ... reading {read!r}, the same rows as the direct run ({got.num_rows})")
    check(not bare.with_name(bare.name + ".fai").exists(), "score: ... and writes no .fai")

    # A Caduceus model: each SNV scored at its masked site, as a direct run scores it (the rule passing no --window,
    # which masked scoring refuses), the flank set through `extra`.
    model = ROOT / "tests" / "golden" / "caduceus" / "ps-fused"
    masked = {"model": model, "extra": "--overlap 40", "outdir": results / "caduceus"}
    proc = snakemake(config | masked, results, configfile=configfile)
    out = results / "caduceus" / "lambda" / "score" / "lambda_calls.parquet"
    if not check(proc.returncode == 0 and out.exists(), "score: a Caduceus model runs"):
        print(proc.stdout[-3000:], proc.stderr[-3000:])
        return
    direct = results / "direct-caduceus.parquet"
    subprocess.run([str(binary), "score", "--vcf", str(vcf), "--reference", str(fasta), "--model", str(model),
                    "--overlap", "40", "--device", "cpu", "--threads", "1", "-q", "-o", str(direct)],
                   check=True, cwd=ROOT)
    want = normalise(pq.read_table(direct))
    got = normalise(pq.read_table(out))
    masked_flank = score_metadata(out).get("variants", {}).get("masked_flank")
    check(got.equals(want) and want["status"].to_pylist().count("ok") == 18 and masked_flank == 40,
          f"score: ... the rows of a direct run ({got.num_rows}, 18 SNVs scored), masked with flank {masked_flank}")


def score_metadata(path: Path) -> dict:
    import json

    import pyarrow.parquet as pq

    return json.loads(pq.ParquetFile(path).metadata.metadata[b"genomamba"])


def read_config() -> dict:
    import yaml

    return yaml.safe_load((ROOT / "workflows" / "snakemake" / "config.yaml").read_text())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="leave the results in this folder (created, must be empty)")
    opts = parser.parse_args()
    binary = find_binary()
    if binary is None:
        sys.exit("check_snakemake: no genomamba binary: run `cargo build --release` or set GENOMAMBA_BIN")
    fai = ROOT / "data" / "mixed.fa.fai"
    lengths = {line.split("\t")[0]: int(line.split("\t")[1]) for line in fai.read_text().splitlines()}
    results = opts.keep.resolve() if opts.keep else Path(tempfile.mkdtemp(prefix="check_snakemake."))
    results.mkdir(parents=True, exist_ok=True)
    try:
        for command in ("predict", "embed"):
            run_command(command, binary, results, lengths)
        run_model_defaults(binary, results)
        run_score(binary, results)
    finally:
        if not opts.keep:
            shutil.rmtree(results, ignore_errors=True)
    print(f"\n{'all' if not failures else len(failures)} snakemake checks {'passed' if not failures else 'FAILED'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
