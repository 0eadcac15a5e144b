//! The embedded outpost: a proxy outpost that runs inside the core process, so a single-machine
//! install protects web applications without deploying anything else (on by default,
//! `embedded_outpost.enabled = false` turns it off).
//!
//! It is an ordinary outpost record named [`EMBEDDED_OUTPOST_NAME`]: administrators attach proxy
//! providers to it like to any other. Its token is derived from the secret key, so every core
//! replica computes the same one and none is ever stored in plain or shown. It runs the same
//! outpost runtime and proxy code as `redoubt-outpost`, connected to this core over loopback.

use crate::auth::token;
use crate::model::ProviderKind;
use crate::net::PeerAddr;
use crate::secret_key::SecretKey;
use crate::store::outposts::OutpostFields;
use crate::store::{Store, StoreError};
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use redoubt_outpost::RunningOutpost;
use redoubt_outpost::proxy::service::{Peer, ProxyService};
use redoubt_outpost::settings::{ListenSettings, OutpostSettings};
use redoubt_outpost_proto::oidc::OUTPOST_PATH_PREFIX;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, OnceLock};

/// Name of the embedded outpost's record.
pub const EMBEDDED_OUTPOST_NAME: &str = "embedded";

/// The embedded outpost's identity.
#[derive(Clone)]
pub struct EmbeddedIdentity {
    pub outpost_id: i64,
    /// The token it authenticates with (derived, never stored in plain).
    pub token: String,
}

impl std::fmt::Debug for EmbeddedIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedIdentity")
            .field("outpost_id", &self.outpost_id)
            .field("token", &"<redacted>")
            .finish()
    }
}

/// The embedded outpost's token: the same on every replica sharing the secret key.
pub fn derived_token(secret: &SecretKey) -> String {
    format!(
        "{}{}",
        token::TOKEN_PREFIX,
        data_encoding::BASE32_NOPAD
            .encode(&secret.derive("embedded-outpost-token"))
            .to_lowercase()
    )
}

/// Finds or creates the embedded outpost and makes sure its derived token is valid. Safe to run
/// on every start and on several replicas at once.
pub async fn ensure(store: &Store, secret: &SecretKey) -> Result<EmbeddedIdentity, StoreError> {
    let token = derived_token(secret);
    let hash = token::hash(&token);
    let outpost = match store.outpost_by_name(EMBEDDED_OUTPOST_NAME).await? {
        Some(outpost) => outpost,
        None => {
            let settings = serde_json::json!({ "embedded": true });
            let created = store
                .create_outpost(
                    &OutpostFields {
                        name: EMBEDDED_OUTPOST_NAME,
                        kind: ProviderKind::Proxy,
                        settings: &settings,
                        provider_ids: &[],
                    },
                    &hash,
                )
                .await;
            match created {
                Ok(outpost) => {
                    tracing::info!(
                        outpost_id = outpost.id,
                        "created the embedded proxy outpost; attach proxy providers to it to protect applications through the core"
                    );
                    outpost
                }
                // Another replica created it first.
                Err(StoreError::Conflict(_)) => store
                    .outpost_by_name(EMBEDDED_OUTPOST_NAME)
                    .await?
                    .ok_or(StoreError::NotFound("outpost"))?,
                Err(e) => return Err(e),
            }
        }
    };
    if outpost.kind != ProviderKind::Proxy {
        return Err(StoreError::Invalid(format!(
            "the outpost named `{EMBEDDED_OUTPOST_NAME}` is a {} outpost; rename it or set embedded_outpost.enabled = false",
            outpost.kind
        )));
    }
    store.ensure_outpost_token(outpost.id, &hash).await?;
    Ok(EmbeddedIdentity {
        outpost_id: outpost.id,
        token,
    })
}

/// The embedded outpost's request handler once it runs; cheap to clone. Until then (and when the
/// embedded outpost is off) requests go to the core's own routes, except `/outpost.redoubt/`,
/// which gets a "starting" page while it is on.
#[derive(Clone, Debug, Default)]
pub struct EmbeddedProxy {
    enabled: bool,
    service: Arc<OnceLock<ProxyService>>,
}

impl EmbeddedProxy {
    /// A handle for a core whose embedded outpost is `enabled`.
    pub fn new(enabled: bool) -> Self {
        Self {
            enabled,
            service: Arc::default(),
        }
    }

    /// Records the running outpost's handler.
    pub fn ready(&self, service: ProxyService) {
        let _ = self.service.set(service);
    }
}

/// Middleware in front of the core's routes: requests under `/outpost.redoubt/`, and every
/// request for the host of a proxy-mode provider the embedded outpost serves, go to it; the rest
/// to the core. It sits outside the core's body limit and request timeout, which would break
/// uploads, streaming and WebSockets through the proxy.
pub async fn dispatch(
    State(embedded): State<EmbeddedProxy>,
    request: Request,
    next: Next,
) -> Response {
    let for_outpost = request.uri().path().starts_with(OUTPOST_PATH_PREFIX);
    let Some(service) = embedded.service.get() else {
        if for_outpost && embedded.enabled {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::RETRY_AFTER, "1")],
                "The embedded proxy outpost is starting; try again in a moment.",
            )
                .into_response();
        }
        return next.run(request).await;
    };
    let for_proxied_host = !for_outpost
        && request
            .uri()
            .authority()
            .map(|a| a.as_str())
            .or_else(|| {
                request
                    .headers()
                    .get(header::HOST)
                    .and_then(|h| h.to_str().ok())
            })
            .is_some_and(|authority| service.routes_host(authority));
    if !for_outpost && !for_proxied_host {
        return next.run(request).await;
    }
    let service = service.clone();
    let addr = request
        .extensions()
        .get::<ConnectInfo<PeerAddr>>()
        .map_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)), |c| c.0.0);
    let https = request.extensions().get::<crate::web::Https>().is_some();
    service
        .handle_from(request, Peer { addr, https })
        .await
        .map(Body::new)
}

/// Runs the embedded outpost against this core's HTTP listener at `http_addr`, with its state in
/// `data_dir/embedded-outpost`, and tells `proxy` once it serves.
pub async fn start(
    identity: &EmbeddedIdentity,
    http_addr: SocketAddr,
    data_dir: &Path,
    log_level: &str,
    proxy: EmbeddedProxy,
    clock: crate::clock::SharedClock,
) -> anyhow::Result<RunningOutpost> {
    let loopback = match http_addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    let url = format!("http://{}", SocketAddr::new(loopback, http_addr.port()));
    let settings = OutpostSettings {
        url,
        token: identity.token.clone(),
        state_dir: data_dir.join("embedded-outpost"),
        log_level: log_level.to_owned(),
        listen: ListenSettings {
            // The core's own listeners carry its traffic; only the metrics and health of the
            // outpost runtime listen, on loopback (its metrics are also on the core's /metrics).
            metrics: "127.0.0.1:0".into(),
            http: String::new(),
            https: String::new(),
            ldap: String::new(),
            ldaps: String::new(),
            radius: String::new(),
            radius_accounting: String::new(),
        },
        ..OutpostSettings::default()
    };
    let options = redoubt_outpost::StartOptions {
        clock,
        ..Default::default()
    };
    let running = redoubt_outpost::start_with(settings, options).await?;
    let mut service = running.proxy_service_watch();
    tokio::spawn(async move {
        loop {
            if let Some(ready) = service.borrow_and_update().clone() {
                tracing::info!("the embedded proxy outpost is serving");
                proxy.ready(ready);
                return;
            }
            if service.changed().await.is_err() {
                return;
            }
        }
    });
    Ok(running)
}
