//! The bounds of one S3 listing (`ListObjectsV2` page after page), which a hostile or broken
//! server must not be able to stretch forever: no continuation token may come back, the pages
//! and the envelopes collected are capped, and the whole listing has a deadline. (One page is
//! one SDK call, bounded by the attempt and operation timeouts, body included.)
//!
//! Each limit is generous for a real store (the design scale is thousands of indexes per
//! keystore; the resolver's cache holds 100 000 by default) and small enough that a listing ends
//! in bounded time and memory whatever the server sends:
//!
//! | bound | value | a real store needs |
//! |---|---|---|
//! | distinct envelopes collected | [`MAX_LISTED_ENVELOPES`] = 100 000 (at most ~25 MB of keys) | one per index |
//! | pages requested | [`MAX_LISTING_PAGES`] = 1 000 | 1 per 1 000 objects or sub-folders under the prefix (S3's page size), so 1 000 pages hold every envelope at the cap plus 900 000 other entries |
//! | bytes of one continuation token | [`MAX_CONTINUATION_TOKEN_LEN`] = 4 096 | S3's are ~100–200; MinIO's encode a key (≤ ~1 400) |
//! | wall-clock time | [`LISTING_DEADLINE_FACTOR`] (8) × the store's operation timeout: 120 s with the defaults | 1 000 pages at ~100 ms each |
//!
//! Seen tokens are kept as SHA-256 digests, so a server sending long tokens costs 32 bytes a page.
//!
//! Error kinds. A server that sends a listing no real store sends (truncated without a token, a
//! token any earlier page carried, an over-long token), or one longer than the page or envelope
//! limit, is `Io`, like any other malformed answer: asking again gets the same answer, so it is
//! not `StorageUnavailable` (which says "retry later"), and nothing stored is damaged, so it is
//! not `Corrupt` (which says "this envelope is bad"). Running past the deadline is
//! `StorageUnavailable`, like every other timeout: a slow store may answer in time later.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use sha2::{Digest, Sha256};

/// Most distinct envelope keys one listing collects; one more is an error, not a partial list.
pub(super) const MAX_LISTED_ENVELOPES: usize = 100_000;
/// Most `ListObjectsV2` pages one listing requests.
pub(super) const MAX_LISTING_PAGES: usize = 1_000;
/// Longest continuation token accepted (it goes back into the next request's URL).
pub(super) const MAX_CONTINUATION_TOKEN_LEN: usize = 4096;
/// The whole listing must finish within this many operation timeouts.
pub(super) const LISTING_DEADLINE_FACTOR: u32 = 8;

/// The wall-clock bound of one listing: [`LISTING_DEADLINE_FACTOR`] × `operation_timeout`.
pub(super) fn listing_deadline(operation_timeout: Duration) -> Duration {
    operation_timeout.saturating_mul(LISTING_DEADLINE_FACTOR)
}

/// One page as the server sent it: the envelope keys on it (already filtered to the prefix),
/// whether it says more pages follow, and the token for the next one.
pub(super) struct Page {
    pub(super) keys: Vec<String>,
    pub(super) truncated: bool,
    pub(super) next: Option<String>,
}

/// What one listing has collected so far, and the checks that keep it finite. Owned by the one
/// task running the listing (not shared between threads).
pub(super) struct Listing {
    max_pages: usize,
    max_envelopes: usize,
    /// Pages recorded so far.
    pages: usize,
    /// Distinct keys: a key a server repeats (on one page or across pages) is listed once.
    keys: HashSet<String>,
    /// SHA-256 of every continuation token received, with the (1-based) page that carried it.
    tokens: HashMap<[u8; 32], usize>,
}

impl Listing {
    /// A listing bounded by [`MAX_LISTING_PAGES`] and [`MAX_LISTED_ENVELOPES`].
    pub(super) fn new() -> Self {
        Self::with_limits(MAX_LISTING_PAGES, MAX_LISTED_ENVELOPES)
    }

    fn with_limits(max_pages: usize, max_envelopes: usize) -> Self {
        Listing {
            max_pages,
            max_envelopes,
            pages: 0,
            keys: HashSet::new(),
            tokens: HashMap::new(),
        }
    }

    /// Pages recorded so far.
    pub(super) fn pages(&self) -> usize {
        self.pages
    }

