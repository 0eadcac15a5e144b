//! Reading passwords and secrets: from standard input for scripts, or prompted on the terminal
//! without echo.

use anyhow::{Context, bail};
use std::io::{BufRead, IsTerminal, Write};
use std::process::{Command, Stdio};

/// One line from standard input, without its line ending.
pub(crate) fn from_stdin(what: &str) -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .with_context(|| format!("cannot read the {what} from standard input"))?;
    let value = line.trim_end_matches(['\n', '\r']).to_owned();
    if value.is_empty() {
        bail!("the {what} on standard input is empty");
    }
    Ok(value)
}

/// Turns terminal echo on or off with `stty` on the controlling terminal; false when that failed.
fn set_echo(on: bool) -> bool {
    let Ok(tty) = std::fs::File::open("/dev/tty") else {
        return false;
    };
    Command::new("stty")
        .arg(if on { "echo" } else { "-echo" })
        .stdin(Stdio::from(tty))
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Asks for a secret on the terminal with echo off, or reads a line of standard input when it
/// is not a terminal. Ctrl-C while asking turns echo back on before exiting.
pub(crate) async fn prompt(what: &str) -> anyhow::Result<String> {
    if !std::io::stdin().is_terminal() {
        return from_stdin(what);
    }
    eprint!("{what}: ");
    std::io::stderr().flush().ok();
    let echo_off = set_echo(false);
    if !echo_off {
        eprint!("(cannot turn terminal echo off: typing will show) ");
        std::io::stderr().flush().ok();
    }
    let label = what.to_owned();
    let read = tokio::task::spawn_blocking(move || from_stdin(&label));
    let result = tokio::select! {
        joined = read => joined.context("reading the terminal failed").and_then(|r| r),
        _ = tokio::signal::ctrl_c() => {
            if echo_off {
                set_echo(true);
            }
            eprintln!();
            // The blocking read cannot be cancelled; leave without waiting for it.
            std::process::exit(130);
        }
    };
    if echo_off {
        set_echo(true);
    }
    eprintln!();
    result
}

/// The secret from standard input when `stdin` is set, else prompted.
pub(crate) async fn read(what: &str, stdin: bool) -> anyhow::Result<String> {
    if stdin {
        from_stdin(what)
    } else {
        prompt(what).await
    }
}

/// A new password: from standard input, or prompted twice on a terminal.
pub(crate) async fn new_password(stdin: bool) -> anyhow::Result<String> {
    if stdin || !std::io::stdin().is_terminal() {
        return from_stdin("new password");
    }
    let first = prompt("new password").await?;
    let second = prompt("repeat it").await?;
    if first != second {
        bail!("the two passwords differ; nothing was changed");
    }
    Ok(first)
}
