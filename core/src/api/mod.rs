//! The REST API under `/api/v1/`, its OpenAPI document (generated from the handlers) and the
//! health endpoints.

mod applications;
pub mod audit;
pub mod dto;
pub mod error;
mod events;
pub mod extract;
mod groups;
pub mod health;
pub mod openapi;
mod outpost_actions;
mod outpost_facing;
mod outpost_rac;
mod outposts;
pub mod provider_checks;
pub mod providers;
mod rac_endpoints;
mod sessions;
pub mod state;
mod tokens;
mod users;
pub(crate) mod validate;

pub use error::{ApiError, ApiResult};
pub use state::AppState;

use axum::Json;
use axum::Router;
use axum::extract::State;
use dto::InfoDto;
use extract::Admin;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

#[derive(OpenApi)]
#[openapi(
    info(title = "Redoubt core API", description = "Identities, applications, providers and outposts. \
        Authenticate with `Authorization: Bearer <token>`. Errors are RFC 9457 problem documents."),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    components(schemas(error::Problem, dto::RevealWhat))
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// Facts about the running core.
#[utoipa::path(get, path = "/api/v1/info", tag = "meta", responses((status = 200, body = InfoDto)))]
async fn info(_admin: Admin, State(state): State<AppState>) -> ApiResult<Json<InfoDto>> {
    Ok(Json(InfoDto {
        version: crate::VERSION.to_owned(),
        database: match state.store.backend() {
            crate::store::Backend::Sqlite => "sqlite",
            crate::store::Backend::Postgres => "postgres",
        }
        .to_owned(),
        revision: state.store.current_revision().await?,
        protocol_version: redoubt_outpost_proto::PROTOCOL_VERSION,
    }))
}

/// The API routes and the OpenAPI document describing them.
pub fn router_with_openapi() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let mut version = ApiDoc::openapi();
    version.info.version = crate::VERSION.to_owned();
    let (router, mut doc) = OpenApiRouter::with_openapi(version)
        .routes(routes!(info))
        .merge(users::router())
        .merge(groups::router())
        .merge(applications::router())
        .merge(providers::router())
        .merge(outposts::router())
        .merge(tokens::router())
        .merge(events::router())
        .merge(outpost_facing::router())
        .merge(outpost_rac::router())
        .merge(rac_endpoints::router())
        .merge(outpost_actions::router())
        .merge(crate::oidc::admin::router())
        .merge(sessions::router())
        .split_for_parts();
    openapi::add_problem_responses(&mut doc);
    (router, doc)
}

/// Everything under `/api/v1/`, including `/api/v1/schema.json`, with a problem+json 404.
pub fn router() -> Router<AppState> {
    let (router, openapi) = router_with_openapi();
    let schema = std::sync::Arc::new(openapi);
    router
        .route(
            redoubt_outpost_proto::control::CHANNEL_PATH,
            axum::routing::get(crate::channel::channel_handler),
        )
        .route(
            "/api/v1/schema.json",
            axum::routing::get(move || {
                let schema = schema.clone();
                async move { Json(schema.as_ref().clone()) }
            }),
        )
        .fallback(|| async { ApiError::not_found("route") })
}
