//! Assembling and running the core: open and migrate the store, bootstrap, then serve the API on
//! the HTTP listener and metrics plus health on the metrics listener until shutdown.
//!
//! [`Core::start`] takes already-bound listeners and a shutdown future, so tests bind
//! `127.0.0.1:0` and run a real core in-process.

use crate::api::{self, AppState};
use crate::auth::credentials::CredentialChecker;
use crate::auth::password::PasswordHasherArgon2;
use crate::auth::seal::Sealer;
use crate::bootstrap::{self, BootstrapOutcome};
use crate::channel::ChannelHub;
use crate::clock::SharedClock;
use crate::config::CoreSettings;
use crate::metrics::{self, Metrics};
use crate::secret_key::SecretKey;
use crate::store::{Store, StoreOptions, redact_url};
use anyhow::Context;
use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::routing::get;
use redoubt_outpost::listener::HttpGuard;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower_http::timeout::TimeoutLayer;

/// How long an idle client connection is kept: the control channel's bound, so a WebSocket
/// carrying heartbeats is never cut as idle.
const IDLE_TIMEOUT: Duration =
    Duration::from_secs(redoubt_outpost_proto::control::CHANNEL_IDLE_TIMEOUT_SECONDS);
/// Most connections open at once on the metrics and health listener.
const METRICS_MAX_CONNECTIONS: usize = 256;
/// Outpost instances not seen for this long are forgotten.
const INSTANCE_RETENTION_SECONDS: i64 = 7 * 86_400;
/// How long ended or lapsed RAC connections are kept (the event log keeps their history).
const RAC_CONNECTION_RETENTION_SECONDS: i64 = 86_400;
/// How often old events are pruned.
const PRUNE_INTERVAL: Duration = Duration::from_secs(3600);

/// A prepared core: store open and migrated, bootstrap done.
#[derive(Debug)]
pub struct Core {
    pub state: AppState,
    pub bootstrap: BootstrapOutcome,
    settings: CoreSettings,
    stop: watch::Sender<bool>,
    /// The HTTPS certificate, when HTTPS is on.
    pub tls: Option<crate::tls::CoreTls>,
    /// The embedded proxy outpost's identity, when it is on.
    embedded: Option<crate::embedded::EmbeddedIdentity>,
    /// Where requests for the embedded outpost go once it runs.
    pub embedded_proxy: crate::embedded::EmbeddedProxy,
}

/// The listeners the core serves on.
#[derive(Debug)]
pub struct Listeners {
    pub http: TcpListener,
    /// Absent when `listen.https` is empty.
    pub https: Option<TcpListener>,
    pub metrics: TcpListener,
}

impl Listeners {
    /// Binds the configured addresses.
    pub async fn bind(settings: &CoreSettings) -> anyhow::Result<Self> {
        let http = TcpListener::bind(&settings.listen.http)
            .await
            .with_context(|| format!("cannot listen on {} (listen.http)", settings.listen.http))?;
        let metrics = TcpListener::bind(&settings.listen.metrics)
            .await
            .with_context(|| {
                format!(
                    "cannot listen on {} (listen.metrics)",
                    settings.listen.metrics
                )
            })?;
        let https = if settings.listen.https.is_empty() {
            None
        } else {
            Some(
                TcpListener::bind(&settings.listen.https)
                    .await
                    .with_context(|| {
                        format!("cannot listen on {} (listen.https)", settings.listen.https)
                    })?,
            )
        };
        Ok(Self {
            http,
            https,
            metrics,
        })
    }
}

