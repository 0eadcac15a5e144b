//! The RAC outpost as a benchmark drives it: a release core and `redoubt-outpost` started as
//! processes, one RAC provider with the given endpoints (static credentials, no idle timeout),
//! a user signed in through the outpost's single sign-on, and connections opened with a ticket
//! from the session page, as the browser does. Also reads the outpost's `/metrics`.

use crate::bench::{BenchCore, start_outpost, wait_ready};
use crate::peers::login_flow::{Credentials, HttpBrowser, login};
use crate::peers::{free_addr, wait_listening};
use crate::rac_client::{RacClient, RacClientOptions};
use anyhow::{Context, bail};
use serde_json::{Value, json};
use std::path::Path;
use std::time::Instant;

const USER: &str = "bench";
const PASSWORD: &str = "bench-Desk-Password-1";

/// One RDP server a provider offers.
#[derive(Debug, Clone)]
pub struct BenchEndpoint {
    pub slug: String,
    /// `host:port`.
    pub host: String,
    pub width: u16,
    pub height: u16,
    pub username: String,
    pub password: String,
}

/// Creates the user the benchmarks sign in as (once per core).
pub async fn create_user(core: &BenchCore) -> anyhow::Result<()> {
    core.api
        .post(
            "/api/v1/users",
            json!({"username": USER, "name": "Bench User", "email": "bench@example.com",
                   "password": PASSWORD}),
        )
        .await?;
    Ok(())
}

/// A running RAC outpost with a signed-in browser.
pub struct RacSide {
    /// The outpost process.
    pub outpost: tokio::process::Child,
    /// `127.0.0.1:port` of its metrics listener.
    pub metrics: String,
    port: u16,
    origin: String,
    host: String,
    cookie: String,
    browser: HttpBrowser,
    http: reqwest::Client,
}

impl RacSide {
    /// Creates a RAC provider `name` offering `endpoints` and its
    /// outpost, starts the outpost (`binary`) with its state under `dir`, and signs in.
    pub async fn start(
        core: &BenchCore,
        binary: &Path,
        dir: &Path,
        name: &str,
        endpoints: &[BenchEndpoint],
    ) -> anyhow::Result<Self> {
        let api = &core.api;
        let addr = free_addr()?;
        let host = format!("{name}.localhost:{}", addr.port());
        let origin = format!("http://{host}");
        let listed: Vec<Value> = endpoints
            .iter()
            .map(|e| {
                json!({"slug": e.slug, "name": e.slug, "host": e.host, "auth_mode": "static",
                       "security": "tls", "lossless": true, "width": e.width, "height": e.height})
            })
            .collect();
        let provider = api
            .post(
                "/api/v1/providers",
                json!({"name": name, "kind": "rac", "settings": {
                    "external_host": origin, "idle_timeout_seconds": 0, "endpoints": listed}}),
            )
            .await?;
        let provider_id = provider["id"].as_i64().context("provider id")?;
        api.post(
            "/api/v1/applications",
            json!({"slug": name, "name": name, "provider_id": provider_id}),
        )
        .await?;
        for endpoint in endpoints {
            api.put(
                &format!(
                    "/api/v1/providers/{provider_id}/rac/endpoints/{}/credentials",
                    endpoint.slug
                ),
                json!({"username": endpoint.username, "password": endpoint.password}),
            )
            .await?;
        }
        let created = api
            .post(
                "/api/v1/outposts",
                json!({"name": name, "kind": "rac", "provider_ids": [provider_id]}),
            )
            .await?;
        let token = created["token"].as_str().context("outpost token")?;
        let state = dir.join(name);
        std::fs::create_dir_all(&state)?;
        let (mut outpost, metrics) = start_outpost(
            binary,
            &api.url,
            token,
            &state,
            &[("HTTP", addr.to_string()), ("HTTPS", "127.0.0.1:0".into())],
        )?;
        let http = reqwest::Client::new();
        wait_ready(
            &http,
            &format!("http://{metrics}"),
            "the outpost",
            Instant::now(),
        )
        .await?;
        wait_listening(
            addr,
            "the outpost",
            || matches!(outpost.try_wait(), Ok(None)),
            String::new,
        )
        .await?;
        let mut browser = HttpBrowser::new()?;
        let credentials = Credentials {
            username: USER,
            password: PASSWORD,
            totp: None,
        };
        let page = login(&mut browser, &format!("{origin}/"), &credentials).await?;
        if let Some(first) = endpoints.first()
            && !page.body.contains(&format!("/rac/{}", first.slug))
        {
            bail!("after the sign-in the list does not offer {}", first.slug);
        }
        let cookie_name = format!("redoubt_rac_{provider_id}");
        let cookie = browser
            .jar
            .get(&cookie_name)
            .map(|c| format!("{}={}", c.name, c.value))
            .with_context(|| format!("no {cookie_name} cookie after the sign-in"))?;
        Ok(Self {
            outpost,
            metrics,
            port: addr.port(),
            origin,
            host,
            cookie,
            browser,
            http,
        })
    }

    /// The outpost's process id.
    pub fn pid(&self) -> anyhow::Result<u32> {
        self.outpost.id().context("the outpost has exited")
    }

    /// Opens the session page of `slug` for a ticket and connects the WebSocket with it.
    pub async fn connect(&mut self, slug: &str) -> anyhow::Result<RacClient> {
        let page = self
            .browser
            .get(&format!("{}/rac/{slug}", self.origin))
            .await?;
        if page.status != 200 {
            bail!("the session page of {slug} answered {}", page.status);
        }
        let marker = "data-ticket=\"";
        let start = page.body.find(marker).context("no ticket on the page")? + marker.len();
        let length = page
            .body
            .get(start..)
            .and_then(|rest| rest.find('"'))
            .context("unterminated ticket")?;
        let ticket = page.body.get(start..start + length).context("ticket")?;
        let mut options = RacClientOptions::new(
            &format!("ws://127.0.0.1:{}/rac/{slug}/ws?ticket={ticket}", self.port),
            &self.cookie,
            &self.origin,
        );
        options.host.clone_from(&self.host);
        RacClient::connect(options)
            .await
            .map_err(|e| anyhow::anyhow!("connect to {slug}: {e}"))
    }

    /// The outpost's `/metrics` text.
    pub async fn metrics_text(&self) -> anyhow::Result<String> {
        Ok(self
            .http
            .get(format!("http://{}/metrics", self.metrics))
            .send()
            .await?
            .error_for_status()?
            .text()
            .await?)
    }
}
