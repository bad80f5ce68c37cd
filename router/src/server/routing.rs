//! A configuration resolved once for serving: parsed addresses, the split schedule, the sticky hash inputs, the
//! shadows' samplers and concurrency caps, the metric handles. A reload builds a new one and swaps it in whole.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use http::HeaderMap;
use http::header::HeaderName;
use http::uri::Authority;
use tokio::sync::Semaphore;

use crate::compare::FieldPath;
use crate::config::{CompareMode, RouterConfig, authority_of};
use crate::split::{Sampler, Split, stable_hash, sticky_pick};

use super::metrics::{Metrics, VariantMetrics};

/// A live backend ready to serve.
pub struct LiveBackend {
    /// The variant's name.
    pub name: Arc<str>,
    /// Where it listens.
    pub authority: Authority,
    /// The model version it serves.
    pub model_version: Option<Arc<str>>,
    /// Its metric series.
    pub metrics: VariantMetrics,
}

/// A shadow backend ready to receive copies.
pub struct ShadowBackend {
    /// The shadow's name.
    pub name: Arc<str>,
    /// Where it listens.
    pub authority: Authority,
    /// The model version it serves.
    pub model_version: Option<Arc<str>>,
    /// Which requests are copied.
    pub sampler: Sampler,
    /// The copies in flight; kept across reloads while the cap is unchanged, so a reload cannot double the load.
    pub in_flight: Arc<Semaphore>,
    max_concurrency: u32,
    /// The largest request body copied and the largest answer compared.
    pub max_body: usize,
    /// How long a copy may take, answer and comparison included.
    pub timeout: Duration,
    /// Stops copies for a while to a shadow that gives no answers.
    pub breaker: Breaker,
}

/// Consecutive copies without an answer (refused, reset, timed out) after which a shadow is taken as down.
const DOWN_AFTER: u32 = 5;
/// How long a shadow taken as down gets no copies; then copies are tried again.
const DOWN_FOR: Duration = Duration::from_secs(1);

/// A circuit breaker for one shadow, so a shadow that is down costs a connection attempt per second, not per request.
#[derive(Debug, Default)]
pub struct Breaker {
    failures: AtomicU32,
    open_until_ms: AtomicU64,
}

fn now_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_millis() as u64
}

impl Breaker {
    /// Whether copies are held back now.
    pub fn is_open(&self) -> bool {
        self.is_open_at(now_ms())
    }

    /// The shadow answered (whatever the status).
    pub fn answered(&self) {
        self.failures.store(0, Ordering::Relaxed);
    }

    /// The shadow gave no answer.
    pub fn failed(&self) {
        self.failed_at(now_ms());
    }

    fn is_open_at(&self, now_ms: u64) -> bool {
        now_ms < self.open_until_ms.load(Ordering::Relaxed)
    }

    fn failed_at(&self, now_ms: u64) {
        if self.failures.fetch_add(1, Ordering::Relaxed) + 1 >= DOWN_AFTER {
            self.open_until_ms.store(now_ms + DOWN_FOR.as_millis() as u64, Ordering::Relaxed);
        }
    }
}

/// The comparison of shadow and live answers.
pub struct Comparator {
    /// Where the compared value sits.
    pub path: FieldPath,
    /// How the values are compared.
    pub mode: CompareMode,
}

/// Everything a request needs from the configuration.
pub struct Routing {
    /// The configuration this was built from (shown on the admin port).
    pub config: RouterConfig,
    /// The live backends, in configuration order.
    pub backends: Vec<LiveBackend>,
    split: Split,
    sticky: Option<(HeaderName, Vec<(u64, u32)>)>,
    /// The shadows.
    pub shadows: Vec<Arc<ShadowBackend>>,
    /// The comparison, when configured.
    pub comparator: Option<Arc<Comparator>>,
    /// Where the predicted label sits, for feedback.
    pub label_path: Option<FieldPath>,
    /// Which predictions have their bodies logged.
    pub body_sampler: Sampler,
    /// The cap on a logged body.
    pub log_body_bytes: usize,
    /// The feedback window's size.
    pub window_size: usize,
    /// How long a live backend has to send its response headers.
    pub timeout: Duration,
}

