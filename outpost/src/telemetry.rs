//! Logging: text or JSON lines on stderr.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber.
pub fn init(level: &str, format: &str) -> anyhow::Result<()> {
    let filter = EnvFilter::try_new(level)
        .map_err(|e| anyhow::anyhow!("invalid log level `{level}`: {e}"))?;
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    let result = match format {
        "json" => builder.json().flatten_event(true).try_init(),
        "text" => builder.try_init(),
        other => anyhow::bail!("invalid log format `{other}`: use text or json"),
    };
    result.map_err(|e| anyhow::anyhow!("cannot install the logger: {e}"))
}
