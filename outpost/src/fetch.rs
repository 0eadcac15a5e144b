//! `GET /api/v1/outpost/config`: the outpost's whole configuration over REST, read with the same
//! size bound as a control-channel message.

use crate::runtime::SessionError;
use redoubt_outpost_proto::config::ConfigSnapshot;
use redoubt_outpost_proto::control::MAX_MESSAGE_BYTES;

/// Path of the configuration endpoint.
pub const CONFIG_PATH: &str = "/api/v1/outpost/config";

/// Fetches the configuration of the outpost `token` belongs to from the core at `base_url`.
pub async fn fetch_config(
    http: &reqwest::Client,
    base_url: &str,
    token: &str,
) -> Result<ConfigSnapshot, SessionError> {
    let url = format!("{base_url}{CONFIG_PATH}");
    let unreachable = |e: reqwest::Error| SessionError::Unreachable {
        url: base_url.to_owned(),
        cause: error_chain(&e),
    };
    let mut response = http
        .get(&url)
        .bearer_auth(token)
        .send()
        .await
        .map_err(unreachable)?;
    match response.status().as_u16() {
        200 => {}
        401 => {
            return Err(SessionError::TokenRefused(
                "HTTP 401: unknown, rotated or deleted".into(),
            ));
        }
        403 => {
            return Err(SessionError::TokenRefused(
                "HTTP 403: this is not an outpost token".into(),
            ));
        }
        status => {
            return Err(SessionError::Closed(format!(
                "GET {url} answered HTTP {status}"
            )));
        }
    }
    let too_large = || {
        SessionError::Malformed(format!(
            "the configuration is larger than {MAX_MESSAGE_BYTES} bytes"
        ))
    };
    if response
        .content_length()
        .is_some_and(|n| n > MAX_MESSAGE_BYTES as u64)
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(unreachable)? {
        if body.len() + chunk.len() > MAX_MESSAGE_BYTES {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&body)
        .map_err(|e| SessionError::Malformed(format!("GET {CONFIG_PATH}: {e}")))
}

/// An error with its causes, on one line.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
