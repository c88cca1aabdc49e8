//! Round trips through real files, read back with the parquet crate's Arrow reader.

use std::fs::File;
use std::os::unix::fs::FileTypeExt as _;
use std::path::Path;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float16Type, Float32Type, Int64Type};
use arrow_array::{Array, RecordBatch, RecordBatchReader};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::*;
use crate::{
    BatchBuilder, Dtype, EmbeddingBatchBuilder, PredictionBatchBuilder, Provenance, ReadFields,
    SequenceKind, Table, Variant, VariantBatchBuilder, read_metadata_json, schema, status,
};

type TestResult = std::result::Result<(), Box<dyn std::error::Error>>;

/// `remove_temp_files` removes every sink's file in the process, so its test runs alone (write lock) while the
/// other sink tests share the read lock.
static EXCLUSIVE: std::sync::RwLock<()> = std::sync::RwLock::new(());

fn shared() -> std::sync::RwLockReadGuard<'static, ()> {
    EXCLUSIVE.read().unwrap_or_else(|e| e.into_inner())
}

fn read_all(
    path: &Path,
) -> std::result::Result<(SchemaRef, Vec<RecordBatch>, usize), Box<dyn std::error::Error>> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(File::open(path)?)?;
    let groups = builder.metadata().num_row_groups();
    let reader = builder.build()?;
    let schema = reader.schema();
    let batches = reader.collect::<std::result::Result<Vec<_>, _>>()?;
    Ok((schema, batches, groups))
}

fn meta_json(table: Table) -> String {
    Provenance::new(table, "0.0.0-test", vec!["genomamba".into(), "test".into()])
        .to_json()
        .expect("json")
}

fn embeddings(dtype: Dtype, rows: usize, dim: usize) -> Result<RecordBatch> {
    let mut b = EmbeddingBatchBuilder::new(dim, dtype, SequenceKind::AlignedRead)?;
    for i in 0..rows {
        let values: Vec<f32> = (0..dim)
            .map(|j| (i * dim + j) as f32 * 0.25 - 3.0)
            .collect();
        let name = format!("read{}", i / 3);
        let read = ReadFields {
            ref_name: (i % 2 == 0).then_some("chr1"),
            ref_start: (i % 2 == 0).then_some(i as i64 * 10),
            reverse: (i % 2 == 0).then_some(i % 4 == 0),
            mapq: (i % 2 == 0).then_some(60),
            flag: Some(if i % 2 == 0 { 0 } else { 4 }),
        };
        b.push(
            &name,
            (i % 3) as i64 * 50,
            (i % 3) as i64 * 50 + 50,
            0.0,
            &values,
            Some(&read),
        )?;
    }
    b.finish()
}

#[test]
fn test_embeddings_round_trip_f32_and_f16() -> TestResult {
    let _shared = shared();
    let dir = tempfile::tempdir()?;
    for dtype in [Dtype::F32, Dtype::F16] {
        let path = dir.path().join(format!("e-{}.parquet", dtype.as_str()));
        let batch = embeddings(dtype, 7, 5)?;
        let mut sink =
            ParquetSink::create(&path, batch.schema(), meta_json(Table::Embeddings), false)?;
        sink.write(&batch)?;
        let summary = sink.finish()?;
        assert_eq!((summary.rows, summary.row_groups), (7, 1));
        let (schema, batches, _) = read_all(&path)?;
        // Types, nullability and field metadata survive (fixed size through the ARROW:schema entry).
        assert_eq!(schema.fields(), batch.schema().fields());
        assert_eq!(batches.len(), 1);
        assert_eq!(batches[0], batch);
        let emb = batches[0].column(4).as_fixed_size_list();
        assert_eq!(emb.value_length(), 5);
        assert_eq!(emb.null_count(), 0);
        let last = emb.value(6);
        let got: Vec<f32> = match dtype {
            Dtype::F32 => last.as_primitive::<Float32Type>().values().to_vec(),
            Dtype::F16 => last
                .as_primitive::<Float16Type>()
                .values()
                .iter()
                .map(|h| h.to_f32())
                .collect(),
        };
        assert_eq!(got, [4.5, 4.75, 5.0, 5.25, 5.5]); // (6 * 5 + j) / 4 - 3
        let json = read_metadata_json(&path)?.ok_or("no genomamba key")?;
        assert_eq!(json, meta_json(Table::Embeddings));
        assert_eq!(batches[0].column(5).null_count(), 3); // ref_name of the unmapped rows
    }
    Ok(())
}

