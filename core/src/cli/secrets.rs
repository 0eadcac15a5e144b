//! Reading passwords and secrets: from standard input for scripts, or prompted on the terminal
//! without echo.

use anyhow::{Context, bail};
use std::io::{BufRead, IsTerminal, Write};

/// One line from standard input, without its line ending.
pub(crate) fn from_stdin(what: &str) -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .with_context(|| format!("cannot read the {what}"))?;
    let value = line.trim_end_matches(['\n', '\r']).to_owned();
    if value.is_empty() {
        bail!("the {what} on standard input is empty");
    }
    Ok(value)
}

/// Prompts on the terminal with echo off (via `stty`), or reads stdin when it is not a terminal.
pub(crate) fn prompt(what: &str) -> anyhow::Result<String> {
    if !std::io::stdin().is_terminal() {
        return from_stdin(what);
    }
    eprint!("{what}: ");
    std::io::stderr().flush().ok();
    let echo_off = std::process::Command::new("stty")
        .arg("-echo")
        .status()
        .is_ok_and(|s| s.success());
    let result = from_stdin(what);
    if echo_off {
        let _ = std::process::Command::new("stty").arg("echo").status();
    }
    eprintln!();
    result
}

/// The secret from stdin when `stdin` is set, else prompted.
pub(crate) fn read(what: &str, stdin: bool) -> anyhow::Result<String> {
    if stdin {
        from_stdin(what)
    } else {
        prompt(what)
    }
}
