//! KMS provider benchmarks (issue #3), against moto server on 127.0.0.1 (never real AWS).
//!
//! Run: `cargo bench --bench kms_providers` (needs `.venv-moto`: `scripts/bootstrap-moto.sh`).
//!
//! 1. aws-kms unwrap through the library (`KmsClient::unwrap_kek`: kms:Decrypt with the index's
//!    EncryptionContext and the 32-byte check) side by side with boto3 doing the same Decrypt of
//!    the same ciphertext against the same moto, in one run, interleaved in alternating blocks.
//!    Budget: library ≤ 0.7 × boto3 per unwrap.
//! 2. Local AES-256-GCM unwrap (`aws` / `local` providers) once the wrap key is in hand,
//!    associated data included. Budget: ≤ 1 µs.
//! 3. First unwrap in a fresh process, client start-up included: this binary re-runs itself as a
//!    child that creates a `KmsClient`, adds the slot and unwraps once. Budget: ≤ 50 ms.
//!
//! Knob: `KMS_BENCH_SCALE=<float>` multiplies the iteration counts (default 1).

use std::hint::black_box;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Instant;

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "support/stats.rs"]
mod stats;

use common::fault_peer::{FaultPeer, Reply};
use cyborgdb_kms::kms::aead::{self, WrapKey};
use cyborgdb_kms::kms::binding::aead_associated_data;
use cyborgdb_kms::{IndexName, Kek, KmsBlob, KmsClient, Provider};
use stats::{format_ns, Stats};

const INDEX: &str = "bench-index";
const CHILD_ENV: &str = "KMS_BENCH_FIRST_UNWRAP";

