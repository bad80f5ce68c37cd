//! MLflow tracking (`/api/2.0/mlflow/experiments/...`, `/runs/...`) for retraining runs: an experiment per
//! RetrainPolicy, a run per retraining run and a nested run per trial (MLflow's `mlflow.parentRunId` tag),
//! parameters and metrics logged in batches, the metrics a Job logged read back. Runs are found again by the
//! tag [`RUN_KEY_TAG`] before one is created, so an operator restart never opens a second run for the same
//! retraining run or trial.

use std::collections::BTreeMap;

use reqwest::Method;
use serde::Deserialize;
use serde_json::json;

use super::MlflowClient;
use super::error::RegistryError;

/// The tag that names the retraining run (`<namespace>/<policy>/<run>`) or trial (`.../t<n>`) of an MLflow
/// run.
pub const RUN_KEY_TAG: &str = "champion.ml/key";

#[derive(Deserialize)]
struct ExperimentResponse {
    experiment: Experiment,
}

#[derive(Deserialize)]
struct Experiment {
    experiment_id: String,
}

#[derive(Deserialize)]
struct CreateExperimentResponse {
    experiment_id: String,
}

#[derive(Deserialize)]
struct RunResponse {
    run: Run,
}

#[derive(Deserialize)]
struct SearchRunsResponse {
    #[serde(default)]
    runs: Vec<Run>,
}

#[derive(Deserialize)]
struct Run {
    info: RunInfo,
    #[serde(default)]
    data: RunData,
}

#[derive(Deserialize)]
struct RunInfo {
    run_id: String,
}

#[derive(Deserialize, Default)]
struct RunData {
    #[serde(default)]
    metrics: Vec<Metric>,
}

#[derive(Deserialize)]
struct Metric {
    key: String,
    value: f64,
}

fn parse<T: serde::de::DeserializeOwned>(call: &str, body: &[u8]) -> Result<T, RegistryError> {
    super::mlflow::parse(call, body)
}

fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

fn pairs(m: &BTreeMap<String, String>) -> Vec<serde_json::Value> {
    m.iter().map(|(k, v)| json!({"key": k, "value": v})).collect()
}

impl MlflowClient {
    /// The id of the experiment `name`, created when it does not exist.
    pub async fn experiment_id(&self, name: &str) -> Result<String, RegistryError> {
        const GET: &str = "experiments/get-by-name";
        const CREATE: &str = "experiments/create";
        match self.call(Method::GET, GET, &[("experiment_name", name)], None).await {
            Ok(body) => return Ok(parse::<ExperimentResponse>(&format!("GET {GET}"), &body)?.experiment.experiment_id),
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
        match self.call(Method::POST, CREATE, &[], Some(json!({"name": name}))).await {
            Ok(body) => Ok(parse::<CreateExperimentResponse>(&format!("POST {CREATE}"), &body)?.experiment_id),
            Err(e) if e.is_already_exists() => {
                let body = self.call(Method::GET, GET, &[("experiment_name", name)], None).await?;
                Ok(parse::<ExperimentResponse>(&format!("GET {GET}"), &body)?.experiment.experiment_id)
            }
            Err(e) => Err(e),
        }
    }

    /// The run of `experiment` tagged `key`, or a new one named `name` with `tags` (and nested under
    /// `parent`).
    pub async fn find_or_create_run(
        &self,
        experiment: &str,
        key: &str,
        name: &str,
        parent: Option<&str>,
        tags: &BTreeMap<String, String>,
    ) -> Result<String, RegistryError> {
        const SEARCH: &str = "runs/search";
        const CREATE: &str = "runs/create";
        if key.contains(['\'', '\\']) {
            return Err(RegistryError::Unreachable {
                call: SEARCH.into(),
                cause: format!("the key {key:?} cannot be quoted"),
            });
        }
        let filter = format!("tags.`{RUN_KEY_TAG}` = '{key}'");
        let body = self
            .call(
                Method::POST,
                SEARCH,
                &[],
                Some(json!({"experiment_ids": [experiment], "filter": filter, "max_results": 1})),
            )
            .await?;
        if let Some(run) = parse::<SearchRunsResponse>(&format!("POST {SEARCH}"), &body)?.runs.into_iter().next() {
            return Ok(run.info.run_id);
        }
        let mut all = tags.clone();
        all.insert(RUN_KEY_TAG.into(), key.into());
        all.insert("mlflow.runName".into(), name.into());
        if let Some(p) = parent {
            all.insert("mlflow.parentRunId".into(), p.into());
        }
        let request =
            json!({"experiment_id": experiment, "run_name": name, "start_time": now_ms(), "tags": pairs(&all)});
        let body = self.call(Method::POST, CREATE, &[], Some(request)).await?;
        Ok(parse::<RunResponse>(&format!("POST {CREATE}"), &body)?.run.info.run_id)
    }

    /// Logs metrics (at step 0, now), parameters and tags to `run` in one call.
    pub async fn log_batch(
        &self,
        run: &str,
        metrics: &BTreeMap<String, f64>,
        params: &BTreeMap<String, String>,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), RegistryError> {
        const CALL: &str = "runs/log-batch";
        let at = now_ms();
        let metrics: Vec<_> =
            metrics.iter().map(|(k, v)| json!({"key": k, "value": v, "timestamp": at, "step": 0})).collect();
        let request = json!({"run_id": run, "metrics": metrics, "params": pairs(params), "tags": pairs(tags)});
        let body = self.call(Method::POST, CALL, &[], Some(request)).await?;
        super::mlflow::parse_empty(&format!("POST {CALL}"), &body)
    }

    /// The latest value of each metric of `run`.
    pub async fn run_metrics(&self, run: &str) -> Result<BTreeMap<String, f64>, RegistryError> {
        const CALL: &str = "runs/get";
        let body = self.call(Method::GET, CALL, &[("run_id", run)], None).await?;
        let r = parse::<RunResponse>(&format!("GET {CALL}"), &body)?;
        Ok(r.run.data.metrics.into_iter().map(|m| (m.key, m.value)).collect())
    }

    /// Ends `run` with `status` (`FINISHED`, `FAILED` or `KILLED`).
    pub async fn end_run(&self, run: &str, status: &str) -> Result<(), RegistryError> {
        const CALL: &str = "runs/update";
        let request = json!({"run_id": run, "status": status, "end_time": now_ms()});
        let body = self.call(Method::POST, CALL, &[], Some(request)).await?;
        let _: serde_json::Value = parse(&format!("POST {CALL}"), &body)?;
        Ok(())
    }
}