impl Core {
    /// Opens the store, migrates it, loads the secret key and bootstraps.
    pub async fn prepare(settings: CoreSettings, clock: SharedClock) -> anyhow::Result<Self> {
        crate::data_dir::make_private_dir(&settings.data_dir).with_context(|| {
            format!(
                "cannot create the data dir {} (mode 0700)",
                settings.data_dir.display()
            )
        })?;
        let url = settings.effective_database_url();
        let sqlite_file = crate::data_dir::sqlite_file(&url);
        if let Some(file) = &sqlite_file {
            crate::data_dir::precreate_private(file)
                .with_context(|| format!("cannot create the database file {}", file.display()))?;
        }
        let mut options = StoreOptions::new(url.clone());
        options.max_connections = settings.limits.database_connections;
        let store = Store::connect(&options, clock)
            .await
            .with_context(|| format!("cannot open the database {}", redact_url(&url)))?;
        store
            .migrate()
            .await
            .context("cannot migrate the database")?;
        if let Some(file) = &sqlite_file {
            crate::data_dir::restrict_sqlite(file).with_context(|| {
                format!(
                    "cannot make the database files of {} private",
                    file.display()
                )
            })?;
        }
        let recorded = store
            .secret_key_fingerprint()
            .await
            .context("cannot read the secret key fingerprint")?;
        let secret = SecretKey::for_database(
            settings.secret_key.expose(),
            &settings.data_dir,
            recorded.as_deref(),
        )?;
        if recorded.is_none() {
            let kept = store
                .record_secret_key_fingerprint(&secret.fingerprint())
                .await
                .context("cannot record the secret key fingerprint")?;
            if !secret.matches_fingerprint(&kept) {
                // Another replica recorded its key first.
                return Err(crate::secret_key::SecretKeyError::Mismatch.into());
            }
        }
        let hasher = Arc::new(PasswordHasherArgon2::new(settings.password_hash.into())?);
        let sealer = Sealer::new(&secret.derive("totp-seal"));
        let checker = CredentialChecker::new(
            store.clone(),
            hasher.clone(),
            sealer.clone(),
            settings.lockout.into(),
        );
        let bootstrap = bootstrap::run(
            &store,
            hasher.clone(),
            &settings.data_dir,
            settings.bootstrap_password.expose(),
            settings.bootstrap_token.expose(),
        )
        .await?;
        let embedded = if settings.embedded_outpost.enabled {
            Some(
                crate::embedded::ensure(&store, &secret)
                    .await
                    .context("cannot set up the embedded outpost")?,
            )
        } else {
            None
        };
        let metrics = Arc::new(Metrics::new()?);
        let (stop, stop_rx) = watch::channel(false);
        let hub = Arc::new(
            ChannelHub::new(
                store.clone(),
                metrics.clone(),
                url,
                crate::session_keys::SessionKeyring::new(&secret),
                stop_rx,
            )
            .with_public_url(
                Some(settings.external_url.trim_end_matches('/').to_owned())
                    .filter(|u| !u.is_empty()),
            ),
        );
        let web = crate::web::WebContext {
            sessions: Sealer::new(&secret.derive("web-session")),
            keys: crate::oidc::keys::KeyManager::new(
                store.clone(),
                Sealer::new(&secret.derive("oidc-signing-keys")),
            ),
            external_url: settings.external_url.clone(),
            session_seconds: settings.web.session_seconds.max(60),
        };
        let state = AppState {
            store,
            checker,
            hasher,
            sealer,
            rac_sealer: Sealer::new(&secret.derive(crate::rac::credentials::KEY_PURPOSE)),
            metrics,
            hub,
            web,
        };
        let tls = if settings.listen.https.is_empty() {
            None
        } else {
            Some(crate::tls::load_or_generate(
                &settings.tls.cert_file,
                &settings.tls.key_file,
                &settings.data_dir,
            )?)
        };
        let embedded_proxy = crate::embedded::EmbeddedProxy::new(embedded.is_some());
        Ok(Self {
            state,
            bootstrap,
            settings,
            stop,
            tls,
            embedded,
            embedded_proxy,
        })
    }

    /// The HTTP application (API and health).
    pub fn http_router(&self) -> Router {
        let limits = self.settings.limits;
        Router::new()
            .route("/-/health/live", get(api::health::live))
            .route("/-/health/ready", get(api::health::ready))
            .merge(crate::web::router())
            .merge(crate::oidc::router())
            .merge(api::router())
            .layer(DefaultBodyLimit::max(limits.max_body_bytes))
            .layer(TimeoutLayer::with_status_code(
                axum::http::StatusCode::REQUEST_TIMEOUT,
                Duration::from_secs(limits.request_timeout_seconds),
            ))
            .layer(axum::middleware::from_fn_with_state(
                self.state.metrics.clone(),
                metrics::track_http,
            ))
            .with_state(self.state.clone())
            .layer(axum::middleware::from_fn_with_state(
                self.embedded_proxy.clone(),
                crate::embedded::dispatch,
            ))
    }

    /// The metrics application (`/metrics` and health).
    pub fn metrics_router(&self) -> Router {
        Router::new()
            .route("/metrics", get(render_metrics))
            .route("/-/health/live", get(api::health::live))
            .route("/-/health/ready", get(api::health::ready))
            .with_state(self.state.clone())
    }

