//! Logging: `tracing` with an `EnvFilter` from `RUST_LOG` (default `info`), text or JSON lines.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber; `json` selects JSON lines (for log collectors).
pub fn init(json: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}
