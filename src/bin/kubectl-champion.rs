//! `kubectl champion`: day-2 verbs for Champion's resources, as a kubectl plugin. I/O only; the views
//! and requests are built in `champion::cli`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};

use champion::api::{Experiment, ModelDeployment, RetrainPolicy};
use champion::names::annotations::REQUEST;
use champion::registry::{BearerToken, MlflowClient, ModelVersion, Registry, VersionSearch};
use champion::retrain::request::Request as RetrainRequest;
use champion::rollout::request::{Request, Verb};
use kube::ResourceExt;

/// Day-2 verbs for Champion's ModelDeployments, Experiments and RetrainPolicies.
#[derive(Parser)]
#[command(name = "kubectl-champion", bin_name = "kubectl champion", version)]
struct Cli {
    /// The namespace (default: the kubeconfig context's).
    #[arg(short, long, global = true)]
    namespace: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show a ModelDeployment: phase, versions, traffic, steps, the last analysis, history.
    Status {
        /// The ModelDeployment's name.
        name: String,
    },
    /// Advance the rollout one step (or leave an indefinite pause); `--full` skips the remaining steps.
    Promote {
        /// The ModelDeployment's name.
        name: String,
        /// Skip every remaining step: the candidate becomes stable now.
        #[arg(long)]
        full: bool,
    },
    /// Send all traffic back to stable and stop the rollout (works in every phase, pauses included).
    Abort {
        /// The ModelDeployment's name.
        name: String,
    },
    /// Start the steps again for a rolled-back candidate.
    Retry {
        /// The ModelDeployment's name.
        name: String,
    },
    /// Serve a previous version at once, without steps.
    Rollback {
        /// The ModelDeployment's name.
        name: String,
        /// The version to go back to (default: the previous stable).
        #[arg(long)]
        to: Option<String>,
    },
    /// Hold the rollout where it is.
    Pause {
        /// The ModelDeployment's name.
        name: String,
    },
    /// Continue a paused rollout.
    Resume {
        /// The ModelDeployment's name.
        name: String,
    },
    /// Read the registry alias that a ModelDeployment follows now, instead of at the next poll.
    Refresh {
        /// The ModelDeployment's name.
        name: String,
    },
    /// Move the registry alias that a ModelDeployment follows to a version (the operator makes the call
    /// with its own registry credentials); a rollout through the steps follows.
    PromoteVersion {
        /// The ModelDeployment's name.
        name: String,
        /// The registry's version number, e.g. 3.
        version: String,
    },
    /// Experiments: status, stop, promote the winner.
    Experiment {
        #[command(subcommand)]
        verb: ExperimentVerb,
    },
    /// Start a run of a RetrainPolicy now (the cooldown and concurrencyPolicy still apply).
    Retrain {
        /// The RetrainPolicy's name.
        name: String,
    },
    /// Promote the candidate of a RetrainPolicy's run that passed its gates and waits in Evaluated.
    PromoteRun {
        /// The RetrainPolicy's name.
        name: String,
        /// The run's id, e.g. r-0003.
        run: String,
    },
    /// Show a RetrainPolicy: phase, triggers, and its runs with trials, gates and decisions.
    Runs {
        /// The RetrainPolicy's name.
        name: String,
    },
    /// List the versions a ModelDeployment served, with when; joined with the registry's tags (rolled-back
    /// versions and their reasons) when the tracking server can be read.
    History {
        /// The ModelDeployment's name.
        name: String,
        /// The MLflow tracking server to read the registry's tags from.
        #[arg(long, env = "MLFLOW_TRACKING_URI")]
        tracking_uri: Option<String>,
        /// A token for it, sent as `Authorization: Bearer`.
        #[arg(long, env = "MLFLOW_TRACKING_TOKEN", hide_env_values = true)]
        token: Option<String>,
    },
}

