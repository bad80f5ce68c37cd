//! Whether the operator is ready: every controller has its cache synced (its first list of the watched
//! objects is in its store, which is also when kube-runtime lets its reconciles run), and the process is
//! not shutting down. `/readyz` answers from here.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use kube::runtime::watcher;

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

/// Which of one controller's watch streams (its own kind's and those of the caches it reads) have
/// delivered their first full list, a watcher's first `InitDone`.
///
/// Any number of tasks may [`Synced::wait`]: it is a `tokio::sync::watch`. Waiting on a reflector
/// `Store`'s own readiness instead is unsafe beside kube-runtime, which waits on the controller's store
/// itself: that readiness wakes only the last task that polled it, so a second waiter can leave the
/// controller's reconciles parked.
#[derive(Clone, Debug)]
pub struct Synced {
    /// How many streams are tracked.
    expected: Arc<AtomicUsize>,
    /// How many of them have listed once.
    done: Arc<tokio::sync::watch::Sender<usize>>,
}

impl Default for Synced {
    fn default() -> Self {
        Self { expected: Arc::default(), done: Arc::new(tokio::sync::watch::Sender::new(0)) }
    }
}

impl Synced {
    /// Tracks one more watch stream: pass the returned function to `inspect_ok` on the stream (after
    /// its `reflector`, so the store holds the list when the stream counts as synced). Every stream must
    /// be tracked before anything waits.
    pub fn track<K>(&self) -> impl FnMut(&watcher::Event<K>) + Send + 'static {
        self.expected.fetch_add(1, Ordering::SeqCst);
        let done = self.done.clone();
        let mut seen = false;
        move |event| {
            if !seen && matches!(event, watcher::Event::InitDone) {
                seen = true;
                done.send_modify(|n| *n += 1);
            }
        }
    }

    /// Whether every tracked stream has listed once.
    pub fn is_synced(&self) -> bool {
        *self.done.borrow() >= self.expected.load(Ordering::SeqCst)
    }

    /// [`Synced::wait`] on a clone, for a future that outlives the borrow.
    pub fn wait_owned(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let s = self.clone();
        async move { s.wait().await }
    }

    /// Waits until every tracked stream has listed once.
    pub async fn wait(&self) {
        let expected = self.expected.load(Ordering::SeqCst);
        let mut rx = self.done.subscribe();
        // The sender lives in `self`, so the channel cannot close while this waits.
        let _ = rx.wait_for(|n| *n >= expected).await;
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

    #[tokio::test]
    async fn synced_once_every_stream_listed_with_many_waiters() {
        use k8s_openapi::api::core::v1::ConfigMap;
        let synced = Synced::default();
        let mut a = synced.track::<ConfigMap>();
        let mut b = synced.track::<ConfigMap>();
        // Many waiters at once: each must wake (a reflector store's readiness would wake only one).
        let waiters: Vec<_> = (0..4)
            .map(|_| {
                let s = synced.clone();
                tokio::spawn(async move { s.wait().await })
            })
            .collect();
        a(&watcher::Event::Init);
        a(&watcher::Event::InitDone);
        assert!(!synced.is_synced(), "one of two streams listed");
        a(&watcher::Event::InitDone); // a relist does not count twice
        assert!(!synced.is_synced());
        b(&watcher::Event::Apply(ConfigMap::default()));
        b(&watcher::Event::InitDone);
        assert!(synced.is_synced());
        for w in waiters {
            tokio::time::timeout(std::time::Duration::from_secs(5), w)
                .await
                .expect("every waiter wakes")
                .expect("waiter task");
        }
    }
}
