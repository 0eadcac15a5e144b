//! A proxy provider served by a real outpost in-process, and small HTTP helpers for the peer
//! tests: a GET that never follows redirects (with `*.localhost` resolved to the loopback), the
//! upstream's JSON echo, the outpost's session cookie.

use super::login_flow::{HttpBrowser, LocalhostResolver};
use crate::{TestCore, start_outpost_with};
use redoubt_outpost::RunningOutpost;
use serde_json::Value;
use std::net::SocketAddr;
use std::time::Duration;

/// How long an outpost may take to apply its configuration or to listen.
const DEADLINE: Duration = Duration::from_secs(20);

/// A proxy provider served by an in-process outpost.
pub struct Served {
    pub provider_id: i64,
    pub token: String,
    pub state: tempfile::TempDir,
    pub outpost: RunningOutpost,
    /// The outpost's HTTP listener.
    pub http: SocketAddr,
}

/// Creates a proxy provider `name` with `settings` (application open to everyone) and starts
/// an outpost for it, on `listen` when given; waits until it holds the current configuration.
pub async fn serve(
    core: &TestCore,
    name: &str,
    settings: Value,
    listen: Option<SocketAddr>,
) -> Served {
    let (provider_id, token) = core.create_served_provider("proxy", name, settings).await;
    let state = tempfile::tempdir().expect("state dir");
    let outpost = start_proxy_outpost(core, &token, state.path(), listen).await;
    let http = listening(&outpost).await;
    Served {
        provider_id,
        token,
        state,
        outpost,
        http,
    }
}

/// Starts an outpost for `token` with its state in `state`, its HTTP listener on `listen` when
/// given, and waits until it holds the core's current configuration.
pub async fn start_proxy_outpost(
    core: &TestCore,
    token: &str,
    state: &std::path::Path,
    listen: Option<SocketAddr>,
) -> RunningOutpost {
    start_proxy_outpost_with(core, token, state, |s| {
        if let Some(addr) = listen {
            s.listen.http = addr.to_string();
        }
    })
    .await
}

/// [`start_proxy_outpost`] with `tweak` applied to the outpost's settings.
pub async fn start_proxy_outpost_with(
    core: &TestCore,
    token: &str,
    state: &std::path::Path,
    tweak: impl FnOnce(&mut redoubt_outpost::settings::OutpostSettings),
) -> RunningOutpost {
    let outpost = start_outpost_with(&core.url, token, state, tweak).await;
    let revision = core.revision().await;
    tokio::time::timeout(DEADLINE, outpost.wait_for_revision(revision))
        .await
        .expect("the outpost applies the current configuration");
    outpost
}

/// The outpost's HTTP listener (the test fails rather than hang when there is none).
pub async fn listening(outpost: &RunningOutpost) -> SocketAddr {
    tokio::time::timeout(DEADLINE, outpost.listening("http"))
        .await
        .expect("the proxy outpost listens for HTTP")
}

/// The upstream's JSON echo in a page (Chromium shows JSON as text).
pub fn echo_of(text: &str) -> Value {
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("not the echo ({e}): {text}"))
}

/// GETs `url` with `cookie` and `extra` headers without following redirects.
pub async fn get_with(
    url: &str,
    cookie: Option<&str>,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    super::crypto();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .dns_resolver(LocalhostResolver)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    let mut request = client.get(url);
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    for (name, value) in extra {
        request = request.header(*name, *value);
    }
    request.send().await.expect("request")
}

/// The `Location` of a response, or an empty string.
pub fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// The `name=value` of the provider's session cookie in `client`'s jar.
pub fn session_cookie(client: &HttpBrowser, provider_id: i64) -> String {
    let name = format!("redoubt_proxy_{provider_id}");
    let cookie = client
        .jar
        .get(&name)
        .unwrap_or_else(|| panic!("no {name} cookie in {:?}", client.jar.all()));
    format!("{}={}", cookie.name, cookie.value)
}
