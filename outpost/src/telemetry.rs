//! Logging: text or JSON lines on stderr.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber.
pub fn init(level: &str, format: &str) -> anyhow::Result<()> {
    let filter = EnvFilter::try_new(with_quiet_codecs(level))
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

/// The LDAP codec logs every undecodable message at error level, so a client sending garbage
/// could flood the log; the connection loop already logs those at debug with the peer's context.
/// Silenced unless the level names the codec explicitly.
fn with_quiet_codecs(level: &str) -> String {
    if level.contains("ldap3_proto") {
        level.to_owned()
    } else {
        format!("{level},ldap3_proto=off")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ldap_codec_is_quiet_unless_asked_for() {
        assert_eq!(with_quiet_codecs("info"), "info,ldap3_proto=off");
        assert_eq!(with_quiet_codecs("ldap3_proto=trace"), "ldap3_proto=trace");
        assert!(EnvFilter::try_new(with_quiet_codecs("debug,hyper=warn")).is_ok());
    }
}
