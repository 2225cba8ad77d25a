//! Per-index unwrap counts for the custody audit (issue #12): the resolver counts the KEKs it
//! unwraps through a provider, per (store, index), and appends one `unwraps` record per index
//! per interval instead of one record per unwrap.
//!
//! Only cache fills touch this (a hit never does): one short mutex section per provider unwrap,
//! never held while a record is appended. A window opens at the first unwrap of an index, counts
//! every unwrap after it, and is closed by the first unwrap at or after `since + interval` (that
//! one included), by [`UnwrapCounts::take_all`] (flush, resolver drop), or early when the number
//! of open windows reaches [`MAX_WINDOWS`] (the oldest half is closed). Closed windows are handed
//! back as [`Due`] counts for the caller to append with no lock held.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use crate::audit::{self, Auditor};
use crate::storage::StorageConfig;

/// Most indexes counted at once; when reached, the oldest half of the windows is closed early.
pub(crate) const MAX_WINDOWS: usize = 100_000;

/// One open window of counts.
struct Window {
    /// The audited store the record goes to (its auditor set the interval).
    store: StorageConfig,
    auditor: Arc<Auditor>,
    since_ms: u64,
    interval_ms: u64,
    count: u64,
}

/// Counts of a closed window, to append.
pub(crate) struct Due {
    store: StorageConfig,
    index: String,
    count: u64,
    since_ms: u64,
    until_ms: u64,
}

impl Due {
    /// Appends the `unwraps` record (best effort: a failure is logged). Returns whether it was.
    pub(crate) fn append(self) -> bool {
        audit::record_unwraps(
            &self.store,
            &self.index,
            self.count,
            self.since_ms,
            self.until_ms,
        )
    }
}

/// The open windows of one resolver.
pub(crate) struct UnwrapCounts {
    windows: Mutex<HashMap<(u64, String), Window>>,
    max_windows: usize,
}

impl Default for UnwrapCounts {
    fn default() -> Self {
        UnwrapCounts::with_max_windows(MAX_WINDOWS)
    }
}

impl UnwrapCounts {
    pub(crate) fn with_max_windows(max_windows: usize) -> Self {
        UnwrapCounts {
            windows: Mutex::default(),
            max_windows: max_windows.max(2),
        }
    }

    /// Counts one provider unwrap of `index` for `store` (audited by `auditor`, whose interval is
    /// `auditor.unwrap_counts()`; nothing is counted without one) at `now_ms`, and returns the
    /// windows it closed: this index's if its interval has elapsed, another auditor's window of
    /// the same index (the audit setting changed), and the oldest windows if there were too many.
    pub(crate) fn note(
        &self,
        store: &StorageConfig,
        auditor: &Arc<Auditor>,
        index: &str,
        now_ms: u64,
    ) -> Vec<Due> {
        let Some(interval) = auditor.unwrap_counts() else {
            return Vec::new();
        };
        let interval_ms = u64::try_from(interval.as_millis()).unwrap_or(u64::MAX);
        let key = (store.location().id(), index.to_owned());
        let mut due = Vec::new();
        let mut windows = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(window) = windows.get_mut(&key) {
            if Arc::ptr_eq(&window.auditor, auditor) {
                window.count += 1;
                if now_ms.saturating_sub(window.since_ms) >= window.interval_ms {
                    if let Some(window) = windows.remove(&key) {
                        due.push(close(key.1, window, now_ms));
                    }
                }
                return due;
            }
            if let Some(window) = windows.remove(&key) {
                due.push(close(key.1.clone(), window, now_ms));
            }
        }
        if windows.len() >= self.max_windows {
            close_oldest_half(&mut windows, now_ms, &mut due);
        }
        windows.insert(
            key,
            Window {
                store: store.clone(),
                auditor: Arc::clone(auditor),
                since_ms: now_ms,
                interval_ms,
                count: 1,
            },
        );
        due
    }

    /// Closes every open window at `now_ms`.
    pub(crate) fn take_all(&self, now_ms: u64) -> Vec<Due> {
        let windows =
            std::mem::take(&mut *self.windows.lock().unwrap_or_else(PoisonError::into_inner));
        windows
            .into_iter()
            .map(|(key, window)| close(key.1, window, now_ms))
            .collect()
    }