#[test]
fn test_predictions_round_trip_null_probs() -> TestResult {
    let _shared = shared();
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("p.parquet");
    let mut b = PredictionBatchBuilder::new(SequenceKind::Contig);
    let seq = b"ACGTNacgt";
    for (i, &base) in seq.iter().enumerate() {
        let probs = (i > 0).then_some([0.1, 0.2, 0.3, 0.4]);
        b.push(
            if i < 5 { "chr1" } else { "chr2" },
            i as i64,
            base,
            probs,
            None,
        )?;
    }
    let batch = b.finish()?;
    let mut sink =
        ParquetSink::create(&path, batch.schema(), meta_json(Table::Predictions), false)?;
    sink.write(&batch)?;
    sink.finish()?;
    let (schema, batches, _) = read_all(&path)?;
    assert_eq!(schema, batch.schema());
    let got = &batches[0];
    assert_eq!(got, &batch);
    let p_a = got
        .column_by_name("p_a")
        .ok_or("p_a")?
        .as_primitive::<Float32Type>();
    assert!(p_a.is_null(0) && !p_a.is_null(1));
    let logp = got
        .column_by_name("logp_ref")
        .ok_or("logp_ref")?
        .as_primitive::<Float32Type>();
    assert_eq!(logp.null_count(), 2); // no context at 0, N at 4
    assert!((logp.value(8) - 0.4f32.ln()).abs() < 1e-6); // lower-case t
    let chrom = got
        .column(0)
        .as_dictionary::<arrow_array::types::Int32Type>();
    assert_eq!(chrom.values().len(), 2);
    Ok(())
}

#[test]
fn test_variants_round_trip() -> TestResult {
    let _shared = shared();
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("v.parquet");
    let mut b = VariantBatchBuilder::new();
    for (pos, st) in [(5, status::OK), (9, status::NOT_SNV), (12, status::OK)] {
        b.push(&Variant {
            chrom: "chrX",
            pos,
            id: (pos == 5).then_some("rs5"),
            ref_allele: "A",
            alt: if st == status::OK { "C" } else { "CT" },
            logp_ref: (st == status::OK).then_some(-1.0),
            logp_alt: (st == status::OK).then_some(-4.5),
            status: st,
        })?;
    }
    let batch = b.finish()?;
    let mut sink =
        ParquetSink::create(&path, schema::variants(), meta_json(Table::Variants), false)?;
    sink.write(&batch)?;
    sink.finish()?;
    let (_, batches, _) = read_all(&path)?;
    assert_eq!(batches[0], batch);
    assert_eq!(
        batches[0]
            .column(1)
            .as_primitive::<Int64Type>()
            .values()
            .as_ref(),
        &[5, 9, 12]
    );
    Ok(())
}

#[test]
fn test_drop_without_finish_leaves_nothing() -> TestResult {
    let _shared = shared();
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("x.parquet");
    let batch = embeddings(Dtype::F32, 3, 2)?;
    let mut sink = ParquetSink::create(&path, batch.schema(), meta_json(Table::Embeddings), false)?;
    sink.write(&batch)?;
    let temp = sink.temp_path().to_path_buf();
    assert_eq!(temp.parent(), Some(dir.path()));
    assert!(temp.exists());
    assert!(temp_files().contains(&temp));
    drop(sink);
    assert!(!temp.exists());
    assert!(!temp_files().contains(&temp));
    assert_eq!(std::fs::read_dir(dir.path())?.count(), 0);
    Ok(())
}

