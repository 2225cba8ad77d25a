//! S3 storage benchmark (issue #5): the library's get and create against moto's S3, side by side
//! with boto3 making the same calls against the same moto in the same run.
//!
//! Run: `CYB_MOTO_PYTHON=<venv python> cargo bench --bench s3_store` (the python needs moto and
//! boto3: `scripts/bootstrap-moto.sh` prints one). Prints a markdown table.
//!
//! - get: the library's `get_index_kms` (GetObject, body read, verify, decode) vs boto3
//!   `get_object(...)["Body"].read()` of the same object.
//! - create: the library's `create_index_kms` (validate, encode, PutObject with
//!   `If-None-Match: *`) to a fresh key each time vs boto3 `put_object(IfNoneMatch="*")` of the same
//!   bytes to fresh keys.
//!
//! Both sides use one warm client, path-style addressing and the same credentials. The sides run in
//! alternating blocks (library, boto3, library, ...) so drift hits both alike. The emulator's own
//! work (moto is Python) dominates both columns; the ratio shows what each client adds on top.
//!
//! `S3_BENCH_SCALE=<float>` multiplies the iteration counts (default 1).

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{ChildStdin, ChildStdout, Command, Stdio};
use std::time::Instant;

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "support/stats.rs"]
mod stats;

use stats::{format_ns, Stats};

use common::moto::{moto_python, Moto};
use cyborgdb_kms::{
    create_index_kms, get_index_kms, push_index_kms, S3Credentials, S3Options, StorageConfig,
};

const BUCKET: &str = "cyborgdb-bench";
const INDEX: &str = "bench";
/// The object the library stores for INDEX under the prefix "bench-lib".
const ENVELOPE_KEY: &str = "bench-lib/bench.kms";
const ROUNDS: usize = 5;

fn main() {
    let scale: f64 = std::env::var("S3_BENCH_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    let per_round = ((100.0 * scale).round() as usize).max(1);

    let server = Moto::spawn(&[]);
    server.create_bucket(BUCKET);
    let store = StorageConfig::s3(
        BUCKET,
        S3Options {
            prefix: "bench-lib".into(),
            region: Some("us-east-1".into()),
            endpoint: Some(server.endpoint.clone()),
            credentials: Some(S3Credentials::new("S3ONLYACCESSKEY", "s3-only-secret-key")),
            ..S3Options::default()
        },
    )
    .expect("S3 store");
    let blob = common::aws_kms_blob(1);
    push_index_kms(&store, INDEX, &blob).expect("seed envelope");
    get_index_kms(&store, INDEX).expect("warm-up get");
    let envelope = server.get_object(BUCKET, ENVELOPE_KEY);
    let envelope_file =
        std::env::temp_dir().join(format!("cyb-s3-bench-{}.kms", std::process::id()));
    std::fs::write(&envelope_file, &envelope).expect("write envelope file");

    let mut boto = Boto3::start(&server.endpoint, &envelope_file);
    println!(
        "moto {} on 127.0.0.1, envelope {} bytes, {ROUNDS} rounds x {per_round} calls per side and operation",
        server.endpoint,
        envelope.len()
    );

    let (mut lib_get, mut boto_get, mut lib_create, mut boto_create): (
        Vec<f64>,
        Vec<f64>,
        Vec<f64>,
        Vec<f64>,
    ) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut next_index = 0usize;
    for round in 0..ROUNDS {
        for _ in 0..per_round {
            let started = Instant::now();
            let got = get_index_kms(&store, INDEX).expect("library get");
            lib_get.push(started.elapsed().as_nanos() as f64);
            std::hint::black_box(got);
        }
        boto_get.extend(boto.run(&format!("get {per_round}")));
        for _ in 0..per_round {
            let name = format!("create-{next_index}");
            next_index += 1;
            let started = Instant::now();
            create_index_kms(&store, &name, &blob).expect("library create");
            lib_create.push(started.elapsed().as_nanos() as f64);
        }
        boto_create.extend(boto.run(&format!("create {per_round} r{round}")));
    }
    let _ = std::fs::remove_file(&envelope_file);

    println!();
    println!("| operation | library median | boto3 median | library p90 | boto3 p90 | library / boto3 (medians) | calls per side |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (name, lib, boto) in [
        ("get (GetObject + verify + decode)", lib_get, boto_get),
        (
            "create (PutObject If-None-Match: *)",
            lib_create,
            boto_create,
        ),
    ] {
        let calls = lib.len();
        let (lib, boto) = (Stats::of(lib, 1), Stats::of(boto, 1));
        println!(
            "| {name} | {} | {} | {} | {} | {:.2}× | {calls} |",
            format_ns(lib.median),
            format_ns(boto.median),
            format_ns(lib.p90),
            format_ns(boto.p90),
            lib.median / boto.median,
        );
    }
}

/// benches/s3_boto3.py, driven over its stdin.
struct Boto3 {
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    _child: std::process::Child,
}

impl Boto3 {
    fn start(endpoint: &str, envelope_file: &std::path::Path) -> Boto3 {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/s3_boto3.py");
        let mut child = Command::new(moto_python())
            .arg(script)
            .args([endpoint, BUCKET, ENVELOPE_KEY])
            .arg(envelope_file)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start benches/s3_boto3.py");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut ready = String::new();
        stdout.read_line(&mut ready).unwrap();
        assert_eq!(ready.trim(), "READY", "boto3 side failed to start");
        Boto3 {
            stdin: child.stdin.take().unwrap(),
            stdout,
            _child: child,
        }
    }

    /// Sends one command; returns its per-call nanoseconds.
    fn run(&mut self, command: &str) -> Vec<f64> {
        writeln!(self.stdin, "{command}").unwrap();
        self.stdin.flush().unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        let times: Vec<f64> = line
            .split_whitespace()
            .map(|t| t.parse().expect("nanoseconds"))
            .collect();
        assert!(
            !times.is_empty(),
            "boto3 side answered {line:?} to {command:?}"
        );
        times
    }
}
