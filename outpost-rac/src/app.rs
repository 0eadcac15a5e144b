//! The RAC pages behind the proxy's sign-in: `/` lists the desktops the user may open (the core
//! decides), `/rac/{slug}` is the session page with a fresh ticket, `/rac/{slug}/ws` is the
//! session's WebSocket, `/static/*` the script and stylesheet. Every answer carries the strict
//! content security policy.

use crate::Shared;
use crate::connection::{self, Accepted};
use crate::pages::{self, EndpointLink, SessionPage};
use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, header};
use redoubt_outpost::proxy::body::ProxyBody;
use redoubt_outpost::proxy::session::Session;
use redoubt_outpost::proxy::state::ProviderView;
use redoubt_outpost::proxy::{InProcessApp, Peer};
use redoubt_outpost_proto::provider::RacAuthMode;
use redoubt_outpost_proto::rac::{
    ENDPOINTS_PATH, RacEndpointsRequest, RacEndpointsResponse, RacUser,
};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// The in-process application of RAC providers.
pub struct RacApp {
    pub shared: Arc<Shared>,
}

type Body = redoubt_outpost::proxy::upstream::UpstreamBody;

impl InProcessApp for RacApp {
    fn handle(
        &self,
        request: Request<Body>,
        provider: Arc<ProviderView>,
        session: Arc<Session>,
        peer: Peer,
    ) -> Pin<Box<dyn Future<Output = Response<ProxyBody>> + Send>> {
        let shared = self.shared.clone();
        Box::pin(async move { route(shared, request, provider, session, peer).await })
    }
}

async fn route(
    shared: Arc<Shared>,
    request: Request<Body>,
    provider: Arc<ProviderView>,
    session: Arc<Session>,
    peer: Peer,
) -> Response<ProxyBody> {
    let path = request.uri().path().to_owned();
    if request.method() != http::Method::GET && request.method() != http::Method::HEAD {
        return page(
            StatusCode::METHOD_NOT_ALLOWED,
            pages::error_page("Not allowed", "This page only answers GET."),
        );
    }
    if let Some(file) = pages::static_file(&path) {
        let mut response = Response::new(ProxyBody::full(Bytes::from_static(file.body.as_bytes())));
        set(&mut response, header::CONTENT_TYPE, file.content_type);
        set(&mut response, header::CACHE_CONTROL, "no-cache");
        return response;
    }
    if path == "/" {
        return list(&shared, &provider, &session).await;
    }
    let Some(rest) = path.strip_prefix("/rac/") else {
        return page(
            StatusCode::NOT_FOUND,
            pages::error_page("Not found", "There is no such page on this outpost."),
        );
    };
    match rest.split_once('/') {
        None => session_page(&shared, &provider, &session, rest),
        Some((slug, "ws")) => {
            match connection::accept(&shared, request, &provider, &session, slug, peer) {
                Accepted::Upgrade(response) => response,
                Accepted::Refused(status, message) => {
                    page(status, pages::error_page("Cannot connect", &message))
                }
            }
        }
        Some(_) => page(
            StatusCode::NOT_FOUND,
            pages::error_page("Not found", "There is no such page on this outpost."),
        ),
    }
}

fn set(response: &mut Response<ProxyBody>, name: header::HeaderName, value: &'static str) {
    response
        .headers_mut()
        .insert(name, HeaderValue::from_static(value));
}

/// An HTML page with the strict CSP and no caching.
pub fn page(status: StatusCode, html: String) -> Response<ProxyBody> {
    let mut response = Response::new(ProxyBody::full(html));
    *response.status_mut() = status;
    set(
        &mut response,
        header::CONTENT_TYPE,
        "text/html; charset=utf-8",
    );
    set(&mut response, header::CACHE_CONTROL, "no-store");
    set(&mut response, header::CONTENT_SECURITY_POLICY, pages::CSP);
    set(&mut response, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(&mut response, header::REFERRER_POLICY, "no-referrer");
    response
}

fn rac_user(session: &Session) -> RacUser {
    RacUser {
        user_id: session.user_id,
        sid: session.sid.clone(),
        auth_time_ms: session.auth_time_ms,
    }
}

async fn list(shared: &Shared, provider: &ProviderView, session: &Session) -> Response<ProxyBody> {
    let request = RacEndpointsRequest {
        provider_id: provider.id,
        user: rac_user(session),
    };
    let answer: Result<RacEndpointsResponse, _> =
        shared.core.post_json(ENDPOINTS_PATH, &request).await;
    let slugs = match answer {
        Ok(answer) => answer.endpoints,
        Err(error) => {
            tracing::warn!(%error, provider = provider.id, "cannot list the user's desktops");
            let message = if error.is_unreachable() {
                "The outpost cannot reach Redoubt right now, so it cannot tell which desktops you may open. Try again in a moment."
            } else {
                "Redoubt refused to list your desktops; your sign-in may have ended. Sign in again."
            };
            return page(
                StatusCode::SERVICE_UNAVAILABLE,
                pages::error_page("Desktops unavailable", message),
            );
        }
    };
    let state = shared.state();
    let links: Vec<EndpointLink> = slugs
        .iter()
        .filter_map(|slug| {
            let (_, endpoint) = state.endpoint(provider.id, slug)?;
            Some(EndpointLink {
                slug: slug.clone(),
                name: endpoint.name.clone(),
                description: endpoint.description.clone(),
            })
        })
        .collect();
    let who = if session.name.is_empty() {
        &session.username
    } else {
        &session.name
    };
    page(
        StatusCode::OK,
        pages::endpoint_list(who, &links, "/outpost.redoubt/sign_out"),
    )
}

fn session_page(
    shared: &Shared,
    provider: &ProviderView,
    session: &Session,
    slug: &str,
) -> Response<ProxyBody> {
    let state = shared.state();
    let Some((_, endpoint)) = state.endpoint(provider.id, slug) else {
        return page(
            StatusCode::NOT_FOUND,
            pages::error_page(
                "Not found",
                "There is no such desktop. Go back to the list and pick another.",
            ),
        );
    };
    let keys = shared.proxy_state().keys.clone();
    let mut random = [0u8; 40];
    if getrandom::fill(&mut random).is_err() {
        return page(
            StatusCode::SERVICE_UNAVAILABLE,
            pages::error_page(
                "Not ready",
                "The outpost cannot make a ticket right now; try again.",
            ),
        );
    }
    let Some(ticket) = crate::ticket::issue(
        &keys,
        provider.id,
        &session.sid,
        slug,
        shared.clock.now(),
        random,
    ) else {
        return page(
            StatusCode::SERVICE_UNAVAILABLE,
            pages::error_page(
                "Not ready",
                "The outpost has no session keys yet; try again in a moment.",
            ),
        );
    };
    page(
        StatusCode::OK,
        pages::session_page(&SessionPage {
            slug: slug.to_owned(),
            name: endpoint.name.clone(),
            ticket,
            prompt: endpoint.auth_mode == RacAuthMode::Prompt,
            username: endpoint.username.clone().unwrap_or_default(),
            domain: endpoint.domain.clone().unwrap_or_default(),
        }),
    )
}
