#!/usr/bin/env python3
"""Check a genomamba Parquet file with pyarrow, Polars, DuckDB and pandas.

Each reader must see the same table: column names and types, the fixed embedding size, the `genomamba`
key-value metadata entry (JSON with schema_version and table; pandas has no reader of it), the row count, for predictions that
p_a + p_c + p_g + p_t = 1 (within 1e-5) wherever they are not null, and for variants that exactly the rows of
status ok have a score, and that it is logp_alt - logp_ref. With --lengths, every sequence named in the
JSON object {name: length} must be covered exactly: per-base tables have one row per base 0..length, binned
tables have contiguous bins from 0 to length.

Usage:
  check_parquet.py FILE --table embeddings|predictions|variants [--rows N] [--dim D] [--dtype f32|f16]
                   [--keys contig|read|aligned] [--lengths LENGTHS.json]

Exit status 0 when every check passes, 1 otherwise (each failure is printed), 2 on a usage error.
"""

import argparse
import json
import sys

# Column kinds per table; the key column and alignment columns are added by columns().
OWN = {
    "embeddings": [("start", "i64"), ("end", "i64"), ("n_frac", "f32"), ("embedding", "emb")],
    "predictions": [("start", "i64"), ("end", "i64"), ("ref", "str"), ("p_a", "f32"), ("p_c", "f32"),
                    ("p_g", "f32"), ("p_t", "f32"), ("entropy", "f32"), ("logp_ref", "f32")],
    "variants": [("pos", "i64"), ("id", "str"), ("ref", "str"), ("alt", "str"), ("score", "f32"),
                 ("logp_ref", "f32"), ("logp_alt", "f32"), ("status", "dict")],
}
ALIGNMENT = [("ref_name", "str"), ("ref_start", "i64"), ("strand", "str"), ("mapq", "u8"), ("flag", "u16")]
PROBS = ["p_a", "p_c", "p_g", "p_t"]


def columns(table, keys):
    key = [("chrom", "dict")] if keys == "contig" or table == "variants" else [("read_name", "str")]
    extra = ALIGNMENT if keys == "aligned" and table != "variants" else []
    return key + OWN[table] + extra


