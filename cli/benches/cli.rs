//! Benchmarks of the `cyborgdb-kms` binary (results in BENCHMARKS.md, "Command line"):
//!
//! - `rewrap`: `rewrap --all` of 2 000 indexes against a loopback KMS peer answering every
//!   `kms:ReEncrypt` after 20 ms, with `--parallel 1` and `--parallel 64` in the same run.
//! - `verify`: `verify --all` of 10 000 Disk envelopes.
//! - `list`: `list` of 10 000 S3 envelopes on moto, against boto3 listing the same prefix.
//!
//! `cargo bench -p cyborgdb-kms-cli --bench cli [-- rewrap|verify|list]` (release build).

#[path = "../../tests/common/fault_peer.rs"]
#[allow(dead_code)]
mod fault_peer;
#[path = "../../tests/common/moto.rs"]
#[allow(dead_code)]
mod moto;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cyborgdb_kms::{push_index_kms, KmsBlob, StorageConfig};
use fault_peer::{FaultPeer, Reply};

const BIN: &str = env!("CARGO_BIN_EXE_cyborgdb-kms");
const OLD_KEY: &str = "arn:aws:kms:us-east-1:111122223333:key/11111111-1111-1111-1111-111111111111";
const NEW_KEY: &str = "arn:aws:kms:us-east-1:111122223333:key/22222222-2222-2222-2222-222222222222";

fn envelope(slot: &str, key: &str) -> KmsBlob {
    KmsBlob {
        kms_name: slot.into(),
        provider: "aws-kms".into(),
        key_id: key.into(),
        region: "us-east-1".into(),
        wrapped_kek: vec![7; 184],
        version: 1,
        created_at: 1_700_000_000,
    }
}

/// Runs the binary with `args`; returns the wall time. Panics unless it exits 0.
fn time_run(args: &[&str]) -> Duration {
    let start = Instant::now();
    let out = Command::new(BIN)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let elapsed = start.elapsed();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    elapsed
}

/// Fills `store` with `n` envelopes `idx-00000`.. in parallel.
fn fill(store: &StorageConfig, n: usize, blob: &KmsBlob) {
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..16 {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= n {
                    return;
                }
                push_index_kms(store, &format!("idx-{i:05}"), blob).unwrap();
            });
        }
    });
}

fn bench_rewrap() {
    const N: usize = 2_000;
    const DELAY: Duration = Duration::from_millis(20);
    let peer = FaultPeer::start(|request| {
        let body = request.body_text();
        let dest = if body.contains(NEW_KEY) {
            NEW_KEY
        } else {
            OLD_KEY
        };
        let source = if dest == NEW_KEY { OLD_KEY } else { NEW_KEY };
        Reply::delayed(
            DELAY,
            Reply::json(&format!(
                r#"{{"CiphertextBlob":"{}","KeyId":"{dest}","SourceKeyId":"{source}","SourceEncryptionAlgorithm":"SYMMETRIC_DEFAULT","DestinationEncryptionAlgorithm":"SYMMETRIC_DEFAULT"}}"#,
                aws_smithy_types::base64::encode([9u8; 184])
            )),
        )
    });
    let dir = tempfile::tempdir().unwrap();
    let registry = dir.path().join("cyborgdb.yaml");
    std::fs::write(
        &registry,
        format!(
            "kms:\n  registry:\n    old:\n      provider: aws-kms\n      key_id: {OLD_KEY}\n      region: us-east-1\n\
             \x20   new:\n      provider: aws-kms\n      key_id: {NEW_KEY}\n      region: us-east-1\n"
        ),
    )
    .unwrap();
    let mut results = Vec::new();
    for parallel in [1usize, 64] {
        let root = dir.path().join(format!("store-{parallel}"));
        fill(
            &StorageConfig::disk(&root).unwrap(),
            N,
            &envelope("old", OLD_KEY),
        );
        let journal = dir.path().join(format!("journal-{parallel}"));
        let p = parallel.to_string();
        let elapsed = time_run(&[
            "--quiet",
            "--store",
            root.to_str().unwrap(),
            "--registry",
            registry.to_str().unwrap(),
            "--kms-endpoint",
            peer.endpoint(),
            "rewrap",
            "--to",
            "new",
            "--all",
            "--parallel",
            &p,
            "--journal",
            journal.to_str().unwrap(),
        ]);
        println!(
            "rewrap --all, {N} indexes, KMS answering in 20 ms, --parallel {parallel}: {:.2} s ({:.0} indexes/s)",
            elapsed.as_secs_f64(),
            N as f64 / elapsed.as_secs_f64()
        );
        results.push(elapsed);
    }
    println!(
        "rewrap speed-up --parallel 64 vs 1: {:.1}x (goal >= 30x); ReEncrypt calls: {}",
        results[0].as_secs_f64() / results[1].as_secs_f64(),
        peer.count_target("TrentService.ReEncrypt")
    );
}

