//! `kubectl champion`: day-2 verbs for Champion's resources, as a kubectl plugin. I/O only; the views
//! and requests are built in `champion::cli`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use kube::{Api, Client};

use champion::api::ModelDeployment;

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
    }
    Ok(())
}