class Checker:
    def __init__(self, args):
        self.args = args
        self.failures = []
        self.cols = columns(args.table, args.keys)
        self.key = self.cols[0][0]

    def check(self, reader, ok, what):
        if not ok:
            self.failures.append(f"{reader}: {what}")

    def check_meta(self, reader, raw):
        if raw is None:
            self.check(reader, False, "no 'genomamba' key-value metadata")
            return
        try:
            meta = json.loads(raw)
        except ValueError as e:
            self.check(reader, False, f"'genomamba' metadata is not JSON: {e}")
            return
        self.check(reader, isinstance(meta.get("schema_version"), int), "metadata lacks an integer schema_version")
        self.check(reader, meta.get("table") == self.args.table,
                   f"metadata table {meta.get('table')!r} != {self.args.table!r}")

    def check_rows(self, reader, n):
        if self.args.rows is not None:
            self.check(reader, n == self.args.rows, f"{n} rows, expected {self.args.rows}")

    def check_coverage(self, reader, per_seq):
        """per_seq: {name: (rows, min_start, max_end, covered_bases, gaps_or_overlaps)}."""
        if not self.args.lengths:
            return
        with open(self.args.lengths) as f:
            lengths = json.load(f)
        for name, length in lengths.items():
            got = per_seq.get(name)
            if got is None:
                self.check(reader, False, f"sequence {name} has no rows")
                continue
            rows, lo, hi, covered, breaks = got
            self.check(reader, (lo, hi, covered, breaks) == (0, length, length, 0),
                       f"{name}: rows cover [{lo}, {hi}) with {covered} bases and {breaks} gaps/overlaps, "
                       f"expected [0, {length}) exactly")
            if self.args.table == "predictions":
                self.check(reader, rows == length, f"{name}: {rows} rows, expected {length}")
        extra = set(per_seq) - set(lengths)
        self.check(reader, not extra, f"rows for sequences not in --lengths: {sorted(extra)}")

    # pyarrow -----------------------------------------------------------------------------------------------
    def run_pyarrow(self):
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        r = "pyarrow"
        elem = pa.float16() if self.args.dtype == "f16" else pa.float32()
        want = {"i64": pa.int64(), "f32": pa.float32(), "str": pa.string(), "u8": pa.uint8(),
                "u16": pa.uint16(), "dict": pa.dictionary(pa.int32(), pa.string())}
        t = pq.read_table(self.args.file)
        self.check(r, t.column_names == [c for c, _ in self.cols], f"columns {t.column_names}")
        for name, kind in self.cols:
            if name not in t.column_names:
                continue
            typ = t.schema.field(name).type
            if kind == "emb":
                ok = pa.types.is_fixed_size_list(typ) and typ.value_type == elem
                if self.args.dim is not None:
                    ok = ok and typ.list_size == self.args.dim
                self.check(r, ok, f"embedding type {typ}, expected fixed_size_list<{elem}>[{self.args.dim}]")
                self.check(r, t.column(name).null_count == 0, "null embeddings")
            else:
                self.check(r, typ == want[kind], f"{name}: type {typ}, expected {want[kind]}")
        self.check_meta(r, (pq.read_metadata(self.args.file).metadata or {}).get(b"genomamba"))
        self.check_rows(r, t.num_rows)
        if self.args.table == "predictions":
            total = pc.add(pc.add(t["p_a"], t["p_c"]), pc.add(t["p_g"], t["p_t"])).cast(pa.float64())
            bad = pc.sum(pc.greater(pc.abs(pc.subtract(total, 1.0)), 1e-5)).as_py() or 0
            self.check(r, bad == 0, f"{bad} rows with p_a+p_c+p_g+p_t != 1")
            nulls = {c: t[c].null_count for c in PROBS}
            self.check(r, len(set(nulls.values())) == 1, f"probability null counts differ: {nulls}")
        if self.args.lengths and self.args.table != "variants":
            keys = t[self.key].cast(pa.string()).to_pylist()
            self.check_coverage(r, coverage(zip(keys, t["start"].to_pylist(), t["end"].to_pylist())))

    # Polars ------------------------------------------------------------------------------------------------
    def run_polars(self):
        import polars as pl

        r = "polars"
        elem = pl.Float16 if self.args.dtype == "f16" else pl.Float32
        want = {"i64": pl.Int64, "f32": pl.Float32, "str": pl.String, "u8": pl.UInt8, "u16": pl.UInt16}
        df = pl.read_parquet(self.args.file)
        self.check(r, df.columns == [c for c, _ in self.cols], f"columns {df.columns}")
        for name, kind in self.cols:
            if name not in df.columns:
                continue
            typ = df.schema[name]
            if kind == "emb":
                ok = isinstance(typ, pl.Array) and typ.inner == elem
                if self.args.dim is not None:
                    ok = ok and typ.size == self.args.dim
                self.check(r, ok, f"embedding type {typ}, expected Array({elem}, {self.args.dim})")
                self.check(r, df[name].null_count() == 0, "null embeddings")
            elif kind == "dict":
                self.check(r, typ in (pl.Categorical, pl.String) or isinstance(typ, (pl.Categorical, pl.Enum)),
                           f"{name}: type {typ}, expected Categorical")
            else:
                self.check(r, typ == want[kind], f"{name}: type {typ}, expected {want[kind]}")
        self.check_meta(r, pl.read_parquet_metadata(self.args.file).get("genomamba"))
        self.check_rows(r, df.height)
        if self.args.table == "predictions":
            total = (pl.col("p_a") + pl.col("p_c") + pl.col("p_g") + pl.col("p_t")).cast(pl.Float64)
            bad = df.select(((total - 1.0).abs() > 1e-5).sum()).item()
            self.check(r, bad == 0, f"{bad} rows with p_a+p_c+p_g+p_t != 1")
        if self.args.lengths and self.args.table != "variants":
            keys = df[self.key].cast(pl.String).to_list()
            self.check_coverage(r, coverage(zip(keys, df["start"].to_list(), df["end"].to_list())))

    # pandas ------------------------------------------------------------------------------------------------
    def run_pandas(self):
        import numpy as np
        import pandas as pd

        r = "pandas"
        elem = np.float16 if self.args.dtype == "f16" else np.float32
        df = pd.read_parquet(self.args.file)
        self.check(r, list(df.columns) == [c for c, _ in self.cols], f"columns {list(df.columns)}")
        for name, kind in self.cols:
            if name not in df.columns:
                continue
            typ = df[name].dtype
            if kind == "emb":
                values = df[name]
                ok = all(isinstance(v, np.ndarray) and v.dtype == elem and
                         (self.args.dim is None or v.shape == (self.args.dim,)) for v in values)
                self.check(r, ok, f"embeddings are not {elem.__name__} arrays of length {self.args.dim}")
                self.check(r, values.isna().sum() == 0, "null embeddings")
            elif kind == "dict":
                self.check(r, isinstance(typ, pd.CategoricalDtype), f"{name}: type {typ}, expected category")
            elif kind == "str":
                self.check(r, pd.api.types.is_string_dtype(typ), f"{name}: type {typ}, expected strings")
            elif kind in ("i64", "u8", "u16"):
                # pandas turns an integer column that holds nulls (ref_start and mapq of unmapped reads) into
                # float64; dtype_backend="pyarrow" keeps it integer.
                want = np.dtype({"i64": "int64", "u8": "uint8", "u16": "uint16"}[kind])
                ok = typ == want or (typ == np.float64 and df[name].isna().any())
                self.check(r, ok, f"{name}: type {typ}, expected {want} (float64 with nulls)")
                kept = pd.read_parquet(self.args.file, columns=[name], dtype_backend="pyarrow")[name].dtype
                self.check(r, str(kept) == f"{want}[pyarrow]", f"{name}: pyarrow backend type {kept}")
            else:
                self.check(r, typ == np.float32, f"{name}: type {typ}, expected float32")
        self.check_rows(r, len(df))
        if self.args.table == "predictions":
            total = df[PROBS].astype("float64").sum(axis=1, min_count=4)
            bad = int(((total - 1.0).abs() > 1e-5).sum())
            self.check(r, bad == 0, f"{bad} rows with p_a+p_c+p_g+p_t != 1")
        if self.args.lengths and self.args.table != "variants":
            keys = df[self.key].astype(str).tolist()
            self.check_coverage(r, coverage(zip(keys, df["start"].tolist(), df["end"].tolist())))

    # DuckDB ------------------------------------------------------------------------------------------------
    def run_duckdb(self):
        import duckdb

        r = "duckdb"
        con = duckdb.connect()
        src = "read_parquet($f)"
        p = {"f": self.args.file}
        want = {"i64": "BIGINT", "f32": "FLOAT", "str": "VARCHAR", "u8": "UTINYINT", "u16": "USMALLINT",
                "dict": "VARCHAR", "emb": "FLOAT[]"}
        desc = con.execute(f"DESCRIBE SELECT * FROM {src}", p).fetchall()
        names = [d[0] for d in desc]
        types = {d[0]: d[1] for d in desc}
        self.check(r, names == [c for c, _ in self.cols], f"columns {names}")
        for name, kind in self.cols:
            if name in types:
                self.check(r, types[name] == want[kind], f"{name}: type {types[name]}, expected {want[kind]}")
        if "embedding" in types and self.args.dim is not None:
            d = int(self.args.dim)
            bad = con.execute(
                f"SELECT count(*) FILTER (WHERE embedding IS NULL OR len(embedding) != {d}) FROM {src}", p
            ).fetchone()[0]
            self.check(r, bad == 0, f"{bad} embeddings are null or not of length {d}")
            typ = con.execute(f"SELECT typeof(embedding::FLOAT[{d}]) FROM {src} LIMIT 1", p).fetchone()[0]
            self.check(r, typ == f"FLOAT[{d}]", f"cast to FLOAT[{d}] gave {typ}")
        kv = con.execute(
            "SELECT decode(value) FROM parquet_kv_metadata($f) WHERE decode(key) = 'genomamba'", p
        ).fetchall()
        self.check_meta(r, kv[0][0] if kv else None)
        self.check_rows(r, con.execute(f"SELECT count(*) FROM {src}", p).fetchone()[0])
        if self.args.table == "predictions":
            bad = con.execute(
                f"SELECT count(*) FROM {src} WHERE p_a IS NOT NULL AND "
                "abs(p_a::DOUBLE + p_c + p_g + p_t - 1) > 1e-5", p
            ).fetchone()[0]
            self.check(r, bad == 0, f"{bad} rows with p_a+p_c+p_g+p_t != 1")
        if self.args.table == "predictions":
            # Every row group has min/max statistics, and they bound the values (the float ones are in IEEE 754
            # total order, which DuckDB reads and pyarrow 26 does not yet).
            for col, typ in (("start", "BIGINT"), ("logp_ref", "FLOAT")):
                groups, missing, lo, hi = con.execute(
                    "SELECT count(*), count(*) FILTER (WHERE stats_min_value IS NULL), "
                    f"min(stats_min_value::{typ}), max(stats_max_value::{typ}) "
                    "FROM parquet_metadata($f) WHERE path_in_schema = $c", {"f": self.args.file, "c": col}
                ).fetchone()
                self.check(r, missing == 0, f"{col}: {missing} of {groups} row groups lack statistics")
                got = con.execute(f'SELECT min("{col}"), max("{col}") FROM {src}', p).fetchone()
                self.check(r, (lo, hi) == got, f"{col}: statistics say {lo}..{hi}, the values are {got[0]}..{got[1]}")
        if self.args.table == "variants":
            # A row is scored exactly when its status is ok, and its score is logp_alt - logp_ref.
            bad = con.execute(
                f"SELECT count(*) FROM {src} WHERE (status = 'ok') != (score IS NOT NULL AND logp_ref IS NOT NULL "
                "AND logp_alt IS NOT NULL) OR abs(score - (logp_alt - logp_ref)) > 1e-6", p
            ).fetchone()[0]
            self.check(r, bad == 0, f"{bad} rows whose score, logs and status disagree")
        if self.args.lengths and self.args.table != "variants":
            rows = con.execute(f'SELECT "{self.key}", start, "end" FROM {src}', p).fetchall()
            self.check_coverage(r, coverage(rows))


