//! A small harness for running the real binary (after ripgrep's tests/util.rs): a temporary directory, a
//! command builder, and assertions that print both sides.

#![allow(dead_code)]

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root (where data/ lives): `GENOMAMBA_REPO` when set (a test binary carried to another
/// machine, as tests/gpu/run.sh does), else this checkout.
pub fn root() -> PathBuf {
    std::env::var_os("GENOMAMBA_REPO")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

/// The genomamba binary under test: `GENOMAMBA_TEST_BIN` when set (a carried release binary), else the one cargo
/// built with these tests.
pub fn binary() -> PathBuf {
    std::env::var_os("GENOMAMBA_TEST_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_genomamba")))
}

/// A path under data/.
pub fn data(rel: &str) -> PathBuf {
    root().join("data").join(rel)
}

/// A path under data/derived/, made by `bash data/make.sh`; panics with a clear hint when it is missing.
pub fn derived(rel: &str) -> PathBuf {
    let path = data("derived").join(rel);
    assert!(
        path.exists(),
        "{} is missing: run `bash data/make.sh` first",
        path.display()
    );
    path
}

/// A scratch directory removed on drop.
pub struct Dir {
    dir: tempfile::TempDir,
}

impl Default for Dir {
    fn default() -> Self {
        Self::new()
    }
}

impl Dir {
    /// A new empty scratch directory.
    pub fn new() -> Self {
        Self {
            dir: tempfile::Builder::new()
                .prefix("genomamba-test-")
                .tempdir()
                .expect("temp dir"),
        }
    }

    /// A path inside it.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Writes a file inside it and returns its path.
    pub fn write(&self, rel: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path(rel);
        std::fs::write(&path, contents).expect("write");
        path
    }

    /// The names of the files inside it, sorted.
    pub fn listing(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.dir.path())
            .expect("read dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

/// A command line for the genomamba binary.
pub struct Cmd {
    cmd: Command,
    line: Vec<String>,
}

/// The genomamba binary with these arguments.
pub fn genomamba<I, S>(args: I) -> Cmd
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = Command::new(binary());
    let mut line = vec!["genomamba".to_string()];
    for a in args {
        line.push(a.as_ref().to_string_lossy().into_owned());
        cmd.arg(a);
    }
    cmd.env_remove("GENOMAMBA_MODEL");
    Cmd { cmd, line }
}

impl Cmd {
    /// Adds an argument.
    pub fn arg(mut self, a: impl AsRef<OsStr>) -> Self {
        self.line.push(a.as_ref().to_string_lossy().into_owned());
        self.cmd.arg(a);
        self
    }

    /// Adds several arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        for a in args {
            self = self.arg(a);
        }
        self
    }

    /// Sets an environment variable.
    pub fn env(mut self, key: &str, value: impl AsRef<OsStr>) -> Self {
        self.cmd.env(key, value);
        self
    }

    /// Removes an environment variable.
    pub fn env_remove(mut self, key: &str) -> Self {
        self.cmd.env_remove(key);
        self
    }

    /// Sets the working directory.
    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.cmd.current_dir(dir);
        self
    }

    /// Feeds a file to standard input.
    pub fn stdin_file(mut self, path: impl AsRef<Path>) -> Self {
        let file = std::fs::File::open(path).expect("open stdin file");
        self.cmd.stdin(file);
        self
    }

    /// Runs it and returns the output, whatever the exit status.
    pub fn output(mut self) -> (Output, String) {
        let out = self.cmd.output().expect("run genomamba");
        (out, self.line.join(" "))
    }

    /// Runs it, asserts success and returns stdout.
    pub fn ok(self) -> String {
        let (out, line) = self.output();
        assert!(
            out.status.success(),
            "expected success: {line}\nstatus: {}\nstdout:\n{}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs it, asserts exit code `code` and returns stderr.
    pub fn fails_with(self, code: i32) -> String {
        let (out, line) = self.output();
        assert_eq!(
            out.status.code(),
            Some(code),
            "expected exit {code}: {line}\nstdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            !stderr.contains("panicked"),
            "a panic is never an error message:\n{stderr}"
        );
        stderr
    }
}

/// Indexes a FASTA with `samtools faidx` (writes `path.fai`).
pub fn samtools_faidx(path: &Path) {
    let status = Command::new("samtools")
        .arg("faidx")
        .arg(path)
        .status()
        .expect("samtools");
    assert!(status.success(), "samtools faidx {}", path.display());
}

/// Reads a whole Parquet file into one batch plus its `genomamba` metadata JSON.
pub fn read(path: &Path) -> (arrow_array::RecordBatch, serde_json::Value) {
    let file = std::fs::File::open(path).expect("open parquet");
    let builder = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .expect("parquet");
    let meta = builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .and_then(|kv| {
            kv.iter()
                .find(|e| e.key == "genomamba")
                .and_then(|e| e.value.clone())
        })
        .expect("genomamba metadata");
    let schema = builder.schema().clone();
    let batches: Vec<arrow_array::RecordBatch> = builder
        .build()
        .expect("reader")
        .map(|b| b.expect("batch"))
        .collect();
    let batch = arrow_select::concat::concat_batches(&schema, &batches).expect("concat");
    (
        batch,
        serde_json::from_str(&meta).expect("metadata is JSON"),
    )
}
