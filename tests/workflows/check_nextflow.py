#!/usr/bin/env python3
"""Checks the Nextflow side of genomamba without Nextflow (its launcher needs a jar that cannot be fetched here).

(a) Static: the nf-core-shaped modules (workflows/nextflow/modules/genomamba/{embed,predict,score}) have the
    required fields in main.nf and meta.yml, meta.yml documents every input and output of main.nf, the nf-test
    files exist, and the pipeline (main.nf, nextflow.config) has its commands, profiles and publish layout.
(b) Dynamic: takes the `script:` and `stub:` templates out of main.nf, substitutes the Groovy variables the way
    Nextflow would for a run on data/mixed.fa (shards from the pipeline's own GENOMAMBA_REGIONS script, ext.args,
    ext.prefix and publishDir taken from nextflow.config), runs them with the real binary in task folders, and
    checks: the stub makes the declared files, the gathered per-shard Parquet equals one un-sharded run of the same
    command, and the versions `eval` parses. GENOMAMBA_SCORE runs the same way on data/variants/lambda_calls
    (.vcf.gz and .bcf) against data/genomes/lambda_virus.fa, with and without the .fai, and its Parquet must equal
    a direct `genomamba score` run of the same command.

Usage (from the repository root): python tests/workflows/check_nextflow.py
Env: GENOMAMBA_BIN (default target/release/genomamba, else target/debug/genomamba), GENOMAMBA_SNAKEMAKE_RESULTS=DIR
to also compare with the dataset tests/workflows/check_snakemake.py --keep DIR made, GENOMAMBA_CHECK_GPU=1 to run
the templates with task.ext.use_gpu = true (needs a GPU), GENOMAMBA_CHECK_KEEP=1 to keep the temp folder.
Exit 0 when every check passes, 1 otherwise.
"""

from __future__ import annotations

import fnmatch
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NF = ROOT / "workflows" / "nextflow"
COMMANDS = ("predict", "embed")  # the sharded commands of the pipeline
MODULES = (*COMMANDS, "score")
# Each module's inputs as nf-core channels: predict and embed take a genome (or shard), score a VCF and its reference.
INPUTS = {
    "predict": [["meta", "fasta", "fai"], ["meta2", "region_bed"], ["model"]],
    "embed": [["meta", "fasta", "fai"], ["meta2", "region_bed"], ["model"]],
    "score": [["meta", "vcf"], ["meta2", "fasta", "fai"], ["model"]],
}
WINDOW, SHARD_BASES, POOL, CPUS = 1024, 2048, 256, 2

sys.path.insert(0, str(Path(__file__).resolve().parent))
from checks import annotated_scores, check, failures, find_binary, normalise  # noqa: E402


# ---------------------------------------------------------------------------------------------------------------
# A small evaluator for the Groovy subset the templates use: `a ?: b`, `c ? x : y`, `a == b`, `a != b`, null,
# true, false, dotted names, '...' and "..."
# strings with ${...} / $name interpolation, numbers. Unknown roots raise, so a typo in main.nf fails the check.


class GroovyError(Exception):
    pass


def _find_top(expr: str, token: str, start: int = 0) -> int:
    quote, depth, i = None, 0, start
    while i < len(expr):
        c = expr[i]
        if quote:
            if c == "\\":
                i += 1
            elif c == quote:
                quote = None
        elif c in "'\"":
            quote = c
        elif c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif depth == 0 and expr.startswith(token, i):
            if token == "?" and expr[i + 1 : i + 2] in (":", "."):
                i += 2
                continue
            return i
        i += 1
    return -1


def truthy(value) -> bool:
    return value not in (None, False, "", 0) and value != []


