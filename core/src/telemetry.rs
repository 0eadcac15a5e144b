//! Logging: human-readable text or JSON lines on stderr, filtered by level or directive. Text
//! carries ANSI colours only when stderr is a terminal, so files and journals stay plain.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. `level` is a level (`info`) or a filter directive
/// (`info,redoubt_core=debug`); `format` is `text` or `json`.
pub fn init(level: &str, format: &str) -> anyhow::Result<()> {
    let filter = EnvFilter::try_new(level)
        .map_err(|e| anyhow::anyhow!("invalid log level `{level}`: {e}"))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let result = match format {
        "json" => builder.json().flatten_event(true).try_init(),
        "text" => builder.try_init(),
        other => anyhow::bail!("invalid log format `{other}`: use text or json"),
    };
    result.map_err(|e| anyhow::anyhow!("cannot install the logger: {e}"))
}
