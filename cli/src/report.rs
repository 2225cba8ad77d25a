//! Output: per-item results as a table or JSON, error code names, and the exit status.
//!
//! Nothing printed here ever holds key material: results carry index names, slot names, key
//! identifiers, versions, fingerprints and library error messages (which never contain secrets).

use std::io::Write;

use cyborgdb_kms::ffi::cyb_result;
use cyborgdb_kms::Error;
use serde_json::{json, Value};

/// Exit status: everything done.
pub const EXIT_OK: u8 = 0;
/// Exit status: some items (or the whole command) failed; each failure is named.
pub const EXIT_FAILED: u8 = 1;
/// Exit status: a usage or configuration error; nothing was done.
pub const EXIT_USAGE: u8 = 2;

/// A failure of the whole command.
#[derive(Debug)]
pub enum CliError {
    /// Bad arguments or configuration (exit 2): nothing was touched.
    Usage(String),
    /// An operation failed (exit 1).
    Failed(Error),
}

impl CliError {
    pub fn usage(message: impl Into<String>) -> CliError {
        CliError::Usage(message.into())
    }

    /// A library error while setting up (store, registry, client): configuration, exit 2.
    pub fn config(error: Error) -> CliError {
        CliError::Usage(format!("{}: {}", code_name(&error), error.message()))
    }
}

impl From<Error> for CliError {
    fn from(error: Error) -> CliError {
        CliError::Failed(error)
    }
}

/// The stable name of an error's code, as C's `cyb_result_name` gives it (`NOT_FOUND`, ...).
pub fn code_name(error: &Error) -> &'static str {
    cyb_result::from(error.kind())
        .name()
        .to_str()
        .unwrap_or("UNKNOWN")
}

/// Named detail fields of a result (`version`, `slot`, ...).
pub type Fields = Vec<(&'static str, Value)>;

/// The outcome of one item of a command: a status word, detail fields, or an error.
#[derive(Debug)]
pub struct ItemResult {
    /// The index (or input line) this is about.
    pub index: String,
    /// `Ok((status, fields))` or the error.
    pub outcome: Result<(String, Fields), Error>,
}

impl ItemResult {
    pub fn ok(index: impl Into<String>, status: &str, fields: Fields) -> Self {
        ItemResult {
            index: index.into(),
            outcome: Ok((status.to_owned(), fields)),
        }
    }

    pub fn failed(index: impl Into<String>, error: Error) -> Self {
        ItemResult {
            index: index.into(),
            outcome: Err(error),
        }
    }

    pub fn is_failure(&self) -> bool {
        self.outcome.is_err()
    }

    fn to_json(&self) -> Value {
        let mut object = serde_json::Map::new();
        object.insert("index".into(), json!(self.index));
        match &self.outcome {
            Ok((status, fields)) => {
                object.insert("status".into(), json!(status));
                for (name, value) in fields {
                    object.insert((*name).into(), value.clone());
                }
            }
            Err(e) => {
                object.insert("status".into(), json!("failed"));
                object.insert(
                    "error".into(),
                    json!({"code": code_name(e), "message": e.message()}),
                );
            }
        }
        Value::Object(object)
    }
}

/// Prints `results` of `command` (a table, or one JSON document with `--json`) to stdout, the
/// failures (each with code and message) and a summary to stderr, and returns the exit status.
pub fn finish(command: &str, results: &[ItemResult], json_output: bool) -> u8 {
    let failed = results.iter().filter(|r| r.is_failure()).count();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if json_output {
        let document = json!({
            "command": command,
            "results": results.iter().map(ItemResult::to_json).collect::<Vec<_>>(),
            "total": results.len(),
            "failed": failed,
        });
        let _ = writeln!(out, "{document}");
    } else {
        let rows: Vec<Vec<String>> = results
            .iter()
            .map(|r| {
                let (status, detail) = match &r.outcome {
                    Ok((status, fields)) => (status.clone(), detail_text(fields)),
                    Err(e) => (
                        "FAILED".to_owned(),
                        format!("{}: {}", code_name(e), e.message()),
                    ),
                };
                vec![r.index.clone(), status, detail]
            })
            .collect();
        print_table(&mut out, &["INDEX", "STATUS", "DETAIL"], &rows);
    }
    drop(out);
    let mut err = std::io::stderr().lock();
    for r in results {
        if let Err(e) = &r.outcome {
            let _ = writeln!(
                err,
                "error: {command} {:?}: {}: {}",
                r.index,
                code_name(e),
                e.message()
            );
        }
    }
    if failed > 0 {
        let _ = writeln!(err, "{command}: {failed} of {} failed", results.len());
        EXIT_FAILED
    } else {
        EXIT_OK
    }
}

fn detail_text(fields: &[(&'static str, Value)]) -> String {
    fields
        .iter()
        .map(|(name, value)| match value {
            Value::String(s) => format!("{name}={s}"),
            other => format!("{name}={other}"),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Prints `rows` under `header` in columns padded to the widest cell (the last column unpadded).
pub fn print_table(out: &mut impl Write, header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let last = cells.len().saturating_sub(1);
        let mut text = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i == last {
                text.push_str(cell);
            } else {
                text.push_str(&format!("{cell:<w$}  ", w = widths[i]));
            }
        }
        text.trim_end().to_owned()
    };
    let _ = writeln!(out, "{}", line(header.to_vec()));
    for row in rows {
        let _ = writeln!(out, "{}", line(row.iter().map(String::as_str).collect()));
    }
}