def to_str(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def lookup(name: str, env: dict):
    parts = name.split(".")
    if parts[0] not in env:
        raise GroovyError(f"unknown variable {parts[0]!r} in {name!r}")
    value = env[parts[0]]
    for part in parts[1:]:
        value = value.get(part) if isinstance(value, dict) else None
    return value


def eval_expr(expr: str, env: dict):
    expr = expr.strip()
    i = _find_top(expr, "?:")
    if i >= 0:
        left = eval_expr(expr[:i], env)
        return left if truthy(left) else eval_expr(expr[i + 2 :], env)
    i = _find_top(expr, "?")
    if i >= 0:
        j = _find_top(expr, ":", i + 1)
        if j < 0:
            raise GroovyError(f"bad ternary: {expr}")
        branch = expr[i + 1 : j] if truthy(eval_expr(expr[:i], env)) else expr[j + 1 :]
        return eval_expr(branch, env)
    for op in ("!=", "=="):
        i = _find_top(expr, op)
        if i >= 0:
            if expr[i + 2 : i + 3] == "~":
                raise GroovyError(f"regular-expression match outside the supported subset: {expr}")
            same = eval_expr(expr[:i], env) == eval_expr(expr[i + 2 :], env)
            return same if op == "==" else not same
    if expr == "null":
        return None
    if expr in ("true", "false"):
        return expr == "true"
    if len(expr) >= 2 and expr[0] == expr[-1] == "'":
        return expr[1:-1]
    if len(expr) >= 2 and expr[0] == expr[-1] == '"':
        return gstring(expr[1:-1], env)
    if re.fullmatch(r"-?\d+", expr):
        return int(expr)
    if re.fullmatch(r"[A-Za-z_]\w*(\.\w+)*", expr):
        return lookup(expr, env)
    raise GroovyError(f"expression outside the supported subset: {expr}")


ESCAPES = {"\\": "\\", "$": "$", "t": "\t", "n": "\n", "r": "\r", '"': '"', "'": "'", "\n": ""}


def gstring(text: str, env: dict) -> str:
    """Groovy double-quoted string body -> str: escapes, then ${expr} and $dotted.name interpolation."""
    out, i = [], 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            if text[i + 1] not in ESCAPES:
                raise GroovyError(f"unknown escape \\{text[i + 1]} in a GString")
            out.append(ESCAPES[text[i + 1]])
            i += 2
        elif c == "$" and text.startswith("${", i):
            depth, j = 0, i + 1
            while j < len(text):
                depth += text[j] == "{"
                depth -= text[j] == "}"
                if depth == 0:
                    break
                j += 1
            out.append(to_str(eval_expr(text[i + 2 : j], env)))
            i = j + 1
        elif c == "$":
            m = re.match(r"\$([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)", text[i:])
            if not m:
                raise GroovyError(f"lone $ in a GString (escape it as \\$): {text[i:i + 20]!r}")
            out.append(to_str(lookup(m.group(1), env)))
            i += len(m.group(0))
        else:
            out.append(c)
            i += 1
    return "".join(out)


# ---------------------------------------------------------------------------------------------------------------
# main.nf parsing


def process_body(src: str, name: str) -> str:
    m = re.search(rf"^process\s+{name}\s*\{{\s*$(.*?)^\}}", src, re.S | re.M)
    if not m:
        raise GroovyError(f"process {name} not found")
    return m.group(1)


def sections(body: str) -> dict[str, str]:
    parts = re.split(r"^\s*(input|output|when|script|stub):\s*$", body, flags=re.M)
    return {parts[k]: parts[k + 1] for k in range(1, len(parts) - 1, 2)} | {"head": parts[0]}


def template(section: str, env: dict) -> str:
    """`def x = ...` lines, then a triple-quoted GString: returns the rendered shell script."""
    m = re.search(r'^(.*?)"""\n(.*?)"""', section, re.S)
    if not m:
        raise GroovyError("no triple-quoted script")
    env = dict(env)
    for line in m.group(1).splitlines():
        line = line.strip()
        if not line or line.startswith("//"):
            continue
        d = re.fullmatch(r"def\s+(\w+)\s*=\s*(.+)", line)
        if not d:
            raise GroovyError(f"unsupported line before the script: {line}")
        env[d.group(1)] = eval_expr(d.group(2), env)
    return gstring(m.group(2), env)


ELEMENT = re.compile(r"""(val|path|eval)\(\s*(?:"([^"]*)"|'([^']*)'|(\w+))\s*\)""")


def parse_channels(section: str) -> list[dict]:
    """Each input/output line -> {'elements': [(kind, name)], 'emit': ..., 'topic': ...}."""
    channels = []
    for line in section.splitlines():
        line = line.strip()
        if not line or line.startswith("//"):
            continue
        elements = [(m.group(1), next(g for g in m.groups()[1:] if g is not None)) for m in ELEMENT.finditer(line)]
        emit = re.search(r"emit:\s*(\w+)", line)
        topic = re.search(r"topic:\s*(\w+)", line)
        channels.append({"elements": elements, "emit": emit and emit.group(1), "topic": topic and topic.group(1)})
    return channels


# ---------------------------------------------------------------------------------------------------------------
# nextflow.config parsing (only the simple forms it uses)


def config_params(text: str) -> dict:
    block = re.search(r"^params\s*\{(.*?)^\}", text, re.S | re.M).group(1)
    params = {}
    for line in block.splitlines():
        m = re.match(r"\s*(\w+)\s*=\s*(\S+)", line.split("//")[0])
        if m:
            raw = m.group(2)
            params[m.group(1)] = (None if raw == "null" else raw == "true" if raw in ("true", "false")
                                  else int(raw) if raw.isdigit() else eval_expr(raw, {}))
    return params


def config_with_name(text: str, name: str) -> dict[str, str]:
    block = re.search(rf"withName:\s*'{name}'\s*\{{(.*?)^    \}}", text, re.S | re.M)
    if not block:
        raise GroovyError(f"withName: '{name}' not in nextflow.config")
    out = {}
    for key in ("ext.args", "ext.prefix"):
        m = re.search(rf"{re.escape(key)}\s*=\s*\{{\s*(.*?)\s*\}}\s*$", block.group(1), re.M)
        if m:
            out[key] = m.group(1)
    m = re.search(r"publishDir\s*=\s*\[\s*path:\s*\{\s*(\".*?\")\s*\}.*pattern:\s*'([^']*)'", block.group(1))
    if m:
        out["publish_path"], out["publish_pattern"] = m.group(1), m.group(2)
    return out


# ---------------------------------------------------------------------------------------------------------------
# (a) static checks


def static_module(cmd: str) -> None:
    import yaml

    mod = NF / "modules" / "genomamba" / cmd
    name = f"GENOMAMBA_{cmd.upper()}"
    print(f"[static] module genomamba/{cmd}")
    src = (mod / "main.nf").read_text()
    sec = sections(process_body(src, name))
    head, script = sec["head"], sec.get("script", "")
    check('tag "$meta.id"' in head, "main.nf: tag \"$meta.id\"")
    check("label 'process_medium'" in head, "main.nf: label 'process_medium'")
    check("label 'process_gpu'" in head, "main.nf: label 'process_gpu' (accelerator set by the pipeline)")
    check(re.search(r"task\.ext\.when\s*==\s*null\s*\|\|\s*task\.ext\.when", sec.get("when", "")) is not None,
          "main.nf: when: task.ext.when == null || task.ext.when")
    check("task.ext.args" in script, "main.nf: script reads task.ext.args")
    check(re.search(r'task\.ext\.prefix\s*\?:\s*"\$\{meta\.id\}"', script) is not None,
          'main.nf: prefix = task.ext.prefix ?: "${meta.id}"')
    check("--threads ${task.cpus}" in script, "main.nf: --threads ${task.cpus}")
    check("task.ext.use_gpu" in script, "main.nf: device follows task.ext.use_gpu")
    check(f"genomamba {cmd} " in script, f"main.nf: script runs genomamba {cmd}")
    check("stub" in sec and "touch" in sec["stub"], "main.nf: stub: touches the outputs")

    if cmd == "score":
        check("--vcf ${vcf}" in script and "--reference ${fasta}" in script,
              "main.nf: script passes --vcf ${vcf} --reference ${fasta} (the .fai is staged beside the FASTA)")

    inputs = [[n for _, n in c["elements"]] for c in parse_channels(sec["input"])]
    want_inputs = " ".join("(" + ", ".join(c) + ")" for c in INPUTS[cmd])
    check(inputs == INPUTS[cmd], f"main.nf: inputs {want_inputs}: {inputs}")
    outputs = {c["emit"]: c for c in parse_channels(sec["output"])}
    check(outputs.get("parquet", {}).get("elements") == [("val", "meta"), ("path", "*.parquet")],
          'main.nf: tuple val(meta), path("*.parquet"), emit: parquet')
    ver = outputs.get("versions_genomamba", {})
    check(ver.get("topic") == "versions" and [k for k, _ in ver.get("elements", [])] == ["val", "val", "eval"],
          "main.nf: versions_genomamba is topic-style (process, tool, eval)")

    meta = yaml.safe_load((mod / "meta.yml").read_text())
    check(meta.get("name") == f"genomamba_{cmd}", f"meta.yml: name genomamba_{cmd}")
    for field in ("description", "keywords", "tools", "input", "output", "authors", "maintainers"):
        check(bool(meta.get(field)), f"meta.yml: {field} present")
    check(len(meta.get("keywords") or []) >= 3, "meta.yml: at least 3 keywords")
    tool = (meta.get("tools") or [{}])[0].get("genomamba") or {}
    for field in ("description", "homepage", "documentation", "licence"):
        check(bool(tool.get(field)), f"meta.yml: tools.genomamba.{field}")

    def names(channel):
        items = channel if isinstance(channel, list) else [channel]
        return [next(iter(item)) for item in items]

    def described(channel):
        items = channel if isinstance(channel, list) else [channel]
        return all(v.get("type") and v.get("description") for item in items for v in item.values())

    documented = [names(c) for c in meta.get("input") or []]
    check(documented == inputs, f"meta.yml: inputs match main.nf: {documented}")
    check(all(described(c) for c in meta.get("input") or []), "meta.yml: every input has type and description")
    for emit, channel in outputs.items():
        want = [n for _, n in channel["elements"]]
        got = [names(c) for c in (meta.get("output") or {}).get(emit) or []]
        check(got == [want], f"meta.yml: output {emit} documents {want}")
        check(all(described(c) for c in (meta.get("output") or {}).get(emit) or []),
              f"meta.yml: output {emit} has types and descriptions")
    topics = [names(c) for c in (meta.get("topics") or {}).get("versions") or []]
    check(topics == [[n for _, n in ver.get("elements", [])]], "meta.yml: topics.versions matches the eval output")

    test = (mod / "tests" / "main.nf.test").read_text()
    check('script "../main.nf"' in test and f'process "{name}"' in test, "tests/main.nf.test: points at the process")
    check('options "-stub"' in test and ".match()" in test, "tests/main.nf.test: stub twin and snapshots")
    snap = mod / "tests" / "main.nf.test.snap"
    if snap.exists():
        try:
            json.loads(snap.read_text())
            check(True, "tests/main.nf.test.snap: valid JSON")
        except ValueError as err:
            check(False, f"tests/main.nf.test.snap: not JSON ({err})")
    else:
        print("  note  no main.nf.test.snap committed: the first nf-test run writes it (see tests/main.nf.test)")


def static_pipeline() -> None:
    print("[static] pipeline")
    main, config = (NF / "main.nf").read_text(), (NF / "nextflow.config").read_text()
    for cmd in COMMANDS:
        inc = re.search(rf"include\s*\{{\s*GENOMAMBA_{cmd.upper()}\s*\}}\s*from\s*'\./(\S+)'", main)
        check(bool(inc) and (NF / f"{inc.group(1)}.nf").exists(), f"main.nf: includes the {cmd} module")
        try:
            publish = config_with_name(config, f"GENOMAMBA_{cmd.upper()}").get("publish_path", "")
        except GroovyError:
            publish = ""
        check(f"/{cmd}/${{meta.partition}}" in publish, f"nextflow.config: {cmd} publishes to <outdir>/{cmd}/chrom=...")
    # score: one job per VCF, published unsharded as <outdir>/score/<meta.id>.parquet
    inc = re.search(r"include\s*\{\s*GENOMAMBA_SCORE\s*\}\s*from\s*'\./(\S+)'", main)
    check(bool(inc) and (NF / f"{inc.group(1)}.nf").exists(), "main.nf: includes the score module")
    try:
        score_cfg = config_with_name(config, "GENOMAMBA_SCORE")
    except GroovyError:
        score_cfg = {}
    check(score_cfg.get("publish_path") == '"${params.outdir}/score"' and "ext.prefix" not in score_cfg,
          "nextflow.config: score publishes <outdir>/score/<meta.id>.parquet")
    check("vcf" in config_params(config) and "params.vcf" in main, "nextflow.config and main.nf: params.vcf")
    allowed = re.search(r"params\.command\s+in\s+\[([^\]]*)\]", main)
    allowed = re.findall(r"'(\w+)'", allowed.group(1)) if allowed else []
    message = re.search(r'error\s+"--command must be ([^"]*)"', main)
    check(sorted(allowed) == sorted(MODULES) and bool(message)
          and all(re.search(rf"\b{c}\b", message.group(1)) for c in MODULES),
          f"main.nf: --command allows {allowed} and its error message lists them")
    check("process GENOMAMBA_REGIONS" in main and "genomamba regions" in main, "main.nf: regions runs as a process")
    check("channel.topic('versions')" in main, "main.nf: collects the versions topic")
    profiles = re.search(r"^profiles\s*\{(.*)^\}", config, re.S | re.M)
    for profile in ("standard", "gpu", "slurm"):
        check(bool(profiles) and re.search(rf"^    {profile}\s*\{{", profiles.group(1), re.M) is not None,
              f"nextflow.config: profile {profile}")
    check("accelerator" in config and "ext.use_gpu" in config, "nextflow.config: process_gpu sets accelerator/ext.use_gpu")
    check((NF / "README.md").exists() and (NF / "nf-test.config").exists(), "README.md and nf-test.config exist")


# ---------------------------------------------------------------------------------------------------------------
# (b) dynamic checks


def run_task(workdir: Path, label: str, script: str, staged: list[Path], path_env: str,
             expect_failure: bool = False) -> Path | None:
    """Like a Nextflow task: a fresh folder, inputs staged as symlinks, bash -euo pipefail .command.sh. With
    `expect_failure`, the task must fail (its folder is returned then)."""
    task = workdir / "work" / label
    task.mkdir(parents=True)
    for f in staged:
        (task / f.name).symlink_to(f)
    (task / ".command.sh").write_text("#!/bin/bash -euo pipefail\n" + script)
    proc = subprocess.run(["bash", "-euo", "pipefail", ".command.sh"], cwd=task, capture_output=True, text=True,
                          env=os.environ | {"PATH": path_env})
    if expect_failure:
        return task if check(proc.returncode != 0, f"task {label} fails") else None
    if not check(proc.returncode == 0, f"task {label} exits 0"):
        print(f"        script:\n{script}\n        stderr: {proc.stderr.strip()[-2000:]}")
        return None
    return task


def eval_version(task: Path, command: str, path_env: str) -> str:
    proc = subprocess.run(["bash", "-c", command], cwd=task, capture_output=True, text=True,
                          env=os.environ | {"PATH": path_env})
    return proc.stdout.strip() if proc.returncode == 0 else ""


def explain_difference(a, b) -> str:
    if a.num_rows != b.num_rows:
        return f"{a.num_rows} rows vs {b.num_rows}"
    if a.schema != b.schema:
        return f"schema {a.schema} vs {b.schema}"
    differ, columns = set(), set()
    for name in a.column_names:
        for row, (u, v) in enumerate(zip(a[name].to_pylist(), b[name].to_pylist())):
            if u != v:
                differ.add(row)
                columns.add(name)
    if not differ:
        return "equal values, different layout"
    first = min(differ)
    pos = "start" if "start" in a.column_names else "pos"
    where = f"{a['chrom'][first]}:{a[pos][first]}" if "chrom" in a.column_names else f"row {first}"
    return f"{len(differ)} of {a.num_rows} rows differ (columns {sorted(columns)}), first at {where}"


def index_fasta(fasta: Path) -> Path | None:
    """Writes <fasta>.fai beside a copy of a data/ FASTA: samtools faidx, else the index data/make.sh derived."""
    fai = fasta.with_name(fasta.name + ".fai")
    derived = ROOT / "data" / "derived" / fai.name
    if shutil.which("samtools"):
        subprocess.run(["samtools", "faidx", str(fasta)], check=True)
    elif derived.exists():
        shutil.copyfile(derived, fai)
    else:
        check(False, f"need samtools (or data/derived/{fai.name} from data/make.sh) for the .fai")
        return None
    return fai


def dynamic(binary: Path, workdir: Path) -> None:
    bindir = workdir / "bin"
    bindir.mkdir()
    (bindir / "genomamba").symlink_to(binary)
    path_env = f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}"
    full_version = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout.strip()
    check(re.fullmatch(r"genomamba \d+\.\d+\.\d+\S*", full_version) is not None,
          f"genomamba --version is one parseable line: {full_version!r}")
    config = (NF / "nextflow.config").read_text()
    params = config_params(config) | {"window": WINDOW, "shard_bases": SHARD_BASES, "pool": POOL,
                                      "outdir": str(workdir / "results")}
    use_gpu = os.environ.get("GENOMAMBA_CHECK_GPU") == "1"
    dynamic_sharded(workdir, path_env, full_version, config, params, use_gpu)
    dynamic_score(binary, workdir, path_env, full_version, config, params, use_gpu)