impl Routing {
    /// Resolves a validated configuration; `previous` lends its shadows' concurrency caps; an address
    /// found in `resolve` is reached at the address it maps to.
    pub fn build(
        config: RouterConfig,
        metrics: &Metrics,
        previous: Option<&Routing>,
        resolve: &BTreeMap<String, String>,
    ) -> Result<Routing, String> {
        let authority = |address: &str| {
            let configured = authority_of(address);
            let reached = resolve.get(configured).map_or(configured, String::as_str);
            Authority::from_str(reached).map_err(|e| format!("address {address:?}: {e}"))
        };
        let version = |v: &Option<String>| v.as_deref().map(Arc::from);
        let backends = config
            .backends
            .iter()
            .map(|b| {
                Ok(LiveBackend {
                    name: Arc::from(b.name.as_str()),
                    authority: authority(&b.address)?,
                    model_version: version(&b.model_version),
                    metrics: metrics.variant(&b.name),
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let weights: Vec<u32> = config.backends.iter().map(|b| b.weight).collect();
        if weights.iter().all(|&w| w == 0) {
            return Err("no backend has a weight above 0".into());
        }
        let sticky = match &config.sticky {
            Some(s) => {
                let header = HeaderName::from_str(&s.header).map_err(|e| format!("sticky.header: {e}"))?;
                let ids = config.backends.iter().map(|b| (stable_hash(b.name.as_bytes()), b.weight)).collect();
                Some((header, ids))
            }
            None => None,
        };
        let shadows = config
            .shadows
            .iter()
            .map(|s| {
                let kept = previous.and_then(|p| {
                    p.shadows.iter().find(|o| *o.name == *s.name && o.max_concurrency == s.max_concurrency)
                });
                let in_flight = match kept {
                    Some(o) => o.in_flight.clone(),
                    None => Arc::new(Semaphore::new(s.max_concurrency as usize)),
                };
                metrics.shadow(&s.name);
                Ok(Arc::new(ShadowBackend {
                    name: Arc::from(s.name.as_str()),
                    authority: authority(&s.address)?,
                    model_version: version(&s.model_version),
                    sampler: Sampler::new(s.mirror_percent),
                    in_flight,
                    max_concurrency: s.max_concurrency,
                    max_body: usize::try_from(s.max_body_bytes).unwrap_or(usize::MAX),
                    timeout: Duration::from_millis(s.timeout_ms),
                    breaker: Breaker::default(),
                }))
            })
            .collect::<Result<Vec<_>, String>>()?;
        let comparator = match &config.comparison {
            Some(c) => Some(Arc::new(Comparator { path: FieldPath::parse(&c.path)?, mode: c.mode.clone() })),
            None => None,
        };
        let label_path = config.label_path().map(FieldPath::parse).transpose()?;
        let log = &config.prediction_log;
        Ok(Routing {
            split: Split::new(&weights),
            sticky,
            backends,
            shadows,
            comparator,
            label_path,
            body_sampler: Sampler::new(log.body_sample_percent),
            log_body_bytes: usize::try_from(log.max_body_bytes).unwrap_or(usize::MAX),
            window_size: config.feedback.window_size as usize,
            timeout: Duration::from_millis(config.upstream.timeout_ms),
            config,
        })
    }

    /// The backend for a request: by the sticky header when configured and present, else by the split.
    pub fn choose(&self, headers: &HeaderMap) -> usize {
        if let Some((header, ids)) = &self.sticky
            && let Some(value) = headers.get(header)
            && let Some(i) = sticky_pick(value.as_bytes(), ids)
        {
            return i;
        }
        self.split.pick()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shadow_without_answers_is_held_back_for_a_while_then_tried_again() {
        let b = Breaker::default();
        for _ in 1..DOWN_AFTER {
            b.failed_at(1000);
        }
        assert!(!b.is_open_at(1000), "a few failures are not enough");
        b.answered();
        for _ in 1..DOWN_AFTER {
            b.failed_at(1000);
        }
        assert!(!b.is_open_at(1000), "an answer starts the count again");
        b.failed_at(1000);
        assert!(b.is_open_at(1000) && b.is_open_at(1999));
        assert!(!b.is_open_at(2000), "tried again after DOWN_FOR");
        // Still failing: the next failure opens it again at once.
        b.failed_at(2000);
        assert!(b.is_open_at(2500));
    }

    #[test]
    fn counters_of_configured_variants_and_shadows_start_at_zero() {
        let config = RouterConfig::parse(
            r#"{"backends": [{"name": "candidate", "address": "c:80", "weight": 1}],
                "shadows": [{"name": "mirror", "address": "m:80"}]}"#,
        )
        .unwrap();
        let metrics = Metrics::new();
        Routing::build(config, &metrics, None, &BTreeMap::new()).unwrap();
        let text = metrics.render();
        for line in [
            r#"champion_router_feedback_total{outcome="correct",variant="candidate"} 0"#,
            r#"champion_router_feedback_total{outcome="incorrect",variant="candidate"} 0"#,
            r#"champion_router_requests_total{class="5xx",variant="candidate"} 0"#,
            r#"champion_router_shadow_comparisons_total{outcome="agree",shadow="mirror"} 0"#,
            r#"champion_router_shadow_comparisons_total{outcome="disagree",shadow="mirror"} 0"#,
            r#"champion_router_shadow_responses_total{class="failed",shadow="mirror"} 0"#,
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing from\n{text}");
        }
    }

    #[test]
    fn resolve_overrides_only_the_addresses_it_names() {
        let config = RouterConfig::parse(
            r#"{"backends": [{"name": "stable", "address": "fraud-primary.ml.svc:8080", "weight": 1},
                             {"name": "candidate", "address": "http://fraud-candidate.ml.svc:8080", "weight": 1}],
                "shadows": [{"name": "mirror", "address": "fraud-mirror.ml.svc:8080"}]}"#,
        )
        .unwrap();
        let resolve = BTreeMap::from([
            ("fraud-primary.ml.svc:8080".to_string(), "127.0.0.1:18080".to_string()),
            ("fraud-candidate.ml.svc:8080".to_string(), "127.0.0.2:18081".to_string()),
        ]);
        let r = Routing::build(config, &Metrics::new(), None, &resolve).unwrap();
        let live: Vec<String> = r.backends.iter().map(|b| b.authority.to_string()).collect();
        assert_eq!(live, ["127.0.0.1:18080", "127.0.0.2:18081"]);
        assert_eq!(r.shadows[0].authority.to_string(), "fraud-mirror.ml.svc:8080");
        // What the admin port shows is the configuration as written.
        assert_eq!(r.config.backends[0].address, "fraud-primary.ml.svc:8080");
    }
}