#[derive(Subcommand)]
enum ExperimentVerb {
    /// Show an Experiment: phase, arms with samples, estimates, intervals and p-values, winner.
    Status {
        /// The Experiment's name.
        name: String,
    },
    /// Stop a running Experiment without a winner (its variants are removed; stable is untouched).
    Stop {
        /// The Experiment's name.
        name: String,
    },
    /// Make the change that promotes a concluded Experiment's winner, for a ModelDeployment that pins its
    /// version (with GitOps, make the change in Git instead; a followed registry alias is moved by the
    /// operator itself).
    Promote {
        /// The Experiment's name.
        name: String,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), String> {
    let client = Client::try_default().await.map_err(|e| format!("cannot load the kubeconfig: {e}"))?;
    let ns = cli.namespace.unwrap_or_else(|| client.default_namespace().to_string());
    match cli.command {
        Command::Status { name } => {
            let md = get(client, &ns, &name).await?;
            print!("{}", champion::cli::status::render(&md));
        }
        Command::Promote { name, full } => {
            request(client, &ns, &name, if full { Verb::PromoteFull } else { Verb::Promote }).await?
        }
        Command::Abort { name } => request(client, &ns, &name, Verb::Abort).await?,
        Command::Retry { name } => request(client, &ns, &name, Verb::Retry).await?,
        Command::Rollback { name, to } => request(client, &ns, &name, Verb::Rollback(to)).await?,
        Command::Pause { name } => request(client, &ns, &name, Verb::Pause).await?,
        Command::Resume { name } => request(client, &ns, &name, Verb::Resume).await?,
        Command::Refresh { name } => request(client, &ns, &name, Verb::Refresh).await?,
        Command::PromoteVersion { name, version } => {
            let verb =
                Request::parse(&Request::format(&Verb::PromoteVersion(version), "0")).map_err(|e| e.to_string())?.verb;
            request(client, &ns, &name, verb).await?
        }
        Command::Experiment { verb } => experiment(client, &ns, verb).await?,
        Command::Retrain { name } => retrain_request(client, &ns, &name, RetrainRequest::Retrain).await?,
        Command::PromoteRun { name, run } => {
            retrain_request(client, &ns, &name, RetrainRequest::PromoteRun(run)).await?
        }
        Command::Runs { name } => {
            let api: Api<RetrainPolicy> = Api::namespaced(client, &ns);
            let p = api.get_opt(&name).await.map_err(|e| format!("cannot read RetrainPolicy {ns}/{name}: {e}"))?;
            let p = p.ok_or_else(|| format!("RetrainPolicy {name:?} not found in namespace {ns:?}"))?;
            print!("{}", champion::cli::runs::render(&p));
        }
        Command::History { name, tracking_uri, token } => {
            let md = get(client, &ns, &name).await?;
            let (versions, note) = registry_versions(&md, tracking_uri.as_deref(), token.as_deref()).await;
            print!("{}", champion::cli::history::render(&md, versions.as_deref(), note.as_deref()));
        }
    }
    Ok(())
}

/// Writes a RetrainPolicy request annotation with a fresh id; the operator consumes it once.
async fn retrain_request(client: Client, ns: &str, name: &str, r: RetrainRequest) -> Result<(), String> {
    let api: Api<RetrainPolicy> = Api::namespaced(client, ns);
    if api.get_opt(name).await.map_err(|e| format!("cannot read RetrainPolicy {ns}/{name}: {e}"))?.is_none() {
        return Err(format!("RetrainPolicy {name:?} not found in namespace {ns:?}"));
    }
    let id = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos().to_string())
        .unwrap_or_else(|_| "0".into());
    let value = champion::retrain::request::format(&r, &id);
    let patch = serde_json::json!({"metadata": {"annotations": {REQUEST: value}}});
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|e| format!("cannot write the request to RetrainPolicy {ns}/{name}: {e}"))?;
    println!(
        "requested for retrainpolicy/{name} ({REQUEST}={value}); `kubectl champion runs {name}` shows what it did"
    );
    Ok(())
}

