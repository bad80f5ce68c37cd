//! Whether the operator is ready: every controller has its cache synced (its first list of the watched
//! objects is in its store, which is also when kube-runtime lets its reconciles run), and the process is
//! not shutting down. `/readyz` answers from here.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// The controllers' readiness, shared by the controllers (which report) and `/readyz` (which reads).
#[derive(Debug, Default)]
pub struct Readiness {
    /// How many controllers must sync; 0 until the controllers are started.
    expected: AtomicUsize,
    /// How many have synced.
    synced: AtomicUsize,
    /// Set once shutdown began.
    stopping: AtomicBool,
}

impl Readiness {
    /// Says how many controllers will report; called once, before they start.
    pub fn expect(&self, controllers: usize) {
        self.expected.store(controllers, Ordering::SeqCst);
    }

    /// One controller's cache is synced and its reconciles run.
    pub fn synced(&self) {
        self.synced.fetch_add(1, Ordering::SeqCst);
    }

    /// Shutdown began: not ready any more.
    pub fn stopping(&self) {
        self.stopping.store(true, Ordering::SeqCst);
    }

    /// Whether `/readyz` answers 200.
    pub fn is_ready(&self) -> bool {
        ready(
            self.expected.load(Ordering::SeqCst),
            self.synced.load(Ordering::SeqCst),
            self.stopping.load(Ordering::SeqCst),
        )
    }

    /// A short text for `/readyz`'s body.
    pub fn describe(&self) -> String {
        let (expected, synced) = (self.expected.load(Ordering::SeqCst), self.synced.load(Ordering::SeqCst));
        if self.stopping.load(Ordering::SeqCst) {
            "stopping".into()
        } else if expected == 0 {
            "starting: controllers not started".into()
        } else if synced < expected {
            format!("starting: {synced} of {expected} controllers have synced their caches")
        } else {
            "ok".into()
        }
    }
}

/// The rule: ready once controllers were started and all of them synced, until shutdown.
pub fn ready(expected: usize, synced: usize, stopping: bool) -> bool {
    expected > 0 && synced >= expected && !stopping
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_when_every_controller_synced_and_not_stopping() {
        // (expected, synced, stopping, ready)
        let table = [
            (0, 0, false, false), // process started, controllers not yet
            (3, 0, false, false),
            (3, 2, false, false),
            (3, 3, false, true),
            (3, 3, true, false),
            (6, 3, false, false), // two scopes of three kinds
        ];
        for (expected, synced, stopping, want) in table {
            assert_eq!(ready(expected, synced, stopping), want, "{expected} {synced} {stopping}");
        }
        let r = Readiness::default();
        assert!(!r.is_ready(), "not ready at process start");
        r.expect(2);
        r.synced();
        assert!(!r.is_ready());
        assert!(r.describe().contains("1 of 2"), "{}", r.describe());
        r.synced();
        assert!(r.is_ready());
        r.stopping();
        assert!(!r.is_ready());
    }
}
