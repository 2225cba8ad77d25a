//! `cyborgdb-kms`: the operators' command line for CyborgDB KMS envelope stores — list, show,
//! verify, drift, re-wrap (resumable), create, delete, copy, export and import — through the
//! library's Rust API and its trust rules (the registry picks keys, never stored data). The CLI
//! itself only parses arguments, prints, shows progress and keeps the re-wrap journal.
//! Reference: docs/cli.md. Exit status: 0 all done, 1 some items failed, 2 usage or config.

mod audit;
mod bulk;
mod commands;
mod journal;
mod report;
mod store;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{ArgGroup, Parser, Subcommand};

use report::{CliError, EXIT_FAILED, EXIT_USAGE};
use store::{KmsArgs, S3Args};

/// Operate CyborgDB KMS envelope stores: inspect, verify, rotate and migrate per-index KEK envelopes.
#[derive(Parser, Debug)]
#[command(name = "cyborgdb-kms", version, about, max_term_width = 100)]
pub struct Cli {
    /// The envelope store: file:///path (or a path), s3://bucket/prefix, or memory:.
    #[arg(long, global = true, env = "CYBORGDB_KMS_STORE", value_name = "URL")]
    pub store: Option<String>,
    /// Print one JSON document (export: JSON lines) instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    /// No progress output on stderr.
    #[arg(long, short, global = true)]
    pub quiet: bool,
    /// Record every change this command makes in the store's hash-chained custody audit log
    /// (also on when the registry's top-level `audit:` setting is present).
    #[arg(long, global = true)]
    pub audit: bool,
    /// The principal audit records name (default: the registry's `audit.principal`, else
    /// `cyborgdb-kms:$USER`, or `cyborgdb-kms`). Never a credential.
    #[arg(
        long,
        global = true,
        value_name = "PRINCIPAL",
        env = "CYBORGDB_KMS_ACTOR"
    )]
    pub actor: Option<String>,
    #[command(flatten)]
    pub s3: S3Args,
    #[command(flatten)]
    pub kms: KmsArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// List the indexes with a stored envelope.
    List,
    /// Show one envelope's fields (the wrapped KEK as length and SHA-256 fingerprint only).
    Show {
        /// The index.
        index: String,
    },
    /// Decode envelopes; with --unwrap, prove each KEK unwraps through its slot (never printed).
    Verify {
        /// Indexes to verify (default: all).
        #[arg(conflicts_with = "all")]
        indexes: Vec<String>,
        /// Every stored envelope (the default).
        #[arg(long)]
        all: bool,
        /// Also unwrap each KEK through its registry slot (needs --registry).
        #[arg(long)]
        unwrap: bool,
        /// Worker threads (1..=256).
        #[arg(long, default_value_t = 8)]
        parallel: usize,
    },
    /// Compare every envelope's key with its registry slot; --rewrap re-wraps drifted ones.
    Drift {
        /// Re-wrap each drifted index under its slot's current key.
        #[arg(long)]
        rewrap: bool,
    },
    /// Re-wrap KEKs under slot SLOT (same KEK, version + 1), resumably (see --journal).
    #[command(group(ArgGroup::new("which").required(true).args(["indexes", "all", "from_key"])))]
    Rewrap {
        /// The registry slot to wrap under.
        #[arg(long, value_name = "SLOT")]
        to: String,
        /// Indexes to re-wrap.
        indexes: Vec<String>,
        /// Every stored envelope (provider none is skipped).
        #[arg(long)]
        all: bool,
        /// Every envelope whose stored key_id is KEY.
        #[arg(long, value_name = "KEY")]
        from_key: Option<String>,
        /// Worker threads (1..=256).
        #[arg(long, default_value_t = 8)]
        parallel: usize,
        /// Show what would be re-wrapped; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// The journal that makes a re-run continue where this one stopped.
        #[arg(long, value_name = "PATH", default_value = journal::DEFAULT_JOURNAL)]
        journal: PathBuf,
        /// Discard what the journal recorded and start a new re-wrap.
        #[arg(long)]
        fresh: bool,
    },
    /// Create a KMS-backed index: a fresh KEK wrapped through slot S (the KEK is not printed).
    Create {
        /// The index.
        index: String,
        /// The registry slot to wrap the KEK through.
        #[arg(long, value_name = "S")]
        slot: String,
    },
    /// Delete an index's envelope (its KEK is lost unless the envelope is backed up).
    Delete {
        /// The index.
        index: String,
        /// Confirm the deletion.
        #[arg(long)]
        yes: bool,
    },
    /// Copy envelopes between stores, verified, never overwriting a newer envelope.
    Copy {
        /// Source store URL.
        #[arg(long, value_name = "URL")]
        from: String,
        /// Target store URL.
        #[arg(long, value_name = "URL")]
        to: String,
        /// Indexes to copy (default: all).
        indexes: Vec<String>,
        /// Worker threads (1..=256).
        #[arg(long, default_value_t = 8)]
        parallel: usize,
    },
    /// Write envelopes as JSON lines (wrapped KEK in base64; no other key material).
    Export {
        /// Indexes to export (default: all).
        indexes: Vec<String>,
        /// Write to FILE instead of stdout.
        #[arg(long, short, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Read envelopes from JSON lines (as export writes them), never overwriting a newer one.
    Import {
        /// The file to read ("-": stdin).
        #[arg(default_value = "-")]
        file: PathBuf,
    },
    /// The store's custody audit log: verify its hash chain, show or export records.
    #[command(subcommand)]
    Audit(AuditCommand),
}

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Walk the hash chain; report the first break (changed, removed, reordered, truncated, fork).
    Verify,
    /// The last N records.
    Tail {
        /// How many records.
        #[arg(short = 'n', long, default_value_t = 20)]
        lines: usize,
    },
    /// Every record from seq FROM on, as the stored JSON lines (hash-chained, no key material).
    Export {
        /// The first seq.
        #[arg(long, default_value_t = 0)]
        from: u64,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_USAGE } else { 0 });
        }
    };
    match commands::run(&cli) {
        Ok(code) => ExitCode::from(code),
        Err(CliError::Usage(message)) => {
            eprintln!("cyborgdb-kms: {message}");
            ExitCode::from(EXIT_USAGE)
        }
        Err(CliError::Failed(e)) => {
            eprintln!("cyborgdb-kms: {}: {}", report::code_name(&e), e.message());
            ExitCode::from(EXIT_FAILED)
        }
    }
}