fn main() {
    if std::env::var_os(CHILD_ENV).is_some() {
        first_unwrap_child();
        return;
    }
    let scale: f64 = std::env::var("KMS_BENCH_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    let scaled = |n: usize| ((n as f64 * scale).round() as usize).max(1);

    let moto = common::moto::moto();
    let key = moto.create_kms_key("us-east-1");
    let client = common::aws_kms_client(&moto.endpoint, "bench", &key);
    let (blob, kek) = client.wrap_new_kek(INDEX, "bench").unwrap();

    println!("moto server {} (moto 5.2.5), key {key}", moto.endpoint);
    println!();
    let (library, boto3) = unwrap_vs_boto3(&moto.endpoint, &client, &blob, &kek, scaled(20), 25);
    // The clients' own cost: the same Decrypt answered by a loopback peer in ~35 µs.
    let plaintext = kek.as_bytes().to_vec();
    let peer = FaultPeer::start(move |_| Reply::kms_decrypt("k", &plaintext));
    let peer_client = common::aws_kms_client(peer.endpoint(), "bench", &key);
    let (library_only, boto3_only) =
        unwrap_vs_boto3(peer.endpoint(), &peer_client, &blob, &kek, scaled(20), 50);
    let sdk_only = bare_sdk_decrypt(peer.endpoint(), &blob, scaled(1000));
    let local = local_unwrap(scaled(200));
    let first = first_unwrap(&moto.endpoint, &key, &blob, scaled(15));

    println!("| measurement | median | p10 | p90 | n | budget | result |");
    println!("|---|---|---|---|---|---|---|");
    let ratio = library.median / boto3.median;
    println!(
        "| aws-kms unwrap, library (kms:Decrypt via moto) | {} | {} | {} | {} | | |",
        format_ns(library.median),
        format_ns(library.p10),
        format_ns(library.p90),
        library.iterations
    );
    println!(
        "| aws-kms unwrap, boto3 (same Decrypt, same moto) | {} | {} | {} | {} | | |",
        format_ns(boto3.median),
        format_ns(boto3.p10),
        format_ns(boto3.p90),
        boto3.iterations
    );
    println!(
        "| library / boto3 (medians) | {ratio:.3}× | | | | ≤ 0.7× | {} |",
        verdict(ratio <= 0.7)
    );
    println!(
        "| local AES-256-GCM unwrap (aws / local), key in hand | {} | {} | {} | {} | ≤ 1 µs | {} |",
        format_ns(local.median),
        format_ns(local.p10),
        format_ns(local.p90),
        local.iterations,
        verdict(local.median <= 1000.0)
    );
    println!(
        "| client overhead, library (canned Decrypt from a loopback peer) | {} | {} | {} | {} | | |",
        format_ns(library_only.median),
        format_ns(library_only.p10),
        format_ns(library_only.p90),
        library_only.iterations
    );
    println!(
        "| client overhead, bare aws-sdk-kms Decrypt (current-thread runtime, same peer) | {} | {} | {} | {} | | |",
        format_ns(sdk_only.median),
        format_ns(sdk_only.p10),
        format_ns(sdk_only.p90),
        sdk_only.iterations
    );
    println!(
        "| client overhead, boto3 (same peer) | {} | {} | {} | {} | | |",
        format_ns(boto3_only.median),
        format_ns(boto3_only.p10),
        format_ns(boto3_only.p90),
        boto3_only.iterations
    );
    for (what, stats) in [
        (
            "first unwrap in a fresh process (in-process: client start-up + unwrap)",
            &first.0,
        ),
        (
            "first unwrap in a fresh process (whole process, spawn to exit)",
            &first.1,
        ),
    ] {
        println!(
            "| {what} | {} | {} | {} | {} | ≤ 50 ms | {} |",
            format_ns(stats.median),
            format_ns(stats.p10),
            format_ns(stats.p90),
            stats.iterations,
            verdict(stats.median <= 50e6)
        );
    }
}

/// Per-call nanoseconds of the library (`client`) and of boto3 (a worker pointed at `endpoint`),
/// `blocks` blocks of `per_block` calls each, alternating which side goes first.
fn unwrap_vs_boto3(
    endpoint: &str,
    client: &KmsClient,
    blob: &KmsBlob,
    kek: &Kek,
    blocks: usize,
    per_block: usize,
) -> (Stats, Stats) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/boto3_kms_worker.py");
    let mut worker = Command::new(common::moto::moto_python())
        .args([
            script,
            endpoint,
            &blob.key_id,
            &aws_smithy_types::base64::encode(&blob.wrapped_kek),
            INDEX,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the boto3 worker");
    let mut to_worker = worker.stdin.take().unwrap();
    let mut from_worker = BufReader::new(worker.stdout.take().unwrap());
    let mut line = String::new();
    from_worker.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready");
    let mut boto3_block = |n: usize| -> Vec<f64> {
        writeln!(to_worker, "{n}").unwrap();
        let mut line = String::new();
        from_worker.read_line(&mut line).unwrap();
        line.split_whitespace()
            .map(|t| t.parse::<f64>().unwrap())
            .collect()
    };
    let library_block = |n: usize| -> Vec<f64> {
        (0..n)
            .map(|_| {
                let start = Instant::now();
                let unwrapped = client.unwrap_kek(INDEX, blob).unwrap();
                let elapsed = start.elapsed().as_nanos() as f64;
                assert!(unwrapped == *kek);
                elapsed
            })
            .collect()
    };
    // Warm-up: connections, caches, Python imports.
    library_block(per_block);
    boto3_block(per_block);
    let (mut library, mut boto3) = (Vec::new(), Vec::new());
    for block in 0..blocks {
        if block % 2 == 0 {
            library.extend(library_block(per_block));
            boto3.extend(boto3_block(per_block));
        } else {
            boto3.extend(boto3_block(per_block));
            library.extend(library_block(per_block));
        }
    }
    drop(to_worker);
    let _ = worker.wait();
    (Stats::of(library, 1), Stats::of(boto3, 1))
}

/// Per-call nanoseconds of aws-sdk-kms Decrypt alone — no library, one current-thread runtime
/// driven by this thread — the floor for the library's own per-call cost.
fn bare_sdk_decrypt(endpoint: &str, blob: &KmsBlob, calls: usize) -> Stats {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let config = common::moto::sdk_config(endpoint, "us-east-1");
    let kms = aws_sdk_kms::Client::new(&config);
    let decrypt = || {
        runtime
            .block_on(
                kms.decrypt()
                    .key_id(&blob.key_id)
                    .ciphertext_blob(aws_smithy_types::Blob::new(blob.wrapped_kek.clone()))
                    .encryption_context("cyborgdb:context", "kek-v1")
                    .encryption_context("cyborgdb:index", INDEX)
                    .send(),
            )
            .unwrap()
    };
    for _ in 0..50 {
        decrypt();
    }
    Stats::of(
        (0..calls)
            .map(|_| {
                let start = Instant::now();
                black_box(decrypt());
                start.elapsed().as_nanos() as f64
            })
            .collect(),
        1,
    )
}

/// Per-call nanoseconds of a local unwrap (associated data + AES-256-GCM open + 32-byte check),
/// `samples` batches of 1000 calls.
fn local_unwrap(samples: usize) -> Stats {
    let key = WrapKey::from_slice(&[7; 32], "bench key").unwrap();
    let index = IndexName::new(INDEX).unwrap();
    let kek = Kek::generate();
    let wrapped = aead::wrap(&key, &aead_associated_data(Provider::Aws, &index), &kek);
    let batch = 1000;
    let one = || {
        let aad = aead_associated_data(Provider::Aws, black_box(&index));
        aead::unwrap(&key, &aad, black_box(&wrapped)).unwrap()
    };
    for _ in 0..batch {
        black_box(one());
    }
    Stats::of(
        (0..samples)
            .map(|_| {
                let start = Instant::now();
                for _ in 0..batch {
                    black_box(one());
                }
                start.elapsed().as_nanos() as f64 / batch as f64
            })
            .collect(),
        batch,
    )
}

/// (in-process, whole-process) nanoseconds of `runs` fresh child processes' first unwrap.
fn first_unwrap(endpoint: &str, key: &str, blob: &KmsBlob, runs: usize) -> (Stats, Stats) {
    let exe = std::env::current_exe().unwrap();
    let mut inside = Vec::new();
    let mut whole = Vec::new();
    for _ in 0..runs {
        let start = Instant::now();
        let output = Command::new(&exe)
            .env(CHILD_ENV, "1")
            .env("KMS_BENCH_ENDPOINT", endpoint)
            .env("KMS_BENCH_KEY", key)
            .env(
                "KMS_BENCH_WRAPPED",
                aws_smithy_types::base64::encode(&blob.wrapped_kek),
            )
            .output()
            .unwrap();
        whole.push(start.elapsed().as_nanos() as f64);
        assert!(output.status.success(), "{output:?}");
        inside.push(
            String::from_utf8(output.stdout)
                .unwrap()
                .trim()
                .parse()
                .unwrap(),
        );
    }
    (Stats::of(inside, 1), Stats::of(whole, 1))
}

/// The child of [`first_unwrap`]: times client start-up plus one unwrap, prints nanoseconds.
fn first_unwrap_child() {
    let start = Instant::now();
    let var = |name| std::env::var(name).unwrap();
    let client = common::aws_kms_client(&var("KMS_BENCH_ENDPOINT"), "bench", &var("KMS_BENCH_KEY"));
    let blob = KmsBlob {
        kms_name: "bench".into(),
        provider: "aws-kms".into(),
        key_id: var("KMS_BENCH_KEY"),
        region: "us-east-1".into(),
        wrapped_kek: aws_smithy_types::base64::decode(var("KMS_BENCH_WRAPPED")).unwrap(),
        version: 1,
        created_at: 1,
    };
    black_box(client.unwrap_kek(INDEX, &blob).unwrap());
    println!("{}", start.elapsed().as_nanos());
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "within budget"
    } else {
        "OVER BUDGET"
    }
}