fn bench_verify() {
    const N: usize = 10_000;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    fill(
        &StorageConfig::disk(&root).unwrap(),
        N,
        &envelope("old", OLD_KEY),
    );
    let root = root.to_str().unwrap();
    time_run(&["--quiet", "--store", root, "verify", "--all"]); // page cache warm
    let runs: Vec<Duration> = (0..3)
        .map(|_| time_run(&["--quiet", "--store", root, "verify", "--all"]))
        .collect();
    let best = runs.iter().min().unwrap();
    println!(
        "verify --all, {N} Disk envelopes: best of 3 {:.3} s (runs: {:?}; goal <= 2 s)",
        best.as_secs_f64(),
        runs.iter()
            .map(|d| format!("{:.3}", d.as_secs_f64()))
            .collect::<Vec<_>>()
    );
}

const BOTO3_LIST: &str = r#"
import sys, time
t0 = time.perf_counter()
import boto3
from botocore.config import Config
endpoint, bucket, prefix = sys.argv[1:4]
client = boto3.session.Session(aws_access_key_id="s3-bench", aws_secret_access_key="s3-bench-secret",
    region_name="us-east-1").client("s3", endpoint_url=endpoint, config=Config(s3={"addressing_style": "path"}))
t1 = time.perf_counter()
keys = [o["Key"] for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for o in page.get("Contents", [])]
t2 = time.perf_counter()
print(len(keys), t2 - t1, t2 - t0)
"#;

fn bench_list() {
    const N: usize = 10_000;
    let moto = moto::moto();
    moto.create_bucket("bench-list");
    let options = cyborgdb_kms::S3Options {
        prefix: "keystore".into(),
        region: Some("us-east-1".into()),
        endpoint: Some(moto.endpoint.clone()),
        credentials: Some(cyborgdb_kms::S3Credentials::new(
            "s3-bench",
            "s3-bench-secret",
        )),
        ..cyborgdb_kms::S3Options::default()
    };
    let store = StorageConfig::s3("bench-list", options).unwrap();
    fill(&store, N, &envelope("old", OLD_KEY));
    let cli = || {
        let start = Instant::now();
        let out = Command::new(BIN)
            .args([
                "--store",
                "s3://bench-list/keystore",
                "--s3-endpoint",
                &moto.endpoint,
            ])
            .arg("list")
            .env("CYBORGDB_S3_ACCESS_KEY_ID", "s3-bench")
            .env("CYBORGDB_S3_SECRET_ACCESS_KEY", "s3-bench-secret")
            .output()
            .unwrap();
        let elapsed = start.elapsed();
        assert!(out.status.success());
        assert_eq!(out.stdout.iter().filter(|b| **b == b'\n').count(), N);
        elapsed
    };
    let boto3 = || {
        let start = Instant::now();
        let out = Command::new(moto::moto_python())
            .args(["-c", BOTO3_LIST, &moto.endpoint, "bench-list", "keystore/"])
            .output()
            .unwrap();
        let elapsed = start.elapsed();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let words: Vec<&str> = text.split_whitespace().collect();
        assert_eq!(words[0].parse::<usize>().unwrap(), N);
        (elapsed, words[1].parse::<f64>().unwrap())
    };
    cli();
    boto3();
    let mut cli_runs = Vec::new();
    let mut boto3_runs = Vec::new();
    for _ in 0..3 {
        cli_runs.push(cli().as_secs_f64());
        boto3_runs.push(boto3());
    }
    let min = |v: &[f64]| v.iter().cloned().fold(f64::INFINITY, f64::min);
    let cli_best = min(&cli_runs);
    let boto3_process = min(&boto3_runs
        .iter()
        .map(|r| r.0.as_secs_f64())
        .collect::<Vec<_>>());
    let boto3_listing = min(&boto3_runs.iter().map(|r| r.1).collect::<Vec<_>>());
    println!(
        "list, {N} S3 envelopes on moto: cyborgdb-kms process {cli_best:.3} s; boto3 process \
         {boto3_process:.3} s (its listing alone {boto3_listing:.3} s); ratio vs boto3 process \
         {:.2}x, vs boto3 listing alone {:.2}x (goal <= 1.5x)",
        cli_best / boto3_process,
        cli_best / boto3_listing
    );
}

fn main() {
    let which: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wants = |name: &str| which.is_empty() || which.iter().any(|w| w == name);
    if wants("verify") {
        bench_verify();
    }
    if wants("rewrap") {
        bench_rewrap();
    }
    if wants("list") {
        bench_list();
    }
}
