//! Single-flight: concurrent misses on one index share one fill (envelope read + unwrap).
//!
//! A caller that misses either leads a new flight or joins the one in progress for the same
//! (store, index) — but only if that flight started under the same [`Ticket`] (no write to the
//! store and no invalidation since), so a caller never receives a KEK read before a change it has
//! already observed. The outcome, success or error, goes to the leader and everyone who joined;
//! then the flight is forgotten, so an error is never served to a later caller.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, PoisonError};

use crate::cache::Ticket;
use crate::error::{Error, ErrorKind, Result};
use crate::kms::Kek;

type FlightKey = (u64, String);

/// The flights in progress, by (store id, index name).
#[derive(Default)]
pub(crate) struct Flights {
    in_progress: Mutex<HashMap<FlightKey, Arc<Flight>>>,
}

struct Flight {
    ticket: Ticket,
    outcome: Mutex<Option<Result<Kek>>>,
    done: Condvar,
}

impl Flights {
    /// Runs `fill` as the leader of a new flight, or waits for the matching flight in progress,
    /// and returns the flight's outcome.
    pub(crate) fn run(
        &self,
        store: u64,
        index: &str,
        ticket: Ticket,
        fill: impl FnOnce() -> Result<Kek>,
    ) -> Result<Kek> {
        let key = (store, index.to_owned());
        let (flight, leader) = {
            let mut in_progress = self
                .in_progress
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            match in_progress.get(&key) {
                Some(flight) if flight.ticket == ticket => (Arc::clone(flight), false),
                _ => {
                    let flight = Arc::new(Flight {
                        ticket,
                        outcome: Mutex::new(None),
                        done: Condvar::new(),
                    });
                    in_progress.insert(key.clone(), Arc::clone(&flight));
                    (flight, true)
                }
            }
        };
        if !leader {
            return flight.wait();
        }
        let landing = Landing {
            flights: self,
            key,
            flight: &flight,
        };
        let outcome = fill();
        landing.complete(outcome.clone());
        outcome
    }
}

impl Flight {
    fn wait(&self) -> Result<Kek> {
        let mut outcome = self.outcome.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(outcome) = outcome.as_ref() {
                return outcome.clone();
            }
            outcome = self
                .done
                .wait(outcome)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// Publishes the leader's outcome and retires the flight — also if the fill panicked, so joined
/// callers are never left waiting.
struct Landing<'a> {
    flights: &'a Flights,
    key: FlightKey,
    flight: &'a Arc<Flight>,
}

impl Landing<'_> {
    fn complete(self, outcome: Result<Kek>) {
        self.publish(outcome);
        // Drop does the retiring.
    }

    fn publish(&self, outcome: Result<Kek>) {
        let mut slot = self
            .flight
            .outcome
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if slot.is_none() {
            *slot = Some(outcome);
        }
        self.flight.done.notify_all();
    }
}

impl Drop for Landing<'_> {
    fn drop(&mut self) {
        self.publish(Err(Error::new(
            ErrorKind::Internal,
            "the KEK resolve this call was waiting for panicked",
        )));
        let mut in_progress = self
            .flights
            .in_progress
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if in_progress
            .get(&self.key)
            .is_some_and(|f| Arc::ptr_eq(f, self.flight))
        {
            in_progress.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Barrier;

    const TICKET: Ticket = Ticket {
        generation: 0,
        epoch: 0,
    };

    #[test]
    fn concurrent_callers_share_one_fill_and_its_error() {
        let flights = Flights::default();
        let fills = AtomicUsize::new(0);
        let entered = Barrier::new(2);
        let release = Barrier::new(2);
        std::thread::scope(|scope| {
            let leader = scope.spawn(|| {
                flights.run(1, "idx", TICKET, || {
                    fills.fetch_add(1, Ordering::SeqCst);
                    entered.wait();
                    release.wait();
                    Err(Error::new(ErrorKind::KmsThrottled, "slow down"))
                })
            });
            entered.wait();
            // The leader is inside its fill: a follower joins (its own fill must not run).
            let follower = scope.spawn(|| {
                flights.run(1, "idx", TICKET, || {
                    fills.fetch_add(1, Ordering::SeqCst);
                    Ok(Kek::generate())
                })
            });
            // Wait until the follower is registered as waiting: it holds a reference to the flight.
            loop {
                let in_progress = flights.in_progress.lock().unwrap();
                if Arc::strong_count(&in_progress[&(1, "idx".to_owned())]) >= 3 {
                    break;
                }
                drop(in_progress);
                std::thread::yield_now();
            }
            release.wait();
            for handle in [leader, follower] {
                let err = handle.join().unwrap().unwrap_err();
                assert_eq!(err.kind(), ErrorKind::KmsThrottled);
            }
        });
        assert_eq!(fills.load(Ordering::SeqCst), 1);
        // The error is not remembered: the next call fills again.
        let kek = flights.run(1, "idx", TICKET, || Ok(Kek::from_slice(&[3; 32]).unwrap()));
        assert_eq!(kek.unwrap().as_bytes(), &[3; 32]);
        assert!(flights.in_progress.lock().unwrap().is_empty());
    }

    #[test]
    fn a_newer_ticket_does_not_join_an_older_flight() {
        let flights = Flights::default();
        let entered = Barrier::new(2);
        let release = Barrier::new(2);
        std::thread::scope(|scope| {
            let old = scope.spawn(|| {
                flights.run(1, "idx", TICKET, || {
                    entered.wait();
                    release.wait();
                    Ok(Kek::from_slice(&[1; 32]).unwrap())
                })
            });
            entered.wait();
            let newer = Ticket {
                generation: 1,
                epoch: 0,
            };
            let kek = flights.run(1, "idx", newer, || Ok(Kek::from_slice(&[2; 32]).unwrap()));
            assert_eq!(kek.unwrap().as_bytes(), &[2; 32]);
            release.wait();
            assert_eq!(old.join().unwrap().unwrap().as_bytes(), &[1; 32]);
        });
        assert!(flights.in_progress.lock().unwrap().is_empty());
    }

    #[test]
    fn a_panicking_leader_releases_its_followers_with_an_internal_error() {
        let flights = Flights::default();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            flights.run(1, "idx", TICKET, || panic!("boom"))
        }));
        assert!(result.is_err());
        // The flight was retired and its outcome set, so nobody can hang on it.
        assert!(flights.in_progress.lock().unwrap().is_empty());
    }
}