def coverage(rows):
    """{name: (rows, min start, max end, bases covered, gaps or overlaps)} for rows in file order."""
    out = {}
    for name, start, end in rows:
        n, lo, hi, covered, breaks = out.get(name, (0, start, start, 0, 0))
        breaks += start != hi
        out[name] = (n + 1, min(lo, start), max(hi, end), covered + end - start, breaks)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("file")
    ap.add_argument("--table", required=True, choices=sorted(OWN))
    ap.add_argument("--rows", type=int, help="expected number of rows")
    ap.add_argument("--dim", type=int, help="expected embedding size D")
    ap.add_argument("--dtype", choices=["f32", "f16"], default="f32", help="embedding element type")
    ap.add_argument("--keys", choices=["contig", "read", "aligned"], default="contig",
                    help="sequence key: contigs (chrom), reads (read_name) or aligned reads (+ alignment columns)")
    ap.add_argument("--lengths", help="JSON object {sequence name: length} the rows must cover exactly")
    ap.add_argument("--readers", default="pyarrow,polars,duckdb,pandas", help="comma-separated readers to run")
    args = ap.parse_args()
    if args.table == "embeddings" and args.dim is None:
        ap.error("--dim is required for embeddings")

    c = Checker(args)
    for reader in args.readers.split(","):
        try:
            getattr(c, f"run_{reader}")()
        except Exception as e:  # a reader that cannot read the file is a failure, not a crash
            c.check(reader, False, f"{type(e).__name__}: {e}")
    for f in c.failures:
        print(f"FAIL {args.file}: {f}", file=sys.stderr)
    if not c.failures:
        print(f"ok {args.file}: {args.table} checked with {args.readers}")
    return 1 if c.failures else 0


if __name__ == "__main__":
    sys.exit(main())
