//! Bulk work: a bounded pool of worker threads over a list of items, and progress on stderr — a
//! bar on a terminal (rate, ETA, failures so far), plain lines otherwise.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use cyborgdb_kms::resolver::{run_parallel, MAX_WARM_UP_PARALLELISM};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::report::{CliError, ItemResult};

/// Most worker threads of one command: the resolver's warm-up pool bound.
pub const MAX_PARALLEL: usize = MAX_WARM_UP_PARALLELISM;

/// Checks `--parallel`. Errors: a usage error outside 1..=[`MAX_PARALLEL`].
pub fn check_parallel(parallel: usize) -> Result<usize, CliError> {
    if (1..=MAX_PARALLEL).contains(&parallel) {
        Ok(parallel)
    } else {
        Err(CliError::usage(format!(
            "--parallel must be 1..={MAX_PARALLEL}, not {parallel}"
        )))
    }
}

/// Runs `work` on every item with up to `parallel` threads of the resolver's worker pool
/// ([`run_parallel`]: each takes the next unvisited item) and returns the results in item order. Progress is
/// shown under `label` unless `quiet`. Errors: a usage error for a bad `parallel`.
pub fn run<T: Sync>(
    label: &str,
    items: &[T],
    parallel: usize,
    quiet: bool,
    work: impl Fn(&T) -> ItemResult + Sync,
) -> Result<Vec<ItemResult>, CliError> {
    let progress = Progress::new(label, items.len() as u64, quiet);
    let results = run_parallel(items, parallel, |item| {
        let result = work(item);
        progress.record(result.is_failure());
        result
    })
    .map_err(CliError::config)?;
    progress.finish();
    Ok(results)
}

/// Progress of one bulk command on stderr. Thread-safe.
pub struct Progress {
    label: String,
    total: u64,
    done: AtomicUsize,
    failed: AtomicUsize,
    started: Instant,
    display: Display,
}

enum Display {
    Hidden,
    Bar(ProgressBar),
    /// Plain lines, at most one per [`PLAIN_INTERVAL`] (and a last one): the time of the last.
    Lines(Mutex<Instant>),
}

/// How often plain progress lines are written.
const PLAIN_INTERVAL: Duration = Duration::from_secs(1);

impl Progress {
    pub fn new(label: &str, total: u64, quiet: bool) -> Progress {
        let display = if quiet {
            Display::Hidden
        } else if std::io::stderr().is_terminal() {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template(
                "{prefix} [{bar:30}] {pos}/{len} {per_sec} ETA {eta} failed: {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("#>-");
            bar.set_style(style);
            bar.set_prefix(label.to_owned());
            bar.set_message("0");
            Display::Bar(bar)
        } else {
            Display::Lines(Mutex::new(Instant::now()))
        };
        Progress {
            label: label.to_owned(),
            total,
            done: AtomicUsize::new(0),
            failed: AtomicUsize::new(0),
            started: Instant::now(),
            display,
        }
    }

    /// Counts one finished item.
    pub fn record(&self, failed: bool) {
        let done = self.done.fetch_add(1, Ordering::AcqRel) + 1;
        let failures = if failed {
            self.failed.fetch_add(1, Ordering::AcqRel) + 1
        } else {
            self.failed.load(Ordering::Acquire)
        };
        match &self.display {
            Display::Hidden => {}
            Display::Bar(bar) => {
                if failed {
                    bar.set_message(failures.to_string());
                }
                bar.inc(1);
            }
            Display::Lines(last) => {
                let mut last = last.lock().unwrap_or_else(|p| p.into_inner());
                if last.elapsed() >= PLAIN_INTERVAL {
                    *last = Instant::now();
                    self.line(done, failures);
                }
            }
        }
    }

    fn line(&self, done: usize, failed: usize) {
        let elapsed = self.started.elapsed().as_secs_f64();
        let rate = if elapsed > 0.0 {
            done as f64 / elapsed
        } else {
            0.0
        };
        let left = self.total.saturating_sub(done as u64);
        let eta = if rate > 0.0 {
            format!("{:.0}s", left as f64 / rate)
        } else {
            "-".to_owned()
        };
        let _ = writeln!(
            std::io::stderr().lock(),
            "{}: {done}/{} done, {failed} failed, {rate:.1}/s, ETA {eta}",
            self.label,
            self.total
        );
    }

    /// Draws the final state.
    pub fn finish(&self) {
        match &self.display {
            Display::Hidden => {}
            Display::Bar(bar) => bar.finish(),
            Display::Lines(_) => self.line(
                self.done.load(Ordering::Acquire),
                self.failed.load(Ordering::Acquire),
            ),
        }
    }
}
