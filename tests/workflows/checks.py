"""What the workflow checks share: a check recorder, the binary to test, and table normalisation."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

failures: list[str] = []


def check(ok: bool, what: str) -> bool:
    """Prints `ok` or `FAIL` before `what`, records a failure, and returns `ok`."""
    print(("  ok    " if ok else "  FAIL  ") + what)
    if not ok:
        failures.append(what)
    return ok


def find_binary() -> Path | None:
    """$GENOMAMBA_BIN, else target/release or target/debug, else `genomamba` on PATH."""
    if os.environ.get("GENOMAMBA_BIN"):
        return Path(os.environ["GENOMAMBA_BIN"]).resolve()
    for build in ("release", "debug"):
        if (ROOT / "target" / build / "genomamba").exists():
            return ROOT / "target" / build / "genomamba"
    found = shutil.which("genomamba")
    return Path(found) if found else None


def normalise(table):
    """Dictionary columns decoded and chunks combined, so tables compare by value."""
    import pyarrow as pa

    cols = [c.cast(c.type.value_type) if pa.types.is_dictionary(c.type) else c for c in table.columns]
    return pa.table(cols, names=table.column_names).combine_chunks()


def annotated_scores(vcf: Path) -> list:
    """GENOMAMBA_SCORE of each ALT allele of a VCF written by `score --output-vcf`, in order, as float32 values
    (None for `.` or a record without the field), as the table holds them."""
    import gzip

    import numpy as np

    scores = []
    with gzip.open(vcf, "rt") as f:
        for line in f:
            if line.startswith("#"):
                continue
            columns = line.rstrip("\n").split("\t")
            alts = columns[4].split(",")
            info = dict(e.split("=", 1) if "=" in e else (e, "") for e in columns[7].split(";"))
            values = info.get("GENOMAMBA_SCORE", ",".join("." for _ in alts)).split(",")
            scores += [None if v == "." else float(np.float32(v)) for v in values]
    return scores