    /// How many windows are open.
    #[cfg(test)]
    fn open(&self) -> usize {
        self.windows
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

fn close(index: String, window: Window, now_ms: u64) -> Due {
    Due {
        store: window.store,
        index,
        count: window.count,
        since_ms: window.since_ms,
        until_ms: now_ms.max(window.since_ms),
    }
}

/// Closes the older half of `windows` (by the time they opened; half rounded up) into `due`.
fn close_oldest_half(
    windows: &mut HashMap<(u64, String), Window>,
    now_ms: u64,
    due: &mut Vec<Due>,
) {
    let closing = windows.len() - windows.len() / 2;
    let mut by_start: Vec<(u64, (u64, String))> = windows
        .iter()
        .map(|(key, window)| (window.since_ms, key.clone()))
        .collect();
    if closing < by_start.len() {
        by_start.select_nth_unstable_by_key(closing, |(since_ms, _)| *since_ms);
    }
    for (_, key) in by_start.into_iter().take(closing) {
        if let Some(window) = windows.remove(&key) {
            due.push(close(key.1, window, now_ms));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::AuditOptions;
    use std::time::Duration;

    fn auditor(seconds: Option<u64>) -> Arc<Auditor> {
        let mut options = AuditOptions::new("svc");
        options.unwrap_counts = seconds.map(Duration::from_secs);
        Auditor::new(&options).unwrap()
    }

    fn counts(due: &[Due]) -> Vec<(String, u64, u64, u64)> {
        let mut out: Vec<_> = due
            .iter()
            .map(|d| (d.index.clone(), d.count, d.since_ms, d.until_ms))
            .collect();
        out.sort();
        out
    }

    #[test]
    fn a_window_closes_at_the_first_unwrap_after_its_interval() {
        let counts_of = UnwrapCounts::default();
        let store = StorageConfig::memory();
        let auditor = auditor(Some(60));
        for t in [1_000, 2_000, 60_999] {
            assert!(counts_of.note(&store, &auditor, "a", t).is_empty());
        }
        assert!(counts_of.note(&store, &auditor, "b", 30_000).is_empty());
        let due = counts_of.note(&store, &auditor, "a", 61_000);
        assert_eq!(counts(&due), [("a".to_owned(), 4, 1_000, 61_000)]);
        // The next unwrap of "a" opens a new window; "b"'s is still open.
        assert!(counts_of.note(&store, &auditor, "a", 61_001).is_empty());
        let due = counts_of.take_all(70_000);
        assert_eq!(
            counts(&due),
            [
                ("a".to_owned(), 1, 61_001, 70_000),
                ("b".to_owned(), 1, 30_000, 70_000)
            ]
        );
        assert_eq!(counts_of.open(), 0);
    }

    #[test]
    fn nothing_is_counted_without_an_interval_and_stores_are_apart() {
        let counts_of = UnwrapCounts::default();
        let (one, two) = (StorageConfig::memory(), StorageConfig::memory());
        assert!(counts_of.note(&one, &auditor(None), "a", 1).is_empty());
        assert_eq!(counts_of.open(), 0);
        let auditor = auditor(Some(1));
        counts_of.note(&one, &auditor, "a", 1);
        counts_of.note(&two, &auditor, "a", 2);
        counts_of.note(&one.clone(), &auditor, "a", 3);
        let due = counts_of.take_all(4);
        assert_eq!(
            counts(&due),
            [("a".to_owned(), 1, 2, 4), ("a".to_owned(), 2, 1, 4)]
        );
    }

    #[test]
    fn a_new_audit_setting_closes_the_old_settings_window() {
        let counts_of = UnwrapCounts::default();
        let store = StorageConfig::memory();
        let (first, second) = (auditor(Some(60)), auditor(Some(60)));
        counts_of.note(&store, &first, "a", 1);
        counts_of.note(&store, &first, "a", 2);
        let due = counts_of.note(&store, &second, "a", 3);
        assert_eq!(counts(&due), [("a".to_owned(), 2, 1, 3)]);
        assert_eq!(counts(&counts_of.take_all(4)), [("a".to_owned(), 1, 3, 4)]);
    }

    #[test]
    fn too_many_windows_close_the_oldest_half_early() {
        let counts_of = UnwrapCounts::with_max_windows(10);
        let store = StorageConfig::memory();
        let auditor = auditor(Some(86_400));
        for i in 0..10u64 {
            assert!(counts_of
                .note(&store, &auditor, &format!("i{i}"), 100 + i)
                .is_empty());
        }
        let due = counts_of.note(&store, &auditor, "new", 200);
        let closed = counts(&due);
        assert_eq!(closed.len(), 5);
        assert!(closed
            .iter()
            .all(|(_, count, since, until)| *count == 1 && *since < 105 && *until == 200));
        assert_eq!(counts_of.open(), 6);
        // Nothing was lost: every unwrap is in a closed window or a still open one.
        let rest: u64 = counts_of.take_all(300).iter().map(|d| d.count).sum();
        assert_eq!(rest + 5, 11);
    }
}
