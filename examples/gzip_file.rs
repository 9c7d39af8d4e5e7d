//! The exec handler of the main job: gzips the file named in the payload.
//!
//! Reads the payload JSON on stdin, `{"path": "in.txt"}` (optionally with
//! `"output": "out.gz"`, default `<path>.gz`), writes the compressed file (to a
//! temporary name, then renamed, so a killed attempt leaves no half file) and
//! prints `{"bytes_in": n, "bytes_out": m}`.
//!
//! Exit status and stderr follow jobq's exec rules: a missing input prints
//! "not found" (a permanent failure); a bad payload prints "invalid payload"
//! (permanent); other I/O errors are retried.
//!
//! In `jobq.toml`:
//! ```toml
//! [handlers.gzip_file]
//! command = ["target/release/examples/gzip_file"]
//! ```

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use flate2::write::GzEncoder;
use flate2::Compression;
use serde::Deserialize;

#[derive(Deserialize)]
struct Payload {
    path: PathBuf,
    #[serde(default)]
    output: Option<PathBuf>,
}

fn main() -> ExitCode {
    match run() {
        Ok((bytes_in, bytes_out)) => {
            println!(
                "{}",
                serde_json::json!({"bytes_in": bytes_in, "bytes_out": bytes_out})
            );
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("{message}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(u64, u64), String> {
    let mut input = String::new();
    io::stdin()
        .read_to_string(&mut input)
        .map_err(|e| format!("reading the payload: {e}"))?;
    let payload: Payload =
        serde_json::from_str(&input).map_err(|e| format!("invalid payload: {e}"))?;
    let output = payload.output.unwrap_or_else(|| {
        let mut name = payload.path.clone().into_os_string();
        name.push(".gz");
        PathBuf::from(name)
    });
    gzip(&payload.path, &output)
}

/// Compresses `input` into `output`; returns (bytes read, bytes written).
fn gzip(input: &Path, output: &Path) -> Result<(u64, u64), String> {
    let file = File::open(input).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => format!("input file not found: {}", input.display()),
        _ => format!("opening {}: {e}", input.display()),
    })?;
    let mut tmp_name = output.as_os_str().to_owned();
    tmp_name.push(format!(".tmp-{}", std::process::id()));
    let tmp = PathBuf::from(tmp_name);
    let out = File::create(&tmp).map_err(|e| format!("creating {}: {e}", tmp.display()))?;
    let mut encoder = GzEncoder::new(BufWriter::new(out), Compression::default());
    let bytes_in = io::copy(&mut BufReader::new(file), &mut encoder)
        .map_err(|e| format!("compressing {}: {e}", input.display()))?;
    let mut writer = encoder
        .finish()
        .map_err(|e| format!("writing {}: {e}", tmp.display()))?;
    writer
        .flush()
        .map_err(|e| format!("writing {}: {e}", tmp.display()))?;
    drop(writer);
    std::fs::rename(&tmp, output).map_err(|e| format!("renaming to {}: {e}", output.display()))?;
    let bytes_out = std::fs::metadata(output)
        .map_err(|e| format!("reading {}: {e}", output.display()))?
        .len();
    Ok((bytes_in, bytes_out))
}
