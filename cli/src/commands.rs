//! The commands: each opens what it needs (store, KMS client), calls the library and reports.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};

use base64::Engine as _;
use cyborgdb_kms::audit::AuditOptions;
use cyborgdb_kms::{
    delete_index_kms, get_index_kms, list_index_kms, push_index_kms_if_newer, DriftStatus, Error,
    ErrorKind, KekCacheOptions, KekResolver, KeyIdentity, KmsBlob, PushIfNewer, StorageConfig,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::Digest as _;

use crate::bulk;
use crate::journal::{Journal, Recorded};
use crate::report::{self, code_name, CliError, ItemResult, EXIT_OK};
use crate::store::{open_kms, open_store};
use crate::{Cli, Command};

/// Longest line `import` reads: an envelope is at most 64 KiB, base64 and JSON add a third.
const MAX_IMPORT_LINE: u64 = 128 * 1024;

/// Runs the command; returns the exit status.
pub fn run(cli: &Cli) -> Result<u8, CliError> {
    match &cli.command {
        Command::List => list(cli),
        Command::Show { index } => show(cli, index),
        Command::Verify {
            indexes,
            all: _,
            unwrap,
            parallel,
        } => verify(cli, indexes, *unwrap, *parallel),
        Command::Drift { rewrap } => drift(cli, *rewrap),
        Command::Rewrap {
            to,
            indexes,
            all,
            from_key,
            parallel,
            dry_run,
            journal,
            fresh,
        } => {
            let which = match (all, from_key) {
                (true, _) => Which::All,
                (false, Some(key)) => Which::FromKey(key),
                (false, None) => Which::Named(indexes),
            };
            rewrap(cli, to, which, *parallel, *dry_run, journal, *fresh)
        }
        Command::Create { index, slot } => create(cli, index, slot),
        Command::Delete { index, yes } => delete(cli, index, *yes),
        Command::Copy {
            from,
            to,
            indexes,
            parallel,
        } => copy(cli, from, to, indexes, *parallel),
        Command::Export { indexes, output } => export(cli, indexes, output.as_deref()),
        Command::Import { file } => import(cli, file),
        Command::Audit(command) => crate::audit::run(cli, command),
    }
}

/// The store `--store` names, audited if `--audit` or the registry's `audit:` says so.
/// Errors: a usage error without one.
pub fn the_store(cli: &Cli) -> Result<(String, StorageConfig), CliError> {
    let url = cli
        .store
        .as_deref()
        .ok_or_else(|| CliError::usage("no store: pass --store URL (or set CYBORGDB_KMS_STORE)"))?;
    Ok((url.to_owned(), audited(cli, open_store(url, &cli.s3)?)?))
}

/// `store` with the custody audit on if `--audit` is given or the registry has an `audit:`
/// setting (`--actor` overrides its principal); else `store` as it is.
///
/// Errors: configuration errors (a bad registry, an empty or control-character principal).
fn audited(cli: &Cli, store: StorageConfig) -> Result<StorageConfig, CliError> {
    let from_registry = match &cli.kms.registry {
        Some(path) => cyborgdb_kms::Registry::from_yaml_file(path)
            .map_err(CliError::config)?
            .audit()
            .cloned(),
        None => None,
    };
    if !cli.audit && from_registry.is_none() {
        return Ok(store);
    }
    let mut options = from_registry.unwrap_or_else(|| match std::env::var("USER") {
        Ok(user) if !user.is_empty() => AuditOptions::new(format!("cyborgdb-kms:{user}")),
        _ => AuditOptions::new("cyborgdb-kms"),
    });
    if let Some(actor) = &cli.actor {
        options.principal = actor.clone();
    }
    store.with_audit(&options).map_err(CliError::config)
}

/// The resolver for commands that unwrap or wrap: no KEK cache (each KEK is used once).
fn resolver(cli: &Cli, command: &str) -> Result<KekResolver, CliError> {
    let client = open_kms(&cli.kms, command)?;
    let options = KekCacheOptions {
        ttl: Some(std::time::Duration::ZERO),
        ..KekCacheOptions::default()
    };
    KekResolver::new(client, options).map_err(CliError::config)
}

/// `names`, or every stored index if empty.
fn named_or_all(store: &StorageConfig, names: &[String]) -> Result<Vec<String>, CliError> {
    if names.is_empty() {
        Ok(list_index_kms(store)?)
    } else {
        Ok(names.to_vec())
    }
}

fn list(cli: &Cli) -> Result<u8, CliError> {
    let (_, store) = the_store(cli)?;
    let names = list_index_kms(&store)?;
    let mut out = std::io::stdout().lock();
    if cli.json {
        let _ = writeln!(out, "{}", json!({"command": "list", "indexes": names}));
    } else {
        for name in &names {
            let _ = writeln!(out, "{name}");
        }
    }
    Ok(EXIT_OK)
}

/// The wrapped KEK as `(length, "sha256:<hex>")`: enough to compare envelopes, never the bytes.
fn fingerprint(blob: &KmsBlob) -> (usize, String) {
    let digest = sha2::Sha256::digest(&blob.wrapped_kek);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    (blob.wrapped_kek.len(), format!("sha256:{hex}"))
}

fn show(cli: &Cli, index: &str) -> Result<u8, CliError> {
    let (_, store) = the_store(cli)?;
    let blob = get_index_kms(&store, index)?;
    let (len, digest) = fingerprint(&blob);
    let mut out = std::io::stdout().lock();
    if cli.json {
        let document = json!({
            "index": index,
            "kms_name": blob.kms_name,
            "provider": blob.provider,
            "key_id": blob.key_id,
            "region": blob.region,
            "version": blob.version,
            "created_at": blob.created_at,
            "wrapped_kek_len": len,
            "wrapped_kek_sha256": digest,
        });
        let _ = writeln!(out, "{document}");
    } else {
        let rows = vec![
            vec!["index".into(), index.to_owned()],
            vec!["kms_name".into(), blob.kms_name.clone()],
            vec!["provider".into(), blob.provider.clone()],
            vec!["key_id".into(), blob.key_id.clone()],
            vec!["region".into(), blob.region.clone()],
            vec!["version".into(), blob.version.to_string()],
            vec!["created_at".into(), blob.created_at.to_string()],
            vec!["wrapped_kek".into(), format!("{len} bytes, {digest}")],
        ];
        report::print_table(&mut out, &["FIELD", "VALUE"], &rows);
    }
    Ok(EXIT_OK)
}

fn verify(cli: &Cli, names: &[String], unwrap: bool, parallel: usize) -> Result<u8, CliError> {
    let parallel = bulk::check_parallel(parallel)?;
    let (_, store) = the_store(cli)?;
    let client = if unwrap {
        Some(open_kms(&cli.kms, "verify --unwrap")?)
    } else {
        None
    };
    let names = named_or_all(&store, names)?;
    let results = bulk::run("verify", &names, parallel, cli.quiet, |name| {
        let blob = match get_index_kms(&store, name) {
            Ok(blob) => blob,
            Err(e) => return ItemResult::failed(name, e),
        };
        let fields = vec![
            ("kms_name", json!(blob.kms_name)),
            ("version", json!(blob.version)),
        ];
        match &client {
            None => ItemResult::ok(name, "ok", fields),
            Some(_) if blob.provider == "none" => ItemResult::ok(name, "not-wrapped", fields),
            Some(client) => match client.unwrap_kek(name, &blob) {
                Ok(_kek) => ItemResult::ok(name, "unwrapped", fields),
                Err(e) => ItemResult::failed(name, e),
            },
        }
    })?;
    Ok(report::finish("verify", &results, cli.json))
}

fn snapshot_text(snapshot: &Option<cyborgdb_kms::KeySnapshot>) -> Value {
    match snapshot {
        Some(s) => json!(format!("{}:{}@{}", s.provider, s.key_id, s.region)),
        None => Value::Null,
    }
}

fn drift(cli: &Cli, rewrap: bool) -> Result<u8, CliError> {
    let (_, store) = the_store(cli)?;
    let resolver = resolver(cli, "drift")?;
    let entries = resolver.check_drift(&store, rewrap)?;
    let results: Vec<ItemResult> = entries
        .into_iter()
        .map(|entry| {
            let status = match entry.status {
                DriftStatus::InSync => "in-sync",
                DriftStatus::Drifted => "drifted",
                DriftStatus::Rewrapped => "rewrapped",
                DriftStatus::NotWrapped => "not-wrapped",
                DriftStatus::Failed => "failed",
            };
            match entry.error {
                Some(e) => ItemResult::failed(entry.index, e),
                None => ItemResult::ok(
                    entry.index,
                    status,
                    vec![
                        ("slot", json!(entry.kms_name)),
                        ("stored", snapshot_text(&entry.stored)),
                        ("configured", snapshot_text(&entry.configured)),
                    ],
                ),
            }
        })
        .collect();
    Ok(report::finish("drift", &results, cli.json))
}

enum Which<'a> {
    All,
    FromKey(&'a str),
    Named(&'a [String]),
}

#[allow(clippy::too_many_arguments)]
fn rewrap(
    cli: &Cli,
    to: &str,
    which: Which<'_>,
    parallel: usize,
    dry_run: bool,
    journal_path: &std::path::Path,
    fresh: bool,
) -> Result<u8, CliError> {
    let parallel = bulk::check_parallel(parallel)?;
    let (url, store) = the_store(cli)?;
    let resolver = resolver(cli, "rewrap")?;
    let target_key = resolver
        .client()
        .registry()
        .require(to)
        .map_err(CliError::config)?
        .key();
    let journal = if dry_run {
        None
    } else {
        Some(Journal::open(journal_path, &url, to, fresh)?)
    };
    // The selection; for --all and --from-key plus every index an interrupted run recorded (a
    // --from-key run's re-wrapped indexes no longer match the key).
    let mut selected: BTreeSet<String> = match which {
        Which::Named(names) => names.iter().cloned().collect(),
        Which::All | Which::FromKey(_) => list_index_kms(&store)?.into_iter().collect(),
    };
    let explicit = matches!(which, Which::Named(_));
    if let (Some(journal), false) = (&journal, explicit) {
        selected.extend(journal.indexes().map(str::to_owned));
    }
    let names: Vec<String> = selected.into_iter().collect();
    let from_key = match which {
        Which::FromKey(key) => Some(key),
        _ => None,
    };
    let results = bulk::run("rewrap", &names, parallel, cli.quiet, |name| {
        let recorded = journal.as_ref().and_then(|j| j.recorded(name));
        if let Some(Recorded::Done(version)) = recorded {
            return ItemResult::ok(name, "done-earlier", vec![("version", json!(version))]);
        }
        let blob = match get_index_kms(&store, name) {
            Ok(blob) => blob,
            Err(e) => return ItemResult::failed(name, e),
        };
        let journal = journal.as_ref();
        if let Some(Recorded::Intent(intended)) = recorded {
            let under_target = blob.kms_name == to
                && KeyIdentity::of_envelope(&blob).is_ok_and(|key| key == target_key);
            if Some(blob.version) == intended.checked_add(1) && under_target {
                if let Some(journal) = journal {
                    if let Err(e) = journal.done(name, blob.version) {
                        return ItemResult::failed(name, journal_error(journal, &e));
                    }
                }
                return ItemResult::ok(name, "resumed", vec![("version", json!(blob.version))]);
            }
            if blob.version != intended {
                return ItemResult::failed(name, changed_since_intent(name, intended, &blob));
            }
        } else {
            // Not recorded: is it selected?
            if blob.provider == "none" {
                return if explicit {
                    ItemResult::failed(name, not_wrapped(name))
                } else {
                    ItemResult::ok(name, "skipped-not-wrapped", vec![])
                };
            }
            if from_key.is_some_and(|key| blob.key_id != key) {
                return ItemResult::ok(name, "skipped-other-key", vec![]);
            }
        }
        let fields = vec![
            ("from", json!(blob.kms_name)),
            ("to", json!(to)),
            ("version", json!(blob.version)),
        ];
        if dry_run {
            return ItemResult::ok(name, "would-rewrap", fields);
        }
        if let Some(journal) = journal {
            if recorded.is_none() {
                if let Err(e) = journal.intent(name, blob.version) {
                    return ItemResult::failed(name, journal_error(journal, &e));
                }
            }
        }
        match resolver.rewrap(&store, name, to) {
            Ok(new) => {
                if let Some(journal) = journal {
                    if let Err(e) = journal.done(name, new.version) {
                        return ItemResult::failed(name, journal_error(journal, &e));
                    }
                }
                ItemResult::ok(
                    name,
                    "rewrapped",
                    vec![
                        ("from", json!(blob.kms_name)),
                        ("to", json!(to)),
                        ("version", json!(new.version)),
                    ],
                )
            }
            Err(e) => ItemResult::failed(name, e),
        }
    })?;
    let results: Vec<ItemResult> = results
        .into_iter()
        .filter(|r| {
            !matches!(&r.outcome, Ok((status, _)) if status == "skipped-other-key" || status == "skipped-not-wrapped")
        })
        .collect();
    Ok(report::finish("rewrap", &results, cli.json))
}

/// An error as the library would phrase it, for a condition the CLI detects.
fn cli_error(kind: ErrorKind, message: String) -> Error {
    Error::new(kind, message)
}

fn not_wrapped(name: &str) -> Error {
    cli_error(
        ErrorKind::KekNotWrapped,
        format!("index {name:?}: provider none: there is no wrapped KEK to re-wrap"),
    )
}

fn changed_since_intent(name: &str, intended: u32, blob: &KmsBlob) -> Error {
    cli_error(
        ErrorKind::Conflict,
        format!(
            "index {name:?}: the journal recorded a re-wrap of version {intended}, but version {} \
             under slot {:?} is stored: another writer changed it since; not re-wrapped",
            blob.version, blob.kms_name
        ),
    )
}

fn journal_error(journal: &Journal, e: &std::io::Error) -> Error {
    cli_error(
        ErrorKind::Io,
        format!(
            "journal {}: cannot record: {e}; not re-wrapped",
            journal.path().display()
        ),
    )
}

fn create(cli: &Cli, index: &str, slot: &str) -> Result<u8, CliError> {
    let (_, store) = the_store(cli)?;
    let resolver = resolver(cli, "create")?;
    let result = match resolver.create_index(&store, index, Some(slot), None) {
        Ok(_kek) => {
            let blob = get_index_kms(&store, index)?;
            ItemResult::ok(
                index,
                "created",
                vec![
                    ("slot", json!(slot)),
                    ("provider", json!(blob.provider)),
                    ("version", json!(blob.version)),
                ],
            )
        }
        Err(e) => ItemResult::failed(index, e),
    };
    Ok(report::finish("create", &[result], cli.json))
}

fn delete(cli: &Cli, index: &str, yes: bool) -> Result<u8, CliError> {
    if !yes {
        return Err(CliError::usage(format!(
            "delete {index:?}: refusing to delete without --yes (the KEK is lost unless the envelope is backed up)"
        )));
    }
    let (_, store) = the_store(cli)?;
    let result = match get_index_kms(&store, index).and_then(|blob| {
        delete_index_kms(&store, index)?;
        Ok(blob)
    }) {
        Ok(blob) => ItemResult::ok(index, "deleted", vec![("version", json!(blob.version))]),
        Err(e) => ItemResult::failed(index, e),
    };
    Ok(report::finish("delete", &[result], cli.json))
}

/// Stores `blob` in `target` unless a newer envelope is there, and reads it back to check it.
fn push_verified(target: &StorageConfig, name: &str, blob: &KmsBlob) -> Result<ItemResult, Error> {
    let outcome = push_index_kms_if_newer(target, name, blob)?;
    let stored = get_index_kms(target, name)?;
    let (status, fields) = match outcome {
        PushIfNewer::Created => ("copied", vec![("version", json!(blob.version))]),
        PushIfNewer::Replaced { previous_version } => (
            "replaced-older",
            vec![
                ("version", json!(blob.version)),
                ("previous_version", json!(previous_version)),
            ],
        ),
        PushIfNewer::Kept { stored_version } if stored_version == blob.version => {
            if stored != *blob {
                return Err(cli_error(
                    ErrorKind::Conflict,
                    format!(
                        "index {name:?}: the target holds version {stored_version} with other \
                         contents; not overwritten"
                    ),
                ));
            }
            ("already-there", vec![("version", json!(blob.version))])
        }
        PushIfNewer::Kept { stored_version } => (
            "kept-newer",
            vec![
                ("version", json!(blob.version)),
                ("target_version", json!(stored_version)),
            ],
        ),
    };
    if matches!(outcome, PushIfNewer::Created | PushIfNewer::Replaced { .. }) && stored != *blob {
        return Err(cli_error(
            ErrorKind::Corrupt,
            format!("index {name:?}: the envelope read back from the target differs from the one written"),
        ));
    }
    Ok(ItemResult::ok(name, status, fields))
}

fn copy(
    cli: &Cli,
    from: &str,
    to: &str,
    names: &[String],
    parallel: usize,
) -> Result<u8, CliError> {
    let parallel = bulk::check_parallel(parallel)?;
    let source = open_store(from, &cli.s3)?;
    let target = audited(cli, open_store(to, &cli.s3)?)?;
    let names = named_or_all(&source, names)?;
    let results = bulk::run(
        "copy",
        &names,
        parallel,
        cli.quiet,
        |name| match get_index_kms(&source, name)
            .and_then(|blob| push_verified(&target, name, &blob))
        {
            Ok(result) => result,
            Err(e) => ItemResult::failed(name, e),
        },
    )?;
    Ok(report::finish("copy", &results, cli.json))
}

/// One envelope as an export line. The wrapped KEK is ciphertext (base64); nothing else of the
/// key is in it.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExportLine {
    index: String,
    kms_name: String,
    provider: String,
    key_id: String,
    region: String,
    wrapped_kek: String,
    version: u32,
    created_at: i64,
}

fn export(cli: &Cli, names: &[String], output: Option<&std::path::Path>) -> Result<u8, CliError> {
    let (_, store) = the_store(cli)?;
    let names = named_or_all(&store, names)?;
    let mut out: Box<dyn Write> = match output {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path).map_err(|e| {
                CliError::usage(format!("export: cannot create {}: {e}", path.display()))
            })?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut failed = 0usize;
    for name in &names {
        match get_index_kms(&store, name) {
            Ok(blob) => {
                let line = ExportLine {
                    index: name.clone(),
                    wrapped_kek: b64.encode(&blob.wrapped_kek),
                    kms_name: blob.kms_name,
                    provider: blob.provider,
                    key_id: blob.key_id,
                    region: blob.region,
                    version: blob.version,
                    created_at: blob.created_at,
                };
                let text = serde_json::to_string(&line).expect("export lines serialize");
                writeln!(out, "{text}").map_err(|e| {
                    CliError::Failed(cli_error(
                        ErrorKind::Io,
                        format!("export: cannot write: {e}"),
                    ))
                })?;
            }
            Err(e) => {
                failed += 1;
                eprintln!("error: export {name:?}: {}: {}", code_name(&e), e.message());
            }
        }
    }
    out.flush().map_err(|e| {
        CliError::Failed(cli_error(
            ErrorKind::Io,
            format!("export: cannot write: {e}"),
        ))
    })?;
    if failed > 0 {
        eprintln!("export: {failed} of {} failed", names.len());
        return Ok(report::EXIT_FAILED);
    }
    Ok(EXIT_OK)
}

fn import(cli: &Cli, file: &std::path::Path) -> Result<u8, CliError> {
    let (_, store) = the_store(cli)?;
    let input: Box<dyn Read> =
        if file.as_os_str() == "-" {
            Box::new(std::io::stdin().lock())
        } else {
            Box::new(std::fs::File::open(file).map_err(|e| {
                CliError::usage(format!("import: cannot open {}: {e}", file.display()))
            })?)
        };
    let mut reader = BufReader::new(input);
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut results = Vec::new();
    let mut line = Vec::new();
    let mut number = 0u64;
    loop {
        line.clear();
        let n = (&mut reader)
            .take(MAX_IMPORT_LINE + 1)
            .read_until(b'\n', &mut line)
            .map_err(|e| {
                CliError::Failed(cli_error(
                    ErrorKind::Io,
                    format!("import: cannot read: {e}"),
                ))
            })?;
        if n == 0 {
            break;
        }
        number += 1;
        let label = format!("line {number}");
        if line.len() as u64 > MAX_IMPORT_LINE {
            // Skip the rest of the over-long line.
            let mut sink = Vec::new();
            let _ = reader.read_until(b'\n', &mut sink);
            results.push(ItemResult::failed(
                label,
                cli_error(
                    ErrorKind::InvalidArgument,
                    format!("import line {number}: longer than {MAX_IMPORT_LINE} bytes"),
                ),
            ));
            continue;
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let parsed = serde_json::from_slice::<ExportLine>(&line)
            .map_err(|e| format!("not an export line: {e}"))
            .and_then(|l| {
                let kek = b64
                    .decode(l.wrapped_kek.as_bytes())
                    .map_err(|e| format!("wrapped_kek is not base64: {e}"))?;
                Ok((l, kek))
            });
        let (l, wrapped_kek) = match parsed {
            Ok(parsed) => parsed,
            Err(why) => {
                results.push(ItemResult::failed(
                    label,
                    cli_error(
                        ErrorKind::InvalidArgument,
                        format!("import line {number}: {why}"),
                    ),
                ));
                continue;
            }
        };
        let blob = KmsBlob {
            kms_name: l.kms_name,
            provider: l.provider,
            key_id: l.key_id,
            region: l.region,
            wrapped_kek,
            version: l.version,
            created_at: l.created_at,
        };
        results.push(match push_verified(&store, &l.index, &blob) {
            Ok(result) => result,
            Err(e) => ItemResult::failed(l.index, e),
        });
    }
    Ok(report::finish("import", &results, cli.json))
}
