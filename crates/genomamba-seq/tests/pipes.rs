//! Named pipes and process substitution (`genomamba predict <(zcat x.fa.gz)`): the path is opened once and read
//! as a stream, like standard input.

#![cfg(unix)]

mod common;

use std::{
    fs, io,
    io::Write,
    path::{Path, PathBuf},
    process::Command,
    sync::mpsc,
    thread,
    time::Duration,
};

use common::*;
use genomamba_seq::{OpenOptions, Region, open::detect_format};

fn mkfifo(path: &Path) -> io::Result<()> {
    let status = Command::new("mkfifo").arg(path).status()?;
    if !status.success() {
        return Err(io::Error::other(format!("mkfifo {}", path.display())));
    }
    Ok(())
}

/// Starts a thread writing `bytes` into `fifo` once a reader opens it (a reader that stops early makes it fail
/// with EPIPE: nothing to report).
fn write_into(fifo: &Path, bytes: Vec<u8>) {
    let path = fifo.to_path_buf();
    thread::spawn(move || -> io::Result<()> {
        fs::OpenOptions::new()
            .write(true)
            .open(path)?
            .write_all(&bytes)
    });
}

/// Runs `f` on a thread; fails (rather than hanging on a pipe) if it takes a minute.
fn within_a_minute<T: Send + 'static>(
    what: &str,
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(60))
        .map_err(|_| io::Error::other(format!("{what}: hung")))?
}

#[test]
fn test_named_pipe_is_read_once() -> io::Result<()> {
    let tmp = tempfile::tempdir()?;
    let reference = derived("lambda_virus.fa");
    let cases: Vec<(PathBuf, OpenOptions)> = vec![
        (derived("mixed.fa"), OpenOptions::default()),
        (derived("mixed.fa.gz"), OpenOptions::default()),
        (derived("mixed.plain.fa.gz"), OpenOptions::default()),
        (
            derived("mixed.plain.fa.gz"),
            OpenOptions::default().with_names(vec!["short_lambda".into()]),
        ),
        (
            data().join("reads/lambda_long.fq.gz"),
            OpenOptions::default(),
        ),
        (data().join("reads/lambda.bam"), OpenOptions::default()),
        (
            data().join("reads/lambda.cram"),
            OpenOptions::default().with_reference(&reference),
        ),
    ];
    for (i, (file, opts)) in cases.into_iter().enumerate() {
        let fifo = tmp.path().join(format!("in{i}"));
        mkfifo(&fifo)?;
        write_into(&fifo, fs::read(&file)?);
        // Not read (it cannot be peeked at without losing what is read): no format, nothing consumed.
        let path = fifo.clone();
        let format = within_a_minute("detect_format", move || detect_format(&path))?;
        assert_eq!(format, None, "{}", file.display());
        let expected = names_bases(read_all(&file, &opts)?);
        let path = fifo.clone();
        let got = within_a_minute("reading", move || read_all(&path, &opts).map(names_bases))?;
        assert!(!expected.is_empty());
        assert_same(&got, &expected, &file.display().to_string());
    }
    // Regions need an index and a file that can be read by position: refused before the pipe is opened.
    let fifo = tmp.path().join("regions");
    mkfifo(&fifo)?;
    let region: Region = "lambda_0_3000:1-10".parse()?;
    let msg = genomamba_seq::open(&fifo, &OpenOptions::default().with_regions(vec![region]))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        msg.starts_with(&format!(
            "{}: region queries need an indexed file",
            fifo.display()
        )) && msg.contains("not a stream"),
        "{msg}"
    );
    // A directory is not read.
    let msg = genomamba_seq::open(tmp.path(), &OpenOptions::default())
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        msg.ends_with("is a directory, not a sequence file"),
        "{msg}"
    );
    Ok(())
}
