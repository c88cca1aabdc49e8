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
