//! How many pods each revision runs for a traffic weight.
//!
//! With a traffic router (Gateway API, Istio) the router splits requests, so stable keeps its full
//! size until promotion and the candidate gets the share its weight (or mirror percentage) needs, at
//! least one pod, and none at weight 0. With the `replicas` router there is no router: one Service
//! selects both revisions, so the candidate's share of pods is its share of traffic; the total stays at
//! `spec.replicas`, and stable gives up a pod only for each candidate pod that is ready, so the
//! capacity never drops below `spec.replicas` while the candidate starts.

use crate::api::model_deployment::Router;

/// Pods for the stable and the candidate revision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Split {
    /// Stable pods.
    pub stable: i32,
    /// Candidate pods.
    pub candidate: i32,
}

/// The pods wanted for `replicas` total pods, candidate weight `weight` and mirror percentage `mirror`,
/// once the candidate's pods are ready.
pub fn split(router: Router, replicas: i32, weight: i32, mirror: i32) -> Split {
    let n = replicas.max(1);
    let share = |pct: i32| ((i64::from(n) * i64::from(pct.clamp(0, 100)) + 99) / 100) as i32;
    match router {
        Router::Replicas if weight <= 0 => Split { stable: n, candidate: 0 },
        Router::Replicas if weight >= 100 => Split { stable: 0, candidate: n },
        Router::Replicas => {
            let candidate = share(weight).max(1);
            Split { stable: (n - candidate).max(1), candidate }
        }
        Router::GatewayApi | Router::Istio | Router::Builtin => {
            let pct = weight.max(mirror);
            Split { stable: n, candidate: if pct <= 0 { 0 } else { share(pct).max(1) } }
        }
    }
}

/// The pods to run now, given how many candidate pods are ready: as [`split`], except that under the
/// `replicas` router stable keeps a pod for every candidate pod that is not ready yet.
pub fn running(router: Router, replicas: i32, weight: i32, mirror: i32, candidate_ready: i32) -> Split {
    let want = split(router, replicas, weight, mirror);
    match router {
        Router::Replicas => {
            let serving = candidate_ready.clamp(0, want.candidate);
            Split { stable: want.stable.max(replicas.max(1) - serving), candidate: want.candidate }
        }
        Router::GatewayApi | Router::Istio | Router::Builtin => want,
    }
}

/// The candidate's share of live traffic in percent when `stable` and `candidate` ready pods sit behind
/// one Service (the `replicas` router).
pub fn effective_weight(s: Split) -> i32 {
    let total = s.stable + s.candidate;
    if total == 0 { 0 } else { (100 * s.candidate + total / 2) / total }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits() {
        // (router, replicas, weight, mirror, stable, candidate)
        let table = [
            (Router::Replicas, 4, 0, 0, 4, 0),
            (Router::Replicas, 4, 25, 0, 3, 1),
            (Router::Replicas, 4, 50, 0, 2, 2),
            (Router::Replicas, 4, 60, 0, 1, 3),
            (Router::Replicas, 4, 100, 0, 0, 4),
            (Router::Replicas, 1, 50, 0, 1, 1),
            (Router::Replicas, 3, 1, 0, 2, 1),
            (Router::Replicas, 10, 10, 0, 9, 1),
            (Router::GatewayApi, 4, 10, 0, 4, 1),
            (Router::GatewayApi, 4, 50, 0, 4, 2),
            (Router::GatewayApi, 4, 100, 0, 4, 4),
            (Router::Istio, 4, 0, 100, 4, 4),
            (Router::Istio, 3, 0, 0, 3, 0),
        ];
        for (router, n, w, m, s, c) in table {
            assert_eq!(split(router, n, w, m), Split { stable: s, candidate: c }, "{router:?} n={n} w={w} m={m}");
        }
    }

    #[test]
    fn stable_keeps_a_pod_for_every_candidate_pod_not_ready() {
        // (router, replicas, weight, candidate ready, stable, candidate)
        let table = [
            (Router::Replicas, 4, 50, 0, 4, 2),
            (Router::Replicas, 4, 50, 1, 3, 2),
            (Router::Replicas, 4, 50, 2, 2, 2),
            (Router::Replicas, 4, 50, 9, 2, 2),
            (Router::Replicas, 4, 100, 3, 1, 4),
            (Router::GatewayApi, 4, 50, 0, 4, 2),
        ];
        for (router, n, w, ready, s, c) in table {
            assert_eq!(
                running(router, n, w, 0, ready),
                Split { stable: s, candidate: c },
                "{router:?} w={w} ready={ready}"
            );
        }
    }

    #[test]
    fn effective_weights() {
        assert_eq!(effective_weight(Split { stable: 3, candidate: 1 }), 25);
        assert_eq!(effective_weight(Split { stable: 2, candidate: 1 }), 33);
        assert_eq!(effective_weight(Split { stable: 0, candidate: 4 }), 100);
        assert_eq!(effective_weight(Split { stable: 0, candidate: 0 }), 0);
    }
}
