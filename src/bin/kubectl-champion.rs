//! `kubectl champion`: day-2 verbs for Champion's resources, as a kubectl plugin. I/O only; the views
//! and requests are built in `champion::cli`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};

use champion::api::ModelDeployment;
use champion::names::annotations::REQUEST;
use champion::rollout::request::{Request, Verb};

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
            let api: Api<ModelDeployment> = Api::namespaced(client, &ns);
            let md = api.get_opt(&name).await.map_err(|e| format!("cannot read ModelDeployment {ns}/{name}: {e}"))?;
            let md = md.ok_or_else(|| format!("ModelDeployment {name:?} not found in namespace {ns:?}"))?;
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
    }
    Ok(())
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
