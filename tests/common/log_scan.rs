//! The library's log callback at its most verbose level (`Trace`), keeping every line it
//! receives, and the scan of texts for secrets in every form a leak could take.
//!
//! [`watch`] installs the callback once per test binary and adds secrets to look for; each line
//! is scanned as it arrives and a line holding one aborts the test binary, naming the secret and
//! showing the line on stderr (a panic would be caught by the library's callback boundary, and
//! the line may come from a runtime thread after its test ended). [`lines`] returns what arrived.

use std::sync::{Mutex, Once, OnceLock};

use aws_smithy_types::base64;
use cyborgdb_kms::{set_log_callback, LogLevel};

struct State {
    /// (label, needle) pairs: every text form of every secret being watched.
    needles: Vec<(String, String)>,
    lines: Vec<String>,
}

fn state() -> &'static Mutex<State> {
    static STATE: OnceLock<Mutex<State>> = OnceLock::new();
    STATE.get_or_init(|| {
        Mutex::new(State {
            needles: Vec::new(),
            lines: Vec::new(),
        })
    })
}

/// Installs the recording callback at `Trace` (once per binary) and watches for each
/// `(label, secret)`: raw, hex and base64, in whole or in any 18-byte part ([`needles`]).
pub fn watch(secrets: &[(&str, &[u8])]) {
    {
        let mut state = state().lock().unwrap();
        for (label, secret) in secrets {
            if state.needles.iter().any(|(known, _)| known == label) {
                continue;
            }
            let forms = needles(secret);
            state
                .needles
                .extend(forms.into_iter().map(|n| (label.to_string(), n)));
        }
    }
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(|| {
        set_log_callback(LogLevel::Trace, |record| {
            let line = format!(
                "{} {} {}",
                record.level.name(),
                record.target,
                record.message
            );
            let mut state = state().lock().unwrap_or_else(|e| e.into_inner());
            if let Some((label, needle)) = state
                .needles
                .iter()
                .find(|(_, needle)| line.contains(needle.as_str()))
            {
                // Straight to fd 2: the test harness's output capture would be lost in the abort.
                let report = format!("SECRET IN A LOG LINE: {label} ({needle}) in: {line}\n");
                let _ = std::io::Write::write_all(&mut std::io::stderr(), report.as_bytes());
                std::process::abort();
            }
            state.lines.push(line);
        })
        .unwrap();
    });
}

/// Every line the callback received so far (`"LEVEL target message"`).
pub fn lines() -> Vec<String> {
    state().lock().unwrap().lines.clone()
}

/// Every text form of every window of `secret` a leak could take: the raw text (if UTF-8), hex
/// in either case, and base64 (standard and URL-safe) at each of the three alignments a part can
/// have inside a longer encoding. Secrets longer than 18 bytes are cut into every 18-byte window.
pub fn needles(secret: &[u8]) -> Vec<String> {
    const WINDOW: usize = 18;
    let mut out = Vec::new();
    let windows: Vec<&[u8]> = if secret.len() <= WINDOW {
        vec![secret]
    } else {
        secret.windows(WINDOW).collect()
    };
    for part in windows {
        if let Ok(text) = std::str::from_utf8(part) {
            out.push(text.to_owned());
        }
        let hex: String = part.iter().map(|b| format!("{b:02x}")).collect();
        out.push(hex.to_uppercase());
        out.push(hex);
        // Base64 of the part at each of the three alignments it can have inside a longer
        // encoding: the characters that depend only on the part's own bytes.
        for shift in 0..3usize {
            let mut padded = vec![0u8; shift];
            padded.extend_from_slice(part);
            let encoded = base64::encode(&padded);
            let skip = (shift * 4).div_ceil(3) + 1;
            let keep = (part.len() * 4) / 3 - 2;
            if encoded.len() > skip + keep {
                let inner = &encoded[skip..skip + keep];
                out.push(inner.to_owned());
                out.push(inner.replace('+', "-").replace('/', "_"));
            }
        }
    }
    out
}
