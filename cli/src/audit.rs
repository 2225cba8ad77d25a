//! `audit verify|tail|export`: the store's custody audit log through the library's
//! [`verify_audit`] and [`read_audit`]. Records hold no key material (key ids as a suffix only,
//! wrapped KEKs as a SHA-256), so they are printed as stored.

use std::io::Write;

use cyborgdb_kms::audit::{read_audit, verify_audit, AuditRecord, MAX_READ_LIMIT};
use cyborgdb_kms::{Error, ErrorKind};
use serde_json::{json, Value};

use crate::commands::the_store;
use crate::report::{print_table, CliError, EXIT_FAILED, EXIT_OK};
use crate::{AuditCommand, Cli};

/// Runs an `audit` subcommand; returns the exit status.
pub fn run(cli: &Cli, command: &AuditCommand) -> Result<u8, CliError> {
    let (_, store) = the_store(cli)?;
    match command {
        AuditCommand::Verify => verify(cli, &store),
        AuditCommand::Tail { lines } => tail(cli, &store, *lines),
        AuditCommand::Export { from } => export(&store, *from),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn verify(cli: &Cli, store: &cyborgdb_kms::StorageConfig) -> Result<u8, CliError> {
    let report = verify_audit(store)?;
    let head = report
        .head
        .map(|h| json!({"seq": h.seq, "hash": hex(&h.hash)}));
    let first_break = report
        .first_break
        .as_ref()
        .map(|b| json!({"seq": b.seq, "kind": b.kind.name(), "message": b.message}));
    let mut out = std::io::stdout().lock();
    if cli.json {
        let document = json!({
            "command": "audit verify",
            "intact": report.is_intact(),
            "records": report.records,
            "head": head,
            "first_break": first_break,
        });
        let _ = writeln!(out, "{document}");
    } else {
        let head_text = match report.head {
            Some(h) => format!("seq {} sha256:{}", h.seq, hex(&h.hash)),
            None => "none (empty log)".to_owned(),
        };
        let status = match &report.first_break {
            None => "intact".to_owned(),
            Some(b) => format!("BROKEN at seq {} ({})", b.seq, b.kind.name()),
        };
        let rows = vec![
            vec!["chain".to_owned(), status],
            vec!["verified records".to_owned(), report.records.to_string()],
            vec!["head".to_owned(), head_text],
        ];
        print_table(&mut out, &["AUDIT", "VALUE"], &rows);
    }
    drop(out);
    match &report.first_break {
        None => Ok(EXIT_OK),
        Some(b) => {
            eprintln!(
                "error: audit verify: the chain breaks at seq {} ({}): {}",
                b.seq,
                b.kind.name(),
                b.message
            );
            Ok(EXIT_FAILED)
        }
    }
}

/// Every record from `from` on, page by page, to `each`.
fn scan(
    store: &cyborgdb_kms::StorageConfig,
    from: u64,
    mut each: impl FnMut(AuditRecord) -> Result<(), CliError>,
) -> Result<(), CliError> {
    let mut next = from;
    loop {
        let page = read_audit(store, next, MAX_READ_LIMIT)?;
        let Some(last) = page.last() else {
            return Ok(());
        };
        let following = last.seq.checked_add(1).ok_or_else(|| {
            CliError::Failed(Error::new(ErrorKind::Corrupt, "audit log: seq overflow"))
        })?;
        let full = page.len() == MAX_READ_LIMIT;
        for record in page {
            each(record)?;
        }
        if !full {
            return Ok(());
        }
        next = following;
    }
}

/// UTC `YYYY-MM-DDTHH:MM:SS.mmmZ` of milliseconds since the epoch.
fn utc(time_ms: u64) -> String {
    let (secs, ms) = (time_ms / 1000, time_ms % 1000);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{ms:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn tail(cli: &Cli, store: &cyborgdb_kms::StorageConfig, lines: usize) -> Result<u8, CliError> {
    if lines == 0 {
        return Err(CliError::usage("audit tail: -n must be at least 1"));
    }
    let mut last = std::collections::VecDeque::with_capacity(lines.min(MAX_READ_LIMIT));
    scan(store, 0, |record| {
        if last.len() == lines {
            last.pop_front();
        }
        last.push_back(record);
        Ok(())
    })?;
    let mut out = std::io::stdout().lock();
    if cli.json {
        let records: Vec<Value> = last
            .iter()
            .map(|r| serde_json::from_str(&r.to_line()).unwrap_or(Value::Null))
            .collect();
        let _ = writeln!(
            out,
            "{}",
            json!({"command": "audit tail", "records": records})
        );
    } else {
        let rows: Vec<Vec<String>> = last
            .iter()
            .map(|r| {
                vec![
                    r.seq.to_string(),
                    utc(r.time_ms),
                    r.index.clone(),
                    r.event.name().to_owned(),
                    format!("{}@{} pid {}", r.actor.principal, r.actor.host, r.actor.pid),
                ]
            })
            .collect();
        print_table(&mut out, &["SEQ", "TIME", "INDEX", "EVENT", "ACTOR"], &rows);
    }
    Ok(EXIT_OK)
}

fn export(store: &cyborgdb_kms::StorageConfig, from: u64) -> Result<u8, CliError> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let write_error = |e: std::io::Error| {
        CliError::Failed(Error::new(
            ErrorKind::Io,
            format!("audit export: cannot write: {e}"),
        ))
    };
    scan(store, from, |record| {
        out.write_all(record.to_line().as_bytes())
            .map_err(write_error)
    })?;
    out.flush().map_err(write_error)?;
    Ok(EXIT_OK)
}
