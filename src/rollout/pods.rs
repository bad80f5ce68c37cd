//! Why a revision's pods are not ready, in one sentence, from their status as the kubelet reports it:
//! a container waiting (CrashLoopBackOff, ErrImageNeverPull, ImagePullBackOff, ...), one that keeps
//! exiting, a pod that cannot be scheduled, or a readiness probe that does not pass.

use k8s_openapi::api::core::v1::{ContainerStatus, Pod};

/// The first problem among `pods` (those that are not ready), or `None` when every pod is ready or
/// none says why yet.
pub fn problem(pods: &[Pod]) -> Option<String> {
    let mut sorted: Vec<&Pod> = pods.iter().filter(|p| !is_ready(p)).collect();
    sorted.sort_by_key(|p| p.metadata.name.clone());
    sorted.into_iter().find_map(|p| {
        let why = pod_problem(p)?;
        Some(format!("pod {}: {why}", p.metadata.name.as_deref().unwrap_or("?")))
    })
}

/// Whether the pod's Ready condition is True.
pub fn is_ready(p: &Pod) -> bool {
    let conditions = p.status.as_ref().and_then(|s| s.conditions.as_ref());
    conditions.is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn pod_problem(p: &Pod) -> Option<String> {
    let status = p.status.as_ref()?;
    let containers = status.init_container_statuses.iter().flatten().chain(status.container_statuses.iter().flatten());
    if let Some(why) = containers.clone().find_map(container_problem) {
        return Some(why);
    }
    let conditions = status.conditions.iter().flatten();
    if let Some(c) = conditions.clone().find(|c| c.type_ == "PodScheduled" && c.status == "False") {
        let reason = c.reason.clone().unwrap_or_else(|| "not scheduled".into());
        return Some(
            format!("{reason}: {}", c.message.clone().unwrap_or_default()).trim_end_matches([':', ' ']).to_string(),
        );
    }
    let running_unready = containers.filter(|c| !c.ready && c.state.as_ref().is_some_and(|s| s.running.is_some()));
    running_unready.map(|c| format!("container {} is running but its readiness probe does not pass", c.name)).next()
}

fn container_problem(c: &ContainerStatus) -> Option<String> {
    let state = c.state.as_ref()?;
    let last_exit = c.last_state.as_ref().and_then(|s| s.terminated.as_ref()).map(|t| t.exit_code);
    let restarts = if c.restart_count > 0 { format!(", {} restart(s)", c.restart_count) } else { String::new() };
    let exited = last_exit.map(|code| format!(", last exit code {code}")).unwrap_or_default();
    if let Some(w) = &state.waiting {
        let reason = w.reason.as_deref().unwrap_or("Waiting");
        if matches!(reason, "ContainerCreating" | "PodInitializing") {
            return None;
        }
        let message = w.message.as_deref().map(|m| format!(" ({m})")).unwrap_or_default();
        return Some(format!("container {} {reason}{message}{exited}{restarts}", c.name));
    }
    if let Some(t) = &state.terminated
        && t.exit_code != 0
    {
        let reason = t.reason.as_deref().unwrap_or("Terminated");
        return Some(format!("container {} {reason} with exit code {}{restarts}", c.name, t.exit_code));
    }
    None
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pod(name: &str, status: serde_json::Value) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": name}, "status": status})).unwrap()
    }

    #[test]
    fn says_why_the_first_unready_pod_is_not_ready() {
        let ready = json!({"conditions": [{"type": "Ready", "status": "True"}]});
        let crash = json!({"conditions": [{"type": "Ready", "status": "False"}], "containerStatuses": [{
            "name": "server", "ready": false, "restartCount": 2, "image": "i", "imageID": "",
            "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 20s restarting failed container"}},
            "lastState": {"terminated": {"exitCode": 3}}}]});
        let no_image = json!({"containerStatuses": [{"name": "server", "ready": false, "restartCount": 0, "image": "i",
            "imageID": "", "state": {"waiting": {"reason": "ErrImageNeverPull", "message": "image not present"}}}]});
        let unready = json!({"conditions": [{"type": "Ready", "status": "False"}], "containerStatuses": [{
            "name": "server", "ready": false, "restartCount": 0, "image": "i", "imageID": "",
            "state": {"running": {}}}]});
        let unscheduled = json!({"conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
            "message": "0/2 nodes are available"}]});
        let creating = json!({"containerStatuses": [{"name": "server", "ready": false, "restartCount": 0, "image": "i",
            "imageID": "", "state": {"waiting": {"reason": "ContainerCreating"}}}]});
        // (pods, expected problem)
        let table: Vec<(Vec<Pod>, Option<&str>)> = vec![
            (vec![pod("a", ready.clone())], None),
            (
                vec![pod("a", ready.clone()), pod("b", crash)],
                Some(
                    "pod b: container server CrashLoopBackOff (back-off 20s restarting failed container), last exit code 3, 2 restart(s)",
                ),
            ),
            (vec![pod("c", no_image)], Some("pod c: container server ErrImageNeverPull (image not present)")),
            (vec![pod("d", unready)], Some("pod d: container server is running but its readiness probe does not pass")),
            (vec![pod("e", unscheduled)], Some("pod e: Unschedulable: 0/2 nodes are available")),
            (vec![pod("f", creating)], None),
        ];
        for (pods, want) in table {
            assert_eq!(problem(&pods).as_deref(), want);
        }
    }
}
