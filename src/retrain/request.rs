//! The RetrainPolicy's requests, in the `champion.ml/request` annotation like the ModelDeployment's verbs
//! and consumed once (the value acted on is kept in `status.lastRequest`): `retrain/<id>` starts a run,
//! `promote-run:<run>/<id>` promotes a run that waits in `Evaluated`.

/// A request to a RetrainPolicy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Start a run now (`kubectl champion retrain NAME`).
    Retrain,
    /// Promote this run's candidate (`kubectl champion promote-run NAME RUN`).
    PromoteRun(String),
}

/// Parses an annotation value; the error says what a RetrainPolicy takes.
pub fn parse(raw: &str) -> Result<Request, String> {
    let bad = || format!("invalid request {raw:?}: a RetrainPolicy takes retrain/<id> or promote-run:<run>/<id>");
    let (body, id) = raw.rsplit_once('/').ok_or_else(bad)?;
    if id.is_empty() {
        return Err(bad());
    }
    match body.split_once(':') {
        None if body == "retrain" => Ok(Request::Retrain),
        Some(("promote-run", run)) if !run.is_empty() => Ok(Request::PromoteRun(run.to_string())),
        _ => Err(bad()),
    }
}

/// The annotation value of a request with a fresh id.
pub fn format(request: &Request, id: &str) -> String {
    match request {
        Request::Retrain => format!("retrain/{id}"),
        Request::PromoteRun(run) => format!("promote-run:{run}/{id}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests() {
        for r in [Request::Retrain, Request::PromoteRun("r-0002".into())] {
            assert_eq!(parse(&format(&r, "17")), Ok(r));
        }
        for raw in ["retrain", "retrain/", "promote-run:/1", "promote/1", "stop/2"] {
            assert!(parse(raw).unwrap_err().contains("retrain/<id> or promote-run:<run>/<id>"), "{raw}");
        }
    }
}