#[test]
fn test_existing_target_refused_and_untouched() -> TestResult {
    let _shared = shared();
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("out.parquet");
    std::fs::write(&path, b"precious")?;
    let s = schema::variants();
    let err = ParquetSink::create(&path, s.clone(), String::new(), false);
    assert!(matches!(err, Err(Error::Exists { .. })));
    assert_eq!(std::fs::read(&path)?, b"precious");
    assert_eq!(std::fs::read_dir(dir.path())?.count(), 1);
    // With force it is replaced, only at finish.
    let sink = ParquetSink::create(&path, s, "{}".to_owned(), true)?;
    assert_eq!(std::fs::read(&path)?, b"precious");
    sink.finish()?;
    assert_eq!(&std::fs::read(&path)?[..4], b"PAR1");
    Ok(())
}

/// A pipe (or a device, such as /dev/null) is never replaced by a Parquet file, even with force.
#[test]
fn test_non_regular_target_refused_even_with_force() -> TestResult {
    let _shared = shared();
    let dir = tempfile::tempdir()?;
    let fifo = dir.path().join("pipe.parquet");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status()?;
    assert!(made.success());
    for force in [false, true] {
        let err = ParquetSink::create(&fifo, schema::variants(), "{}".to_owned(), force)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("not a regular file"), "{err}");
    }
    assert!(std::fs::symlink_metadata(&fifo)?.file_type().is_fifo());
    assert_eq!(std::fs::read_dir(dir.path())?.count(), 1);
    Ok(())
}

#[test]
fn test_target_appearing_during_write_is_not_overwritten() -> TestResult {
    let _shared = shared();
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("race.parquet");
    let sink = ParquetSink::create(&path, schema::variants(), "{}".to_owned(), false)?;
    std::fs::write(&path, b"other run")?;
    assert!(matches!(sink.finish(), Err(Error::Exists { .. })));
    assert_eq!(std::fs::read(&path)?, b"other run");
    assert_eq!(std::fs::read_dir(dir.path())?.count(), 1);
    Ok(())
}

#[test]
fn test_remove_temp_files_then_finish_fails() -> TestResult {
    let _alone = EXCLUSIVE.write().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("int.parquet");
    let batch = embeddings(Dtype::F16, 4, 3)?;
    let mut sink = ParquetSink::create(&path, batch.schema(), "{}".to_owned(), false)?;
    sink.write(&batch)?;
    let temp = sink.temp_path().to_path_buf();
    assert!(remove_temp_files() >= 1);
    assert!(!temp.exists());
    assert!(sink.finish().is_err());
    assert_eq!(std::fs::read_dir(dir.path())?.count(), 0);
    Ok(())
}

#[test]
fn test_identical_input_gives_identical_bytes() -> TestResult {
    let _shared = shared();
    let dir = tempfile::tempdir()?;
    let mut files = Vec::new();
    for name in ["a.parquet", "b.parquet"] {
        let path = dir.path().join(name);
        let batch = embeddings(Dtype::F16, 50, 8)?;
        let options = SinkOptions::default().with_max_row_group_bytes(2000);
        let mut sink = ParquetSink::create_with_options(
            &path,
            batch.schema(),
            meta_json(Table::Embeddings),
            false,
            options,
        )?;
        sink.write(&batch.slice(0, 20))?;
        sink.write(&batch.slice(20, 30))?;
        assert!(sink.finish()?.row_groups > 1);
        files.push(std::fs::read(&path)?);
    }
    assert_eq!(files[0], files[1]);
    Ok(())
}

