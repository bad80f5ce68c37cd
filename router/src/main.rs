//! `champion-router`: wires the flags to the server; it decides nothing.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use champion_router::server::{Options, start};

/// mimalloc: the proxy allocates and frees small buffers per request, where it is measurably cheaper than glibc's
/// allocator (docs/router-benchmark.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const USAGE: &str = "usage: champion-router --config PATH [--listen ADDR] [--admin-listen ADDR] [--threads N] [--resolve HOST:PORT=ADDR]...

  --config PATH        the configuration file (JSON or YAML), re-read every second   [$CHAMPION_ROUTER_CONFIG]
  --listen ADDR        the proxy port, HTTP/1.1 and HTTP/2 (default 0.0.0.0:8080)     [$CHAMPION_ROUTER_LISTEN]
  --admin-listen ADDR  /metrics, /healthz, /readyz, /config (default 0.0.0.0:9090)    [$CHAMPION_ROUTER_ADMIN_LISTEN]
  --threads N          worker threads (default: the CPUs this process may use)        [$CHAMPION_ROUTER_THREADS]
  --resolve HOST:PORT=ADDR  reach the configured address HOST:PORT at ADDR (ip:port) instead, like curl's
                       --resolve: to run the router outside the cluster its configuration names Services of;
                       repeatable                                                     [$CHAMPION_ROUTER_RESOLVE, comma-separated]
";

struct Flags {
    options: Options,
    threads: Option<usize>,
}

fn flags() -> Result<Flags, String> {
    let env = |k: &str| std::env::var(k).ok();
    let mut config = env("CHAMPION_ROUTER_CONFIG");
    let mut listen = env("CHAMPION_ROUTER_LISTEN").unwrap_or_else(|| "0.0.0.0:8080".into());
    let mut admin = env("CHAMPION_ROUTER_ADMIN_LISTEN").unwrap_or_else(|| "0.0.0.0:9090".into());
    let mut threads = env("CHAMPION_ROUTER_THREADS");
    let mut resolve: Vec<String> =
        env("CHAMPION_ROUTER_RESOLVE").map(|v| v.split(',').map(str::to_string).collect()).unwrap_or_default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--config" => config = Some(value()?),
            "--listen" => listen = value()?,
            "--admin-listen" => admin = value()?,
            "--threads" => threads = Some(value()?),
            "--resolve" => resolve.push(value()?),
            "--version" => {
                println!("champion-router {}", env!("CARGO_PKG_VERSION"));
                std::process::exit(0);
            }
            "-h" | "--help" => {
                print!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let addr = |s: &str| s.parse::<SocketAddr>().map_err(|e| format!("{s:?}: {e}"));
    Ok(Flags {
        options: Options {
            config_path: PathBuf::from(config.ok_or("--config is required")?),
            listen: addr(&listen)?,
            admin_listen: addr(&admin)?,
            reload_every: Duration::from_secs(1),
            resolve: resolve
                .iter()
                .filter(|r| !r.trim().is_empty())
                .map(|r| {
                    let (from, to) =
                        r.split_once('=').ok_or_else(|| format!("--resolve {r:?}: want HOST:PORT=ADDR"))?;
                    addr(to)?;
                    Ok((from.trim().to_string(), to.trim().to_string()))
                })
                .collect::<Result<_, String>>()?,
        },
        threads: threads.map(|t| t.parse::<usize>().map_err(|e| format!("--threads {t:?}: {e}"))).transpose()?,
    })
}

fn main() -> ExitCode {
    let flags = match flags() {
        Ok(f) => f,
        Err(e) => {
            eprint!("champion-router: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    // One thread (the flag, or a process pinned to one CPU): the current-thread scheduler, cheaper than a
    // work-stealing pool of one.
    let threads = flags.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let mut runtime = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    runtime.enable_all();
    if threads > 1 {
        runtime.worker_threads(threads);
    }
    let runtime = match runtime.build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("champion-router: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let running = match start(flags.options).await {
            Ok(r) => r,
            Err(e) => {
                eprintln!("champion-router: cannot listen: {e}");
                return ExitCode::FAILURE;
            }
        };
        eprintln!("champion-router: proxy on {}, admin on {}", running.proxy_addr, running.admin_addr);
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("champion-router: cannot watch SIGTERM: {e}");
                return ExitCode::FAILURE;
            }
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        eprintln!("champion-router: stopping; open connections have 10 s to finish");
        running.shutdown(Duration::from_secs(10)).await;
        ExitCode::SUCCESS
    })
}