    /// Serves until `shutdown` completes, then drains open requests.
    pub async fn serve(
        self,
        listeners: Listeners,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let stop_tx = self.stop.clone();
        let stop_rx = self.stop.subscribe();
        let http_addr = listeners.http.local_addr()?;
        let metrics_addr = listeners.metrics.local_addr()?;
        tracing::info!(%http_addr, %metrics_addr, version = crate::VERSION, "Redoubt core listening");
        let limits = &self.settings.limits;
        // One guard for HTTP and HTTPS (one connection cap, one count per source); metrics and
        // health have their own, so they answer while the API listener is crowded.
        let api_guard = HttpGuard::new(crate::net::listener_limits(
            limits,
            limits.max_connections,
            IDLE_TIMEOUT,
        ));
        let metrics_guard = HttpGuard::new(crate::net::listener_limits(
            limits,
            METRICS_MAX_CONNECTIONS,
            IDLE_TIMEOUT,
        ));
        let http = tokio::spawn(crate::net::serve(
            api_guard.clone(),
            listeners.http,
            None,
            self.http_router(),
            stop_rx.clone(),
        ));
        let metrics = tokio::spawn(crate::net::serve(
            metrics_guard,
            listeners.metrics,
            None,
            self.metrics_router(),
            stop_rx.clone(),
        ));
        let hub = tokio::spawn(self.state.hub.clone().run());
        // The listener is bound, so the embedded outpost's first calls wait in its backlog until
        // the server below runs.
        let embedded = match &self.embedded {
            Some(identity) => {
                let running = crate::embedded::start(
                    identity,
                    http_addr,
                    &self.settings.data_dir,
                    &self.settings.log_level,
                    self.embedded_proxy.clone(),
                    self.state.store.clock(),
                )
                .await
                .context("cannot start the embedded outpost")?;
                self.state
                    .metrics
                    .attach_embedded(running.registry().clone());
                Some(running)
            }
            None => None,
        };
        let https = match (listeners.https, &self.tls) {
            (Some(listener), Some(tls)) => {
                let https_addr = listener.local_addr()?;
                tracing::info!(%https_addr, cert = %tls.cert_path.display(), "Redoubt core listening for HTTPS");
                Some(tokio::spawn(crate::net::serve(
                    api_guard.clone(),
                    listener,
                    Some(tokio_rustls::TlsAcceptor::from(tls.config.clone())),
                    self.http_router().layer(axum::Extension(crate::web::Https)),
                    stop_rx.clone(),
                )))
            }
            _ => None,
        };
        let pruner = tokio::spawn(prune_events(
            self.state.store.clone(),
            self.settings.events.retention_days,
            stop_rx.clone(),
        ));
        tokio::spawn(async move {
            shutdown.await;
            tracing::info!("shutting down: draining open requests");
            let _ = stop_tx.send(true);
        });
        let (http_result, metrics_result) = tokio::join!(http, metrics);
        pruner.abort();
        if let Some(https) = https {
            let _ = https.await;
        }
        if let Some(embedded) = embedded {
            embedded.stop().await;
        }
        let _ = hub.await;
        self.state.store.close().await;
        http_result.context("HTTP server failed")?;
        metrics_result.context("metrics server failed")?;
        tracing::info!("stopped");
        Ok(())
    }
}

async fn render_metrics(State(state): State<AppState>) -> impl axum::response::IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(&state.store).await,
    )
}

/// Deletes events past their retention and long-gone outpost instances, hourly; with several
/// replicas only one prunes events per run.
async fn prune_events(store: Store, retention_days: i64, mut stop: watch::Receiver<bool>) {
    loop {
        if retention_days > 0 {
            let before = store.now() - retention_days * 86_400;
            match store.prune_events_exclusive(before).await {
                Ok(Some(n)) if n > 0 => {
                    tracing::info!(deleted = n, retention_days, "pruned old events")
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "pruning old events failed"),
            }
        }
        match store.prune_oidc_tokens(store.now()).await {
            Ok(n) if n > 0 => tracing::debug!(deleted = n, "pruned expired OIDC codes and tokens"),
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "pruning expired OIDC codes and tokens failed"),
        }
        match store.prune_lockouts(store.now()).await {
            Ok(n) if n > 0 => tracing::debug!(forgotten = n, "forgot ended lockouts"),
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "pruning ended lockouts failed"),
        }
        match store.prune_session_revocations().await {
            Ok(n) if n > 0 => tracing::info!(forgotten = n, "forgot expired session revocations"),
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "pruning session revocations failed"),
        }
        match store
            .prune_rac_connections(store.now() - RAC_CONNECTION_RETENTION_SECONDS)
            .await
        {
            Ok(n) if n > 0 => tracing::debug!(forgotten = n, "forgot finished RAC connections"),
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "pruning RAC connections failed"),
        }
        match store
            .prune_instances(store.now() - INSTANCE_RETENTION_SECONDS)
            .await
        {
            Ok(n) if n > 0 => tracing::info!(
                forgotten = n,
                "forgot outpost instances not seen for a week"
            ),
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "pruning outpost instances failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(PRUNE_INTERVAL) => {}
            _ = stop.changed() => return,
        }
    }
}
