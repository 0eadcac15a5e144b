//! Calls a protocol module makes to the core on behalf of an end user: verify credentials,
//! change a password, record events. Each call is bounded in time and body size; failures say
//! whether the core answered (a verdict) or could not be reached (serve from the cache).

use crate::endpoints::{CoreEndpoints, Endpoint};
use redoubt_outpost_proto::credentials::{
    ChangePasswordRequest, ChangePasswordResponse, OutpostEventsRequest, VerifyCredentialsRequest,
    VerifyCredentialsResponse,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::sync::Arc;
use std::time::Duration;

/// Path of the credential check.
pub const VERIFY_PATH: &str = "/api/v1/outpost/credentials/verify";
/// Path of the password change on behalf of a user who proved the old one.
pub const CHANGE_PASSWORD_PATH: &str = "/api/v1/outpost/credentials/password";
/// Path where outposts record events (RADIUS accounting, ...).
pub const EVENTS_PATH: &str = "/api/v1/outpost/events";
/// Longest wait for one call: a credential check costs an Argon2id verification in the core.
const CALL_TIMEOUT: Duration = Duration::from_secs(15);
/// Largest answer accepted.
const MAX_ANSWER_BYTES: usize = 1 << 20;

/// Why a call to the core gave no verdict.
#[derive(Debug, thiserror::Error)]
pub enum CoreCallError {
    /// The core could not be reached or did not answer in time: cached state may be used.
    #[error("cannot reach the core: {0}")]
    Unreachable(String),
    /// The core answered, but not with a verdict (refused token, server error, bad body).
    #[error("the core answered {path} with {detail}")]
    Refused { path: &'static str, detail: String },
}

impl CoreCallError {
    /// Whether the core was unreachable (as opposed to answering with an error).
    pub fn is_unreachable(&self) -> bool {
        matches!(self, Self::Unreachable(_))
    }

    /// Whether the core refused the request itself (HTTP 4xx other than 401, 408 and 429):
    /// sending it again cannot help. A refused token (401) may be fixed by the operator, and
    /// 408/429 say "later", so those are not refusals.
    pub fn is_refusal(&self) -> bool {
        let Self::Refused { detail, .. } = self else {
            return false;
        };
        let status = detail
            .strip_prefix("HTTP ")
            .and_then(|rest| rest.get(..3))
            .and_then(|code| code.parse::<u16>().ok());
        matches!(status, Some(400..=499)) && !matches!(status, Some(401 | 408 | 429))
    }
}

/// A client for the outpost-facing API, authenticated with the outpost's token.
/// Calls go to the endpoint the runtime uses; one that cannot be reached is skipped for the
/// next ([`CoreEndpoints::with_failover`]).
#[derive(Clone)]
pub struct CoreApi {
    endpoints: Arc<CoreEndpoints>,
    token: String,
    /// Told about every answer from the core but a refused token (health: the core was
    /// reached).
    contact: Option<crate::core_contact::CoreContact>,
}

impl std::fmt::Debug for CoreApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CoreApi")
            .field("endpoints", &self.endpoints)
            .finish_non_exhaustive()
    }
}

impl CoreApi {
    /// A client for the core at `base_url` (one endpoint; tests and tools).
    pub fn new(http: reqwest::Client, base_url: &str, token: &str) -> Self {
        Self::with_endpoints(Arc::new(CoreEndpoints::single(http, base_url)), token)
    }

    /// A client for the core's `endpoints`, shared with the runtime.
    pub fn with_endpoints(endpoints: Arc<CoreEndpoints>, token: &str) -> Self {
        Self {
            endpoints,
            token: token.trim().to_owned(),
            contact: None,
        }
    }

    /// Records every answer from the core in `contact`.
    pub fn with_contact(mut self, contact: crate::core_contact::CoreContact) -> Self {
        self.contact = Some(contact);
        self
    }

    /// Asks the core whether `request`'s credentials are good for its provider.
    pub async fn verify_credentials(
        &self,
        request: &VerifyCredentialsRequest,
    ) -> Result<VerifyCredentialsResponse, CoreCallError> {
        self.post(VERIFY_PATH, request).await
    }

    /// Changes a user's password after the core checked the old one.
    pub async fn change_password(
        &self,
        request: &ChangePasswordRequest,
    ) -> Result<ChangePasswordResponse, CoreCallError> {
        self.post(CHANGE_PASSWORD_PATH, request).await
    }

    /// Records events in the core's event log.
    pub async fn record_events(&self, request: &OutpostEventsRequest) -> Result<(), CoreCallError> {
        let _: serde_json::Value = self.post(EVENTS_PATH, request).await?;
        Ok(())
    }

    /// Posts an `application/x-www-form-urlencoded` body to an OAuth endpoint of the core
    /// (`/oauth/token`, `/oauth/introspect`) as the OAuth client `client_id`: HTTP Basic with the
    /// outpost's token as the password (the core accepts it for the providers this outpost serves).
    pub async fn post_oauth_form<T: DeserializeOwned>(
        &self,
        path: &'static str,
        client_id: &str,
        form: String,
    ) -> Result<T, CoreCallError> {
        let (status, bytes) = self
            .send_raw(path, |endpoint| {
                endpoint
                    .http
                    .post(format!("{}{path}", endpoint.base_url))
                    .basic_auth(client_id, Some(&self.token))
                    .header(
                        reqwest::header::CONTENT_TYPE,
                        "application/x-www-form-urlencoded",
                    )
                    .body(form.clone())
            })
            .await?;
        Self::parse(path, status, &bytes)
    }

