//! Section-aware edits of xrdp's ini files: the private copies the peer runs are the packaged
//! files with a few keys changed, and a key that is missing fails loudly (the package and the
//! harness must not drift apart).

use anyhow::bail;

/// `text` with `key=...` in `[section]` replaced by `key=value`; fails when the section has no
/// such key.
pub(super) fn set(text: &str, section: &str, key: &str, value: &str) -> anyhow::Result<String> {
    let mut current = String::new();
    let mut done = false;
    let mut out = String::with_capacity(text.len() + value.len());
    for line in text.lines() {
        let trimmed = line.trim();
        if let Some(name) = trimmed.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            current = name.to_owned();
        } else if !done
            && current == section
            && trimmed
                .split_once('=')
                .is_some_and(|(k, _)| k.trim() == key)
        {
            out.push_str(&format!("{key}={value}\n"));
            done = true;
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    if !done {
        bail!("[{section}] has no `{key}=` line");
    }
    Ok(out)
}

/// [`set`] for several `(section, key, value)` edits in turn.
pub(super) fn set_all(text: &str, edits: &[(&str, &str, String)]) -> anyhow::Result<String> {
    edits
        .iter()
        .try_fold(text.to_owned(), |text, (section, key, value)| {
            set(&text, section, key, value)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str =
        "[Globals]\nport=3389\n;port=1\n[Xorg]\nport=-1\n[Logging]\nLogFile=x.log\n";

    #[test]
    fn changes_only_the_key_in_its_section() {
        let out = set_all(
            SAMPLE,
            &[
                ("Globals", "port", "tcp://127.0.0.1:5".into()),
                ("Logging", "LogFile", "/tmp/a.log".into()),
            ],
        )
        .expect("edits");
        assert_eq!(
            out,
            "[Globals]\nport=tcp://127.0.0.1:5\n;port=1\n[Xorg]\nport=-1\n[Logging]\nLogFile=/tmp/a.log\n"
        );
    }

    #[test]
    fn a_missing_key_is_an_error() {
        let error = set(SAMPLE, "Xorg", "LogFile", "x").expect_err("missing");
        assert!(error.to_string().contains("[Xorg] has no `LogFile=`"));
    }
}
