//! `redoubt-outpost`: the outpost binary. The runtime (control channel, config cache, metrics)
//! and the protocol modules are tracked as their own issues; until they land, this binary says
//! so plainly instead of pretending to serve.

use std::process::ExitCode;

fn main() -> ExitCode {
    eprintln!(
        "redoubt-outpost {}: the outpost runtime is not part of this build yet; \
         the core (`redoubt-core serve`) and its API are",
        env!("CARGO_PKG_VERSION")
    );
    ExitCode::from(2)
}