def dynamic_sharded(workdir: Path, path_env: str, full_version: str, config: str, params: dict,
                    use_gpu: bool) -> None:
    """predict and embed: the pipeline's shards through the module templates, gathered, against one whole run."""
    import pyarrow.parquet as pq

    inputs = workdir / "inputs"
    inputs.mkdir()
    fasta = inputs / "mixed.fa"
    shutil.copyfile(ROOT / "data" / "mixed.fa", fasta)
    fai = index_fasta(fasta)
    if fai is None:
        return
    lengths = {line.split("\t")[0]: int(line.split("\t")[1]) for line in fai.read_text().splitlines()}

    print("[dynamic] GENOMAMBA_REGIONS (pipeline main.nf)")
    regions = sections(process_body((NF / "main.nf").read_text(), "GENOMAMBA_REGIONS"))
    env = {"params": params, "meta": {"id": "mixed"}, "fasta": fasta.name, "fai": fai.name, "model": [],
           "task": {"process": "GENOMAMBA_REGIONS", "cpus": 1, "ext": {}}}
    # With no --window the shards follow the model's own window (the embedded model's: 1 Mi bases, so one shard per
    # record here), and the jobs are given no --window or --overlap either.
    defaults = params | {k: config_params(config)[k] for k in ("window", "overlap", "shard_bases")} | {"command": "embed"}
    check(defaults["window"] is None and defaults["overlap"] is None,
          "nextflow.config: window and overlap default to null (the model's own)")
    script = template(regions["script"], env | {"params": defaults})
    check("--window" not in script and f"--pool {params['pool']}" in script,
          "regions: no --window without params.window; embed's --pool checked against the window")
    task = run_task(workdir, "regions-defaults", script, [fasta, fai], path_env)
    if task is not None:
        starts = [line.split("\t")[1] for line in (task / "shards.bed").read_text().splitlines()]
        check(starts == ["0"] * len(lengths), f"regions: the model's window, one shard per record: {starts}")
    for cmd in COMMANDS:
        args = eval_expr(config_with_name(config, f"GENOMAMBA_{cmd.upper()}")["ext.args"], {"params": defaults})
        check("--window" not in args and "--overlap" not in args,
              f"{cmd}: ext.args pass no --window or --overlap when the params are null: {args.split()}")
    script = template(regions["script"], env | {"params": params | {"command": "embed", "pool": 1000}})
    task = run_task(workdir, "regions-pool", script, [fasta, fai], path_env, expect_failure=True)
    check(task is not None and not (task / "shards.bed").exists(),
          "regions: a pool that does not divide the window stops the shard plan")
    for kind in ("stub", "script"):
        task = run_task(workdir, f"regions-{kind}", template(regions[kind], env), [fasta, fai], path_env)
        if task is None:
            return
        check((task / "shards.bed").exists() and len(glob.glob(str(task / "shards" / "*.bed"))) > 0,
              f"regions {kind}: shards.bed and shards/*.bed exist")
    # As the pipeline's map: one job per shard BED, its 4th column chrom=<name>/part-<k>
    shards = []
    for bed in sorted((task / "shards").glob("*.bed")):
        fields = bed.read_text().strip().split("\t")
        partition, part = fields[3].split("/")
        shards.append((bed, partition, part, fields))
    check(len(shards) == len((task / "shards.bed").read_text().splitlines()) and len(shards) > len(lengths),
          f"regions: {len(shards)} shards over {len(lengths)} records, long records split")
    check(all(int(f[1]) % WINDOW == 0 for _, _, _, f in shards), f"regions: every shard starts on a multiple of {WINDOW}")
    check({urllib.parse.unquote(p.split("=", 1)[1]) for _, p, _, _ in shards} == set(lengths),
          "regions: partitions cover every record")

    for cmd in COMMANDS:
        name = f"GENOMAMBA_{cmd.upper()}"
        print(f"[dynamic] {name}")
        src = (NF / "modules" / "genomamba" / cmd / "main.nf").read_text()
        sec = sections(process_body(src, name))
        outs = {c["emit"]: c for c in parse_channels(sec["output"])}
        out_glob = outs["parquet"]["elements"][1][1]
        version_cmd = outs["versions_genomamba"]["elements"][2][1]
        cfg = config_with_name(config, name)
        args = eval_expr(cfg["ext.args"], {"params": params})

        def task_env(meta, bed):
            ext = {"args": args, "use_gpu": use_gpu, "when": None}
            if bed:  # the pipeline's ext.prefix applies to shards; the un-sharded run uses the default meta.id
                ext["prefix"] = eval_expr(cfg["ext.prefix"], {"meta": meta, "params": params})
            return {"meta": meta, "meta2": {"id": "x"}, "fasta": fasta.name, "fai": fai.name,
                    "region_bed": bed.name if bed else [], "model": [], "params": params,
                    "task": {"process": name, "cpus": CPUS, "ext": ext}}

        # stub: the declared outputs exist, the versions eval parses
        bed, partition, part, _ = shards[0]
        meta = {"id": f"mixed.{partition}.{part}", "genome": "mixed", "partition": partition, "part": part}
        task = run_task(workdir, f"{cmd}-stub", template(sec["stub"], task_env(meta, bed)), [fasta, fai, bed], path_env)
        if task:
            made = sorted(Path(p).name for p in glob.glob(str(task / out_glob)))
            check(made == [f"{part}.parquet"], f"{cmd} stub: creates {part}.parquet matching {out_glob!r}: {made}")
            version = eval_version(task, version_cmd, path_env)
            check(re.fullmatch(r"\d+\.\d+\.\d+\S*", version) is not None and full_version.endswith(version),
                  f"{cmd} stub: versions eval gives {version!r}")

        # script, per shard, published as the config's publishDir would
        published = []
        for bed, partition, part, _ in shards:
            meta = {"id": f"mixed.{partition}.{part}", "genome": "mixed", "partition": partition, "part": part}
            env = task_env(meta, bed)
            task = run_task(workdir, f"{cmd}-{partition}-{part}", template(sec["script"], env), [fasta, fai, bed],
                            path_env)
            if task is None:
                return
            made = [Path(p) for p in glob.glob(str(task / out_glob))]
            if not check(len(made) == 1, f"{cmd} {partition}/{part}: one output matching {out_glob!r}"):
                return
            dest = Path(gstring(cfg["publish_path"][1:-1], {"params": params, "meta": meta}))
            dest.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(made[0], dest / made[0].name)
            published.append(dest / made[0].name)
        hive = sorted(str(p.relative_to(workdir / "results")) for p in published)
        check(all(re.fullmatch(rf"{cmd}/chrom=[^/]+/part-\d{{5}}\.parquet", h) for h in hive),
              f"{cmd}: published as {cmd}/chrom=<name>/part-<k>.parquet ({len(hive)} files)")
        version = eval_version(task, version_cmd, path_env)
        check(full_version.endswith(version) and version != "", f"{cmd}: versions eval gives {version!r}")

        # one un-sharded run through the same template
        task = run_task(workdir, f"{cmd}-whole", template(sec["script"], task_env({"id": "mixed"}, None)),
                        [fasta, fai], path_env)
        if task is None:
            return
        whole = task / "mixed.parquet"
        if not check(whole.exists(), f"{cmd} whole: mixed.parquet (prefix defaults to meta.id)"):
            return
        import pyarrow as pa

        gathered = normalise(pa.concat_tables([pq.read_table(p) for p in published], promote_options="none"))
        single = normalise(pq.read_table(whole))
        for path in published:
            chroms = set(pq.read_table(path, columns=["chrom"])["chrom"].to_pylist())
            encoded = path.parent.name.split("=", 1)[1]
            if not check(chroms == {urllib.parse.unquote(encoded)}, f"{cmd}: {path.parent.name} holds only that chrom"):
                break
        if cmd == "predict":
            check(single.num_rows == sum(lengths.values()), f"predict whole: one row per base ({single.num_rows})")
        same = gathered.equals(single)
        check(same, f"{cmd}: gathered shards equal the un-sharded run ({gathered.num_rows} rows)"
              + ("" if same else f": {explain_difference(gathered, single)}"))
        snakemake_results = os.environ.get("GENOMAMBA_SNAKEMAKE_RESULTS")
        if snakemake_results:
            parts = sorted(Path(snakemake_results, "mixed", cmd).glob("chrom=*/part-*.parquet"))
            order = {name: i for i, name in enumerate(lengths)}
            smk = normalise(pa.concat_tables([pq.read_table(p) for p in parts]))
            rows = sorted(range(smk.num_rows), key=lambda i: (order[smk["chrom"][i].as_py()], smk["start"][i].as_py()))
            smk = smk.take(pa.array(rows))
            same = smk.equals(gathered)
            check(same, f"{cmd}: the Nextflow shards equal the Snakemake workflow's dataset ({len(parts)} files)"
                  + ("" if same else f": {explain_difference(gathered, smk)}"))
        try:
            import duckdb

            glob_path = str(workdir / "results" / cmd / "*" / "*.parquet")
            n = duckdb.connect().execute(f"SELECT count(*) FROM read_parquet('{glob_path}')").fetchall()[0][0]
            check(n == single.num_rows, f"{cmd}: DuckDB reads the Hive folder as one table ({n} rows)")
        except ImportError:
            print("  note  duckdb not installed: skipped the DuckDB read")