async fn experiment(client: Client, ns: &str, verb: ExperimentVerb) -> Result<(), String> {
    let api: Api<Experiment> = Api::namespaced(client.clone(), ns);
    let name = match &verb {
        ExperimentVerb::Status { name } | ExperimentVerb::Stop { name } | ExperimentVerb::Promote { name } => name,
    };
    let x = api.get_opt(name).await.map_err(|e| format!("cannot read Experiment {ns}/{name}: {e}"))?;
    let x = x.ok_or_else(|| format!("Experiment {name:?} not found in namespace {ns:?}"))?;
    match verb {
        ExperimentVerb::Status { .. } => print!("{}", champion::cli::experiment::render(&x)),
        ExperimentVerb::Stop { name } => {
            let id = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos().to_string())
                .unwrap_or_else(|_| "0".into());
            let value = format!("stop/{id}");
            let patch = serde_json::json!({"metadata": {"annotations": {REQUEST: value}}});
            api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map_err(|e| format!("cannot stop Experiment {ns}/{name}: {e}"))?;
            println!("stop requested for experiment/{name} ({REQUEST}={value})");
        }
        ExperimentVerb::Promote { name } => {
            let winner = champion::experiment::promotion::winner(&x)
                .ok_or_else(|| format!("Experiment {name} has no winning variant to promote (status.winner)"))?;
            let md = get(client.clone(), ns, &x.spec.deployment_ref.name).await?;
            match champion::experiment::promotion::plan(&md, winner) {
                champion::experiment::promotion::Promotion::EditSpec { message, patch } => {
                    let mds: Api<ModelDeployment> = Api::namespaced(client, ns);
                    mds.patch(&x.spec.deployment_ref.name, &PatchParams::default(), &Patch::Merge(&patch))
                        .await
                        .map_err(|e| {
                            format!("cannot change ModelDeployment {ns}/{}: {e}", x.spec.deployment_ref.name)
                        })?;
                    println!("done: {message}");
                }
                champion::experiment::promotion::Promotion::MoveAlias { model, alias, version } => println!(
                    "ModelDeployment {} follows alias {alias} of {model}: with onSuccess: promote the operator moves it;                      otherwise `kubectl champion promote-version {} {version}`",
                    md.name_any(),
                    md.name_any()
                ),
            }
        }
    }
    Ok(())
}

async fn get(client: Client, ns: &str, name: &str) -> Result<ModelDeployment, String> {
    let api: Api<ModelDeployment> = Api::namespaced(client, ns);
    let md = api.get_opt(name).await.map_err(|e| format!("cannot read ModelDeployment {ns}/{name}: {e}"))?;
    md.ok_or_else(|| format!("ModelDeployment {name:?} not found in namespace {ns:?}"))
}

/// The versions of the registered model a ModelDeployment follows (or followed), for the history; or why
/// they were not read.
async fn registry_versions(
    md: &ModelDeployment,
    tracking_uri: Option<&str>,
    token: Option<&str>,
) -> (Option<Vec<ModelVersion>>, Option<String>) {
    let model = md
        .spec
        .model
        .registry
        .as_ref()
        .map(|r| r.model.clone())
        .or_else(|| md.status.as_ref()?.history.iter().find_map(|h| h.registry.as_ref().map(|r| r.model.clone())));
    let Some(model) = model else { return (None, None) };
    let Some(uri) = tracking_uri else {
        return (None, Some("registry tags not shown: set --tracking-uri or MLFLOW_TRACKING_URI".into()));
    };
    let mut client = MlflowClient::new(uri, std::time::Duration::from_secs(10));
    if let Some(t) = token {
        match BearerToken::parse(t) {
            Some(t) => client = client.with_token(t),
            None => return (None, Some("registry tags not shown: the token is not a valid header value".into())),
        }
    }
    let Some(mut search) = VersionSearch::of_model(&model, 200) else {
        return (None, Some(format!("registry tags not shown: cannot search for model {model:?}")));
    };
    let mut versions = Vec::new();
    // At most 10 pages (2000 versions): enough for a history, bounded for a CLI.
    for _ in 0..10 {
        match client.search_model_versions(&search).await {
            Ok(page) => {
                versions.extend(page.versions);
                match page.next_page_token {
                    Some(t) => search.page_token = Some(t),
                    None => break,
                }
            }
            Err(e) => return (None, Some(format!("registry tags not shown: {e}"))),
        }
    }
    (Some(versions), None)
}

/// Sets the request annotation; the operator consumes it once and records it in `status.lastRequest`.
async fn request(client: Client, ns: &str, name: &str, verb: Verb) -> Result<(), String> {
    let api: Api<ModelDeployment> = Api::namespaced(client, ns);
    let id = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos().to_string())
        .unwrap_or_else(|_| "0".into());
    let value = Request::format(&verb, &id);
    let patch = serde_json::json!({"metadata": {"annotations": {REQUEST: value}}});
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|e| format!("cannot send {verb} to ModelDeployment {ns}/{name}: {e}"))?;
    println!(
        "{verb} requested for modeldeployment/{name} ({REQUEST}={value}); the operator acknowledges it in status.lastRequest"
    );
    Ok(())
}
