//! `/api/v1/events`: the audit log, newest first, with filters.

use super::dto::*;
use super::error::{ApiError, ApiResult};
use super::extract::{Admin, ApiQuery};
use super::state::AppState;
use crate::model::EventFilter;
use axum::Json;
use axum::extract::State;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Routes of this module.
pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_events))
}

fn time_bound(field: &str, value: Option<&String>) -> Result<Option<i64>, ApiError> {
    value
        .map(|text| {
            parse_rfc3339(text).ok_or_else(|| {
                ApiError::validation(format!(
                    "{field}: `{text}` is not an RFC 3339 time such as 2026-01-31T12:00:00Z"
                ))
            })
        })
        .transpose()
}

/// List events matching every given filter.
#[utoipa::path(get, path = "/api/v1/events", tag = "events", params(EventQuery),
    responses((status = 200, body = PageDto<EventDto>)))]
async fn list_events(
    _admin: Admin,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<EventQuery>,
) -> ApiResult<Json<PageDto<EventDto>>> {
    let filter = EventFilter {
        action: query.action.clone(),
        actor: query.actor.clone(),
        target: query.target.clone(),
        outcome: query.outcome.clone(),
        source_address: query.source_address.clone(),
        since: time_bound("since", query.since.as_ref())?,
        until: time_bound("until", query.until.as_ref())?,
    };
    let page_size = query.page_size.unwrap_or(50).clamp(1, 1000);
    let page = state
        .store
        .list_events(&filter, query.page.unwrap_or(1).max(1), page_size)
        .await?;
    Ok(Json(PageDto::from_page(page, EventDto::from)))
}