#[test]
fn test_row_groups_bounded_by_bytes_and_rows() -> TestResult {
    let _shared = shared();
    let dir = tempfile::tempdir()?;
    let batch = embeddings(Dtype::F32, 1000, 16)?;
    let row_bytes = batch_bytes(&batch)?.div_ceil(1000);
    assert!(row_bytes >= 64, "{row_bytes}");
    let path = dir.path().join("bytes.parquet");
    let bound = 20 * 1024;
    let options = SinkOptions::default().with_max_row_group_bytes(bound);
    let mut sink =
        ParquetSink::create_with_options(&path, batch.schema(), "{}".to_owned(), false, options)?;
    for start in (0..1000).step_by(64) {
        sink.write(&batch.slice(start, 64.min(1000 - start)))?;
    }
    let groups = sink.finish()?.row_groups;
    let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(&path)?)?;
    let rows: Vec<i64> = reader
        .metadata()
        .row_groups()
        .iter()
        .map(|g| g.num_rows())
        .collect();
    assert_eq!(rows.len(), groups);
    assert_eq!(rows.iter().sum::<i64>(), 1000);
    assert!(groups >= 1000 * row_bytes / bound, "{rows:?}");
    // Every group but the last is within 5% of the bound (the sink measures each written slice, whose string
    // columns differ a little from the whole batch's average used here).
    let slack = bound / 20;
    for (i, &r) in rows.iter().enumerate() {
        let bytes = r as usize * row_bytes;
        assert!(
            bytes <= bound + slack,
            "group {i}: {rows:?} rows of {row_bytes} bytes"
        );
        if i + 1 < rows.len() {
            assert!(
                bytes + slack >= bound,
                "group {i} too small: {rows:?} rows of {row_bytes} bytes"
            );
        }
    }
    // The row cap applies too.
    let path = dir.path().join("rows.parquet");
    let options = SinkOptions::default().with_max_row_group_rows(300);
    let mut sink =
        ParquetSink::create_with_options(&path, batch.schema(), "{}".to_owned(), false, options)?;
    sink.write(&batch)?;
    sink.finish()?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(&path)?)?;
    let rows: Vec<i64> = reader
        .metadata()
        .row_groups()
        .iter()
        .map(|g| g.num_rows())
        .collect();
    assert_eq!(rows, [300, 300, 300, 100]);
    Ok(())
}

#[test]
fn test_schema_mismatch_is_an_error() -> TestResult {
    let _shared = shared();
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("m.parquet");
    let batch = embeddings(Dtype::F32, 2, 2)?;
    let mut sink = ParquetSink::create(&path, schema::variants(), "{}".to_owned(), false)?;
    assert!(sink.write(&batch).is_err());
    drop(sink);
    assert_eq!(std::fs::read_dir(dir.path())?.count(), 0);
    Ok(())
}

#[test]
fn test_missing_directory() {
    let _shared = shared();
    let r = ParquetSink::create(
        "/nonexistent-dir/x.parquet",
        schema::variants(),
        String::new(),
        false,
    );
    assert!(matches!(r, Err(Error::Io { op: "creating", .. })));
}

#[test]
fn metadata_given_at_the_end_is_written_once() -> TestResult {
    let _guard = shared();
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("late.parquet");
    let mut rows = PredictionBatchBuilder::new(SequenceKind::Contig);
    rows.push("chr1", 0, b'A', Some([0.7, 0.1, 0.1, 0.1]), None)?;
    let mut sink = ParquetSink::create(&path, rows.schema(), String::new(), false)?;
    sink.write(&rows.finish()?)?;
    sink.finish_with_metadata(meta_json(Table::Predictions))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(File::open(&path)?)?;
    let kv = builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .cloned()
        .unwrap_or_default();
    let entries: Vec<_> = kv.into_iter().filter(|e| e.key == METADATA_KEY).collect();
    assert_eq!(entries.len(), 1);
    assert_eq!(
        entries[0].value.as_deref(),
        Some(meta_json(Table::Predictions).as_str())
    );
    Ok(())
}
