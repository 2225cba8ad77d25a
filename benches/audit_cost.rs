//! What the custody audit costs on Disk (issue #12): an audited create and an audited re-wrap
//! against the same operation without audit, in the same run, interleaved in alternating blocks
//! so drift (frequency scaling, noisy neighbours, journal state) hits both sides alike.
//!
//! Run: `cargo bench --bench audit_cost`. Prints a markdown table. Budget: ≤ 1.3× without audit.
//!
//! - create: `create_index_kms` of a fresh index (temp file, fsync, link, directory fsync) on a
//!   plain store vs on an audited one (plus one record: open, flock, one `pread` of the tail, one
//!   `write`, `fdatasync`).
//! - re-wrap: `KekResolver::rewrap` between two `local` slots (read, unwrap, wrap, compare-and-swap
//!   replace with fsyncs) on a plain store vs an audited one.
//!
//! Data lives in `target/bench-data-audit` (the repository's file system, not a tmpfs).
//! `AUDIT_BENCH_SCALE=<float>` multiplies the iteration counts (default 1).

use std::fs;
use std::path::Path;
use std::time::Instant;

#[path = "support/stats.rs"]
mod stats;

use stats::{format_ns, Stats};

use cyborgdb_kms::audit::{verify_audit, AuditOptions};
use cyborgdb_kms::{
    create_index_kms, KekCacheOptions, KekResolver, KmsBlob, KmsClient, KmsClientOptions, Provider,
    Slot, StorageConfig,
};

const ROUNDS: usize = 6;

fn main() {
    let scale: f64 = std::env::var("AUDIT_BENCH_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    let per_block = ((50.0 * scale).round() as usize).max(1);
    let data = std::env::var_os("AUDIT_BENCH_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-data-audit"),
        std::path::PathBuf::from,
    );
    let _ = fs::remove_dir_all(&data);
    fs::create_dir_all(&data).expect("create target/bench-data-audit");

    let plain = StorageConfig::disk(data.join("plain")).unwrap();
    let audited = StorageConfig::disk(data.join("audited"))
        .unwrap()
        .with_audit(&AuditOptions::new("bench"))
        .unwrap();

    // Creates: fresh names each time.
    let blob = envelope();
    let (mut plain_creates, mut audited_creates) = (Vec::new(), Vec::new());
    let mut next = 0usize;
    for _ in 0..ROUNDS {
        for (store, samples) in [
            (&plain, &mut plain_creates),
            (&audited, &mut audited_creates),
        ] {
            for _ in 0..per_block {
                let name = format!("idx-{next}");
                next += 1;
                let start = Instant::now();
                create_index_kms(store, &name, &blob).unwrap();
                samples.push(start.elapsed().as_nanos() as f64);
            }
        }
    }

    // Re-wraps: one index per store, bounced between two slots.
    let keys = data.join("keys");
    fs::create_dir_all(&keys).unwrap();
    let client = KmsClient::new(KmsClientOptions {
        allow_local_provider: true,
        ..KmsClientOptions::default()
    })
    .unwrap();
    for (name, fill) in [("main", 1u8), ("other", 2u8)] {
        let path = keys.join(format!("{name}.key"));
        fs::write(&path, [fill; 32]).unwrap();
        client
            .add_slot(
                name,
                Slot {
                    provider: Provider::Local,
                    key_id: format!("file:{}", path.display()),
                    region: String::new(),
                    assume_role: None,
                    previous_keys: Vec::new(),
                    replica_regions: Vec::new(),
                },
            )
            .unwrap();
    }
    let resolver = KekResolver::new(client, KekCacheOptions::default()).unwrap();
    for store in [&plain, &audited] {
        resolver
            .create_index(store, "rotating", Some("main"), None)
            .unwrap();
    }
    let (mut plain_rewraps, mut audited_rewraps) = (Vec::new(), Vec::new());
    let mut flip = false;
    for _ in 0..ROUNDS {
        for (store, samples) in [
            (&plain, &mut plain_rewraps),
            (&audited, &mut audited_rewraps),
        ] {
            for _ in 0..per_block {
                flip = !flip;
                let slot = if flip { "other" } else { "main" };
                let start = Instant::now();
                resolver.rewrap(store, "rotating", slot).unwrap();
                samples.push(start.elapsed().as_nanos() as f64);
            }
        }
    }
    let report = verify_audit(&audited).unwrap();
    assert!(report.is_intact());

    let rows = [
        (
            "Disk `create_index_kms`",
            Stats::of(plain_creates, 1),
            Stats::of(audited_creates, 1),
        ),
        (
            "Disk `KekResolver::rewrap` (local slots)",
            Stats::of(plain_rewraps, 1),
            Stats::of(audited_rewraps, 1),
        ),
    ];
    println!("{} audit records appended and verified", report.records);
    println!();
    println!("| operation | without audit (median, p10–p90) | with audit (median, p10–p90) | ratio (medians) | budget | within |");
    println!("|---|---:|---:|---:|---|---|");
    for (operation, off, on) in rows {
        let ratio = on.median / off.median;
        println!(
            "| {operation} | {} ({}–{}) | {} ({}–{}) | {ratio:.3}× | ≤ 1.3× | {} |",
            format_ns(off.median),
            format_ns(off.p10),
            format_ns(off.p90),
            format_ns(on.median),
            format_ns(on.p10),
            format_ns(on.p90),
            if ratio <= 1.3 { "yes" } else { "**no**" }
        );
    }
    let _ = fs::remove_dir_all(&data);
}

/// A realistic aws-kms envelope: a full key ARN and a 184-byte wrapped KEK.
fn envelope() -> KmsBlob {
    KmsBlob {
        kms_name: "prod-kms".into(),
        provider: "aws-kms".into(),
        key_id: "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
            .into(),
        region: "us-east-1".into(),
        wrapped_kek: (0..184u32).map(|i| (i as u8).wrapping_mul(31)).collect(),
        version: 1,
        created_at: 1_700_000_000,
    }
}