def score_metadata(path: Path) -> dict:
    import pyarrow.parquet as pq

    return json.loads(pq.ParquetFile(path).metadata.metadata[b"genomamba"])


def dynamic_score(binary: Path, workdir: Path, path_env: str, full_version: str, config: str, params: dict,
                  use_gpu: bool) -> None:
    """score: the module template on the bundled calls (VCF and BCF, with and without the .fai) against one direct
    `genomamba score` run of the same command."""
    import gzip

    import pyarrow.parquet as pq

    name = "GENOMAMBA_SCORE"
    print(f"[dynamic] {name}")
    sec = sections(process_body((NF / "modules" / "genomamba" / "score" / "main.nf").read_text(), name))
    outs = {c["emit"]: c for c in parse_channels(sec["output"])}
    out_glob = outs["parquet"]["elements"][1][1]
    version_cmd = outs["versions_genomamba"]["elements"][2][1]
    cfg = config_with_name(config, name)
    args = eval_expr(cfg["ext.args"], {"params": params})
    device = "cuda" if use_gpu else "cpu"

    # The reference the calls were made against (data/call.sh). Its .fai goes to a folder of its own, so a task
    # sees an index only where the template stages one beside the FASTA (never one beside a symlink's target).
    reference = workdir / "inputs" / "lambda"
    reference.mkdir(parents=True)
    fasta = reference / "lambda_virus.fa"
    shutil.copyfile(ROOT / "data" / "genomes" / "lambda_virus.fa", fasta)
    made = index_fasta(fasta)
    if made is None:
        return
    fai = workdir / "inputs" / "lambda_index" / made.name
    fai.parent.mkdir()
    made.rename(fai)
    vcf = ROOT / "data" / "variants" / "lambda_calls.vcf.gz"
    bcf = ROOT / "data" / "variants" / "lambda_calls.bcf"

    # The nf-test writes lambda_virus.fa's .fai itself (data/genomes/ has none committed): it must be the real one.
    test = (NF / "modules" / "genomamba" / "score" / "tests" / "main.nf.test").read_text()
    line = re.search(r'fai\.text = "(.*)"', test)
    written = line.group(1).replace("\\\\t", "\t").replace("\\\\n", "\n") if line else None
    check(written == fai.read_text(),
          f"score tests/main.nf.test: the .fai it writes equals samtools faidx's: {written!r}")

    # What the VCF holds: one row per record and ALT allele; the SNVs are the rows scored.
    alleles = snvs = 0
    with gzip.open(vcf, "rt") as f:
        for record in f:
            if not record.startswith("#"):
                ref, alts = record.split("\t")[3:5]
                alleles += len(alts.split(","))
                snvs += sum(len(ref) == 1 and len(alt) == 1 and alt in "ACGT" for alt in alts.split(","))

    def task_env(meta, variants, index):
        ext = {"args": args, "use_gpu": use_gpu, "when": None}
        if "ext.prefix" in cfg:
            ext["prefix"] = eval_expr(cfg["ext.prefix"], {"meta": meta, "params": params})
        return {"meta": meta, "meta2": {"id": "lambda_virus"}, "vcf": variants.name, "fasta": fasta.name,
                "fai": index.name if index else [], "model": [], "params": params,
                "task": {"process": name, "cpus": CPUS, "ext": ext}}

    # The pipeline's meta.id is the VCF's simpleName (its name up to the first dot).
    meta = {"id": vcf.name.split(".")[0]}
    task = run_task(workdir, "score-stub", template(sec["stub"], task_env(meta, vcf, fai)), [vcf, fasta, fai], path_env)
    if task:
        made = sorted(Path(p).name for p in glob.glob(str(task / out_glob)))
        check(made == [f"{meta['id']}.parquet"],
              f"score stub: creates {meta['id']}.parquet matching {out_glob!r}: {made}")
        stubbed = sorted(Path(p).name for c in ("vcf", "tbi")
                         for p in glob.glob(str(task / outs[c]["elements"][1][1])))
        check(stubbed == [f"{meta['id']}.genomamba.vcf.gz", f"{meta['id']}.genomamba.vcf.gz.tbi"],
              f"score stub: creates the vcf and tbi outputs: {stubbed}")
        version = eval_version(task, version_cmd, path_env)
        check(re.fullmatch(r"\d+\.\d+\.\d+\S*", version) is not None and full_version.endswith(version),
              f"score stub: versions eval gives {version!r}")

    # The direct run: the same command by hand, in a folder holding the same names as the task folders, so that the
    # metadata's paths match too and only its command line differs.
    direct = workdir / "work" / "score-direct"
    direct.mkdir(parents=True)
    for f in (vcf, fasta, fai):
        (direct / f.name).symlink_to(f)
    command = [str(binary), "score", "--vcf", vcf.name, "--reference", fasta.name, *args.split(), "--device", device,
               "--threads", str(CPUS), "-o", "direct.parquet"]
    proc = subprocess.run(command, cwd=direct, capture_output=True, text=True)
    if not check(proc.returncode == 0, f"score direct: {' '.join(command[1:])} exits 0"):
        print(f"        stderr: {proc.stderr.strip()[-2000:]}")
        return
    want = normalise(pq.read_table(direct / "direct.parquet"))
    want_meta = score_metadata(direct / "direct.parquet")
    check(want.num_rows == alleles and want["status"].to_pylist().count("ok") == snvs,
          f"score direct: one row per ALT allele ({want.num_rows} of {alleles}), every SNV scored ({snvs})")

    # The template on: the bgzip VCF with the .fai (as the pipeline runs it), the same without the .fai (`[]`), and
    # the same calls as BCF. Each must give the direct run's rows; the metadata says how the reference was read.
    cases = [("vcf", vcf, fai, "windows holding sites"), ("vcf-nofai", vcf, None, "whole records"),
             ("bcf", bcf, fai, "windows holding sites")]
    for label, variants, index, read in cases:
        meta = {"id": variants.name.split(".")[0]}
        staged = [variants, fasta] + ([index] if index else [])
        task = run_task(workdir, f"score-{label}", template(sec["script"], task_env(meta, variants, index)), staged,
                        path_env)
        if task is None:
            return
        made = [Path(p) for p in glob.glob(str(task / out_glob))]
        if not check([p.name for p in made] == [f"{meta['id']}.parquet"],
                     f"score {label}: one output, {meta['id']}.parquet (prefix defaults to meta.id)"):
            return
        got = normalise(pq.read_table(made[0]))
        same = got.equals(want)
        check(same, f"score {label}: the template's rows equal the direct run's ({got.num_rows} rows)"
              + ("" if same else f": {explain_difference(got, want)}"))
        # The annotated VCF and its index, as the vcf and tbi channels find them: the table's scores, per allele.
        vcfs = [Path(p) for p in glob.glob(str(task / outs["vcf"]["elements"][1][1]))]
        tbis = [Path(p).name for p in glob.glob(str(task / outs["tbi"]["elements"][1][1]))]
        vcf_name = f"{meta['id']}.genomamba.vcf.gz"
        if check([p.name for p in vcfs] == [vcf_name] and tbis == [f"{vcf_name}.tbi"],
                 f"score {label}: emits {vcf_name} and its .tbi"):
            scores = annotated_scores(vcfs[0])
            check(scores == got["score"].to_pylist(),
                  f"score {label}: the VCF's GENOMAMBA_SCORE values are the table's ({len(scores)} alleles)")
        got_meta = score_metadata(made[0])
        reference_read = got_meta.get("variants", {}).get("reference_read", "")
        check(reference_read.startswith(read), f"score {label}: genomamba read {reference_read!r}")
        if label == "vcf":
            # Everything the metadata records but the command line (--threads, --quiet, option order) is the same.
            # The template also writes the annotated VCF, which the direct run does not: the metadata names it.
            vcf_named = got_meta.get("variants", {}).pop("output_vcf", None)
            check(vcf_named == vcf_name, f"score {label}: the metadata names the VCF ({vcf_named})")
            want_meta.get("variants", {}).pop("output_vcf", None)
            differ = sorted(k for k in set(got_meta) | set(want_meta)
                            if k != "command_line" and got_meta.get(k) != want_meta.get(k))
            check(not differ, f"score {label}: metadata equals the direct run's but for command_line and the VCF out"
                  + (f" (differs: {differ})" if differ else ""))
            version = eval_version(task, version_cmd, path_env)
            check(full_version.endswith(version) and version != "", f"score: versions eval gives {version!r}")
            # Published as the pipeline's publishDir says, and read back as a table.
            dest = Path(gstring(cfg["publish_path"][1:-1], {"params": params, "meta": meta}))
            dest.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(made[0], dest / made[0].name)
            published = str((dest / made[0].name).relative_to(workdir / "results"))
            check(published == f"score/{meta['id']}.parquet", f"score: published as {published}")
            # The publishDir pattern (`*.{a,b}`, Nextflow's glob) takes the table, the VCF and its index.
            pattern = cfg.get("publish_pattern", "")
            braces = re.fullmatch(r"\*\.\{([^}]*)\}", pattern)
            globs = [f"*.{e}" for e in braces.group(1).split(",")] if braces else [pattern]
            outputs = [made[0].name, *(p.name for p in vcfs), *tbis]
            check(len(outputs) == 3 and all(any(fnmatch.fnmatch(o, g) for g in globs) for o in outputs),
                  f"score: the publishDir pattern {pattern!r} takes {outputs}")
            try:
                import duckdb

                n = duckdb.connect().execute(f"SELECT count(*) FROM read_parquet('{dest / made[0].name}')").fetchall()
                check(n[0][0] == want.num_rows, f"score: DuckDB reads the published file ({n[0][0]} rows)")
            except ImportError:
                print("  note  duckdb not installed: skipped the DuckDB read")


def main() -> int:
    try:
        import pyarrow  # noqa: F401
        import yaml  # noqa: F401
    except ImportError as err:
        print(f"check_nextflow: needs pyarrow and pyyaml ({err}); use the test venv (tests/requirements.txt)")
        return 1
    for cmd in MODULES:
        static_module(cmd)
    static_pipeline()
    binary = find_binary()
    if not check(binary is not None and binary.exists(), f"genomamba binary found ({binary})"):
        print("build it with `cargo build --release`, or set GENOMAMBA_BIN")
    else:
        workdir = Path(tempfile.mkdtemp(prefix="check_nextflow."))
        try:
            dynamic(binary, workdir)
        except GroovyError as err:
            check(False, f"template evaluation: {err}")
        finally:
            if os.environ.get("GENOMAMBA_CHECK_KEEP") == "1":
                print(f"kept {workdir}")
            else:
                shutil.rmtree(workdir, ignore_errors=True)
    print()
    if failures:
        print(f"check_nextflow: {len(failures)} check(s) failed:")
        for what in failures:
            print(f"  - {what}")
        return 1
    print("check_nextflow: all checks passed (Nextflow itself was not run)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
