//! The `champion` binary: `run` the operator, print the `crds`, or print the `version`. Wiring only.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use tokio::sync::watch;

use champion::config::OperatorConfig;
use champion::controller::{self, Context};
use champion::metrics::Metrics;
use champion::server::{self, ServerState};

/// How long reconciles in flight may run after SIGTERM.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// Champion: carries ML models from a trained artifact into production and keeps them improving.
#[derive(Parser)]
#[command(name = "champion", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the operator against the cluster of the current kubeconfig (or the in-cluster config).
    Run {
        /// The operator config file (Prometheus providers, MLflow, watched namespaces).
        #[arg(long, env = "CHAMPION_CONFIG")]
        config: Option<PathBuf>,
        /// The address of /metrics, /healthz and /readyz.
        #[arg(long, env = "CHAMPION_LISTEN", default_value = "0.0.0.0:8080")]
        listen: SocketAddr,
        /// Log JSON lines instead of text.
        #[arg(long)]
        json_logs: bool,
    },
    /// Print the CustomResourceDefinitions as YAML, or write one file per kind into a folder.
    Crds {
        /// Write `<plural>.yaml` files into this folder instead of printing.
        #[arg(long)]
        write_dir: Vec<PathBuf>,
    },
    /// Print the version.
    Version,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Version => {
            println!("champion {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Command::Crds { write_dir } => match crds(&write_dir) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Run { config, listen, json_logs } => {
            champion::telemetry::init(json_logs);
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build();
            let result = match runtime {
                Ok(rt) => {
                    let result = rt.block_on(run(config, listen));
                    // Tasks still parked (watches cut short by the shutdown) must not keep the process.
                    rt.shutdown_timeout(std::time::Duration::from_secs(1));
                    result
                }
                Err(e) => Err(format!("cannot start the async runtime: {e}")),
            };
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!("{e}");
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn crds(write_dirs: &[PathBuf]) -> Result<(), String> {
    if write_dirs.is_empty() {
        print!("{}", champion::crds::all_yaml().map_err(|e| e.to_string())?);
        return Ok(());
    }
    for dir in write_dirs {
        for (file, crd) in champion::crds::all() {
            let path = dir.join(file);
            let yaml = champion::crds::to_yaml(&crd).map_err(|e| e.to_string())?;
            std::fs::write(&path, yaml).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        }
    }
    Ok(())
}

async fn run(config_path: Option<PathBuf>, listen: SocketAddr) -> Result<(), String> {
    let config = match &config_path {
        Some(p) => OperatorConfig::load(p).map_err(|e| e.to_string())?,
        None => OperatorConfig::default(),
    };
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        providers = ?config.prometheus.keys().collect::<Vec<_>>(),
        namespaces = ?config.namespaces,
        "starting champion"
    );
    let client = kube::Client::try_default().await.map_err(|e| format!("cannot build a Kubernetes client: {e}"))?;
    controller::check_crds_served(&client).await.map_err(|e| e.to_string())?;

    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutdown signal received; finishing reconciles in flight");
        let _ = stop_tx.send(true);
    });

    let metrics = Arc::new(Metrics::new());
    let namespaces = config.namespaces.clone();
    let ctx = Context::new(client, Arc::new(config), metrics.clone());
    // /readyz turns ready once every controller has synced its cache (see controller::readiness).
    let ready = ctx.readiness.clone();
    let state = ServerState { metrics, ready: ready.clone() };
    let listener =
        tokio::net::TcpListener::bind(listen).await.map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let server = tokio::spawn(server::serve_listener(listener, state, stopped()));

    // After the signal, reconciles in flight get a grace period; a controller whose watch had not yet
    // filled its cache at that moment may never notice the end of its input (kube-runtime holds such a
    // runner until the store is ready), so the process does not wait for it past the grace period.
    let grace = async {
        stopped().await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    tokio::select! {
        _ = controller::run(ctx, namespaces, stopped()) => {}
        _ = grace => tracing::warn!("controllers still busy {SHUTDOWN_GRACE:?} after the signal; exiting anyway"),
    }
    ready.stopping();
    match server.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(format!("health server failed: {e}")),
        Err(e) => return Err(format!("health server task failed: {e}")),
    }
    tracing::info!("champion stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => futures::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = futures::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