    /// Posts a JSON body to an outpost-facing endpoint (bearer: the outpost's token).
    pub async fn post_json<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &'static str,
        body: &B,
    ) -> Result<T, CoreCallError> {
        self.post(path, body).await
    }

    /// Like [`CoreApi::post_json`], for endpoints that refuse with a documented body: a 4xx
    /// answer whose body parses as `R` is `Ok(Err(refusal))`.
    pub async fn post_refusable<B: Serialize, T: DeserializeOwned, R: DeserializeOwned>(
        &self,
        path: &'static str,
        body: &B,
    ) -> Result<Result<T, R>, CoreCallError> {
        let (status, bytes) = self
            .send_raw(path, |e| self.json_request(&e, path, body))
            .await?;
        if status.is_client_error()
            && let Ok(refusal) = serde_json::from_slice::<R>(&bytes)
        {
            return Ok(Err(refusal));
        }
        Self::parse(path, status, &bytes).map(Ok)
    }

    async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &'static str,
        body: &B,
    ) -> Result<T, CoreCallError> {
        let (status, bytes) = self
            .send_raw(path, |e| self.json_request(&e, path, body))
            .await?;
        Self::parse(path, status, &bytes)
    }

    fn json_request<B: Serialize>(
        &self,
        endpoint: &Endpoint,
        path: &str,
        body: &B,
    ) -> reqwest::RequestBuilder {
        endpoint
            .http
            .post(format!("{}{path}", endpoint.base_url))
            .bearer_auth(&self.token)
            .json(body)
    }

    /// The status and body of an answer from the first endpoint that can be reached.
    async fn send_raw(
        &self,
        path: &'static str,
        request: impl Fn(Endpoint) -> reqwest::RequestBuilder,
    ) -> Result<(reqwest::StatusCode, Vec<u8>), CoreCallError> {
        let (status, bytes) = self
            .endpoints
            .with_failover(CoreCallError::is_unreachable, |endpoint| {
                Self::exchange(path, request(endpoint))
            })
            .await?;
        // Any answer but a refused token means the core can give verdicts.
        if let Some(contact) = &self.contact
            && status != reqwest::StatusCode::UNAUTHORIZED
        {
            contact.reached();
        }
        Ok((status, bytes))
    }

    /// One request's status and body (server errors other than 500 count as unreachable).
    async fn exchange(
        path: &'static str,
        request: reqwest::RequestBuilder,
    ) -> Result<(reqwest::StatusCode, Vec<u8>), CoreCallError> {
        let unreachable =
            |e: reqwest::Error| CoreCallError::Unreachable(crate::fetch::error_chain(&e));
        let mut response = request
            .timeout(CALL_TIMEOUT)
            .send()
            .await
            .map_err(unreachable)?;
        let status = response.status();
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(unreachable)? {
            if bytes.len() + chunk.len() > MAX_ANSWER_BYTES {
                return Err(CoreCallError::Refused {
                    path,
                    detail: format!("an answer larger than {MAX_ANSWER_BYTES} bytes"),
                });
            }
            bytes.extend_from_slice(&chunk);
        }
        if status.is_server_error() && status.as_u16() != 500 {
            // 502/503/504 from a load balancer in front of a core that is down.
            return Err(CoreCallError::Unreachable(format!("HTTP {status}")));
        }
        Ok((status, bytes))
    }

    fn parse<T: DeserializeOwned>(
        path: &'static str,
        status: reqwest::StatusCode,
        bytes: &[u8],
    ) -> Result<T, CoreCallError> {
        if !status.is_success() {
            let detail = String::from_utf8_lossy(&bytes[..bytes.len().min(300)]).into_owned();
            return Err(CoreCallError::Refused {
                path,
                detail: format!("HTTP {status}: {detail}"),
            });
        }
        // An empty answer (204) reads as JSON `null`, which `()` and `Option` accept.
        let bytes = if bytes.is_empty() { b"null" } else { bytes };
        serde_json::from_slice(bytes).map_err(|e| CoreCallError::Refused {
            path,
            detail: format!("a body that does not parse: {e}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_the_client_errors_a_retry_cannot_fix() {
        let refused = |detail: &str| CoreCallError::Refused {
            path: EVENTS_PATH,
            detail: detail.to_owned(),
        };
        assert!(refused("HTTP 403 Forbidden: not served").is_refusal());
        assert!(refused("HTTP 400 Bad Request: events[0]").is_refusal());
        assert!(!refused("HTTP 401 Unauthorized: token").is_refusal());
        assert!(!refused("HTTP 429 Too Many Requests: later").is_refusal());
        assert!(!refused("HTTP 500 Internal Server Error: db").is_refusal());
        assert!(!refused("a body that does not parse").is_refusal());
        assert!(!CoreCallError::Unreachable("x".into()).is_refusal());
    }
}