    /// Records the next page. Returns the token to request the page after it, or `None` when
    /// the listing is complete.
    ///
    /// Errors (why the listing must stop, for the caller's `IO` error): the page is truncated
    /// without a token, with a token longer than [`MAX_CONTINUATION_TOKEN_LEN`], or with a token
    /// any earlier page carried (a loop); more than `max_envelopes` distinct keys; still
    /// truncated after `max_pages` pages.
    pub(super) fn record(&mut self, page: Page) -> Result<Option<String>, String> {
        self.pages += 1;
        let n = self.pages;
        for key in page.keys {
            self.keys.insert(key);
            if self.keys.len() > self.max_envelopes {
                return Err(format!(
                    "more than {} envelopes under the prefix (page {n}), the most one listing \
                     collects",
                    self.max_envelopes
                ));
            }
        }
        if !page.truncated {
            return Ok(None);
        }
        let Some(next) = page.next else {
            return Err("the listing is truncated but there is no continuation token".into());
        };
        if next.len() > MAX_CONTINUATION_TOKEN_LEN {
            return Err(format!(
                "the listing is truncated but page {n}'s continuation token is {} bytes, more \
                 than {MAX_CONTINUATION_TOKEN_LEN}",
                next.len()
            ));
        }
        let digest: [u8; 32] = Sha256::digest(next.as_bytes()).into();
        if let Some(first) = self.tokens.insert(digest, n) {
            return Err(format!(
                "the listing is truncated but page {n}'s continuation token repeats page \
                 {first}'s (the server is going round in a loop)"
            ));
        }
        if n >= self.max_pages {
            return Err(format!(
                "the listing is still truncated after {n} pages, the most one listing reads"
            ));
        }
        Ok(Some(next))
    }

    /// The distinct keys collected, in no particular order.
    pub(super) fn into_keys(self) -> Vec<String> {
        self.keys.into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(keys: &[&str], truncated: bool, next: Option<&str>) -> Page {
        Page {
            keys: keys.iter().map(|k| k.to_string()).collect(),
            truncated,
            next: next.map(str::to_owned),
        }
    }

    fn sorted(listing: Listing) -> Vec<String> {
        let mut keys = listing.into_keys();
        keys.sort();
        keys
    }

    #[test]
    fn pages_are_followed_until_one_is_not_truncated_and_keys_are_deduplicated() {
        let mut listing = Listing::new();
        assert_eq!(
            listing.record(page(&["a", "b", "a"], true, Some("t1"))),
            Ok(Some("t1".into()))
        );
        assert_eq!(
            listing.record(page(&["b", "c"], true, Some("t2"))),
            Ok(Some("t2".into()))
        );
        // A final page's token (if any) is ignored.
        assert_eq!(listing.record(page(&["c"], false, Some("t1"))), Ok(None));
        assert_eq!(listing.pages(), 3);
        assert_eq!(sorted(listing), ["a", "b", "c"]);
    }

    #[test]
    fn any_earlier_token_coming_back_is_a_loop() {
        let mut listing = Listing::new();
        for (i, token) in ["A", "B", "C"].into_iter().enumerate() {
            assert_eq!(
                listing.record(page(&[], true, Some(token))),
                Ok(Some(token.into())),
                "page {}",
                i + 1
            );
        }
        assert_eq!(
            listing.record(page(&[], true, Some("A"))),
            Err(
                "the listing is truncated but page 4's continuation token repeats page 1's \
                 (the server is going round in a loop)"
                    .into()
            )
        );
    }

    #[test]
    fn a_truncated_page_without_a_token_or_with_an_over_long_one_stops_the_listing() {
        assert_eq!(
            Listing::new().record(page(&["a"], true, None)),
            Err("the listing is truncated but there is no continuation token".into())
        );
        let longest = "t".repeat(MAX_CONTINUATION_TOKEN_LEN);
        assert_eq!(
            Listing::new().record(page(&[], true, Some(&longest))),
            Ok(Some(longest.clone()))
        );
        let over = format!("{longest}t");
        assert_eq!(
            Listing::new().record(page(&[], true, Some(&over))),
            Err(format!(
                "the listing is truncated but page 1's continuation token is 4097 bytes, more \
                 than {MAX_CONTINUATION_TOKEN_LEN}"
            ))
        );
    }

    #[test]
    fn the_page_limit_stops_a_listing_with_fresh_tokens_forever() {
        let mut listing = Listing::with_limits(3, 10);
        assert!(listing.record(page(&[], true, Some("1"))).is_ok());
        assert!(listing.record(page(&[], true, Some("2"))).is_ok());
        assert_eq!(
            listing.record(page(&[], true, Some("3"))),
            Err("the listing is still truncated after 3 pages, the most one listing reads".into())
        );
        // The last allowed page may end the listing.
        let mut listing = Listing::with_limits(2, 10);
        assert!(listing.record(page(&["a"], true, Some("1"))).is_ok());
        assert_eq!(listing.record(page(&["b"], false, None)), Ok(None));
        assert_eq!(sorted(listing), ["a", "b"]);
    }

    #[test]
    fn the_envelope_limit_counts_distinct_keys() {
        let mut listing = Listing::with_limits(10, 2);
        assert!(listing
            .record(page(&["a", "b", "a"], true, Some("1")))
            .is_ok());
        assert!(listing.record(page(&["b", "a"], true, Some("2"))).is_ok());
        assert_eq!(
            listing.record(page(&["a", "c"], false, None)),
            Err(
                "more than 2 envelopes under the prefix (page 3), the most one listing collects"
                    .into()
            )
        );
    }

    #[test]
    fn the_deadline_is_eight_operation_timeouts_and_saturates() {
        assert_eq!(
            listing_deadline(Duration::from_secs(15)),
            Duration::from_secs(120)
        );
        assert_eq!(listing_deadline(Duration::MAX), Duration::MAX);
    }
}
