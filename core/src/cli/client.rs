//! The HTTP client of the admin CLI: JSON in and out; problem documents and connection failures
//! become one readable error line.

use anyhow::{Context, anyhow, bail};
use reqwest::{Method, StatusCode};
use serde_json::{Map, Value};
use std::fmt;

/// The core answered with an error status (usually an RFC 9457 problem document).
#[derive(Debug)]
pub(crate) struct ApiFailure {
    pub(crate) status: StatusCode,
    /// The last segment of the problem `type`, e.g. `not-found`; empty for other bodies.
    pub(crate) kind: String,
    pub(crate) detail: String,
}

impl fmt::Display for ApiFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.kind == "unauthorized" {
            // The server's text speaks to API clients; say what to do at a shell instead.
            return write!(
                f,
                "the API token was refused: it is unknown, revoked or expired; get a fresh one \
                 with `redoubt-core login` and set REDOUBT_TOKEN (HTTP {})",
                self.status.as_u16()
            );
        }
        write!(f, "{} (HTTP {})", self.detail, self.status.as_u16())
    }
}

impl std::error::Error for ApiFailure {}

impl ApiFailure {
    /// Reads an error body: `detail` and `type` of a problem document, else the text itself.
    fn from_body(status: StatusCode, text: &str) -> Self {
        let problem = serde_json::from_str::<Value>(text).ok();
        let field = |name: &str| {
            problem
                .as_ref()
                .and_then(|p| p.get(name))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let kind = field("type")
            .and_then(|t| t.rsplit('/').next().map(str::to_owned))
            .unwrap_or_default();
        let detail = field("detail")
            .or_else(|| Some(text.trim().to_owned()).filter(|t| !t.is_empty()))
            .unwrap_or_else(|| {
                status
                    .canonical_reason()
                    .unwrap_or("request failed")
                    .to_owned()
            });
        Self {
            status,
            kind,
            detail,
        }
    }
}

/// A client for one core.
#[derive(Debug, Clone)]
pub struct ApiClient {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl ApiClient {
    /// A client for `base`, authenticating with `token` when given.
    pub fn new(base: &str, token: Option<String>) -> anyhow::Result<Self> {
        let base = base.trim_end_matches('/').to_owned();
        match reqwest::Url::parse(&base) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => {}
            _ => bail!(
                "--url / REDOUBT_URL `{base}` is not an http:// or https:// URL \
                 (e.g. http://127.0.0.1:9000)"
            ),
        }
        if let Some(token) = &token
            && token.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            bail!("the API token (REDOUBT_TOKEN or --token) contains spaces or control characters");
        }
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(60))
            .build()
            .context("cannot build the HTTP client")?;
        Ok(Self { base, token, http })
    }

    /// The core's base URL, as given.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Sends a request and returns the JSON body (`Value::Null` for an empty answer).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.base);
        let mut request = self.http.request(method, &url);
        if !query.is_empty() {
            request = request.query(query);
        }
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| self.unreachable(&e))?;
        let status = response.status();
        let text = response.text().await.map_err(|e| self.unreachable(&e))?;
        if !status.is_success() {
            let mut failure = ApiFailure::from_body(status, &text);
            if failure.kind.is_empty() {
                failure.detail = format!(
                    "{} from {url}; is --url / REDOUBT_URL the core's address?",
                    failure.detail
                );
            }
            return Err(failure.into());
        }
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text).with_context(|| {
            format!(
                "the answer of {url} is not JSON (HTTP {}); is --url / REDOUBT_URL a Redoubt core?",
                status.as_u16()
            )
        })
    }

    /// The error for a request that got no answer, with its innermost cause.
    fn unreachable(&self, error: &reqwest::Error) -> anyhow::Error {
        let cause = if error.is_timeout() {
            "no answer within 60 seconds".to_owned()
        } else {
            innermost_cause(error)
        };
        anyhow!(
            "cannot reach the core at {}: {cause} (check --url or REDOUBT_URL)",
            self.base
        )
    }

    pub async fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.call(Method::GET, path, &[], None).await
    }
    /// GET with query parameters (percent-encoded by reqwest).
    pub async fn get_query(&self, path: &str, query: &[(&str, String)]) -> anyhow::Result<Value> {
        self.call(Method::GET, path, query, None).await
    }
    pub async fn post(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        self.call(Method::POST, path, &[], Some(&body)).await
    }
    pub async fn put(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        self.call(Method::PUT, path, &[], Some(&body)).await
    }
    pub async fn patch(&self, path: &str, body: Map<String, Value>) -> anyhow::Result<Value> {
        if body.is_empty() {
            bail!("nothing to change: give at least one option (see --help)");
        }
        self.call(Method::PATCH, path, &[], Some(&Value::Object(body)))
            .await
    }
    pub async fn delete(&self, path: &str) -> anyhow::Result<Value> {
        self.call(Method::DELETE, path, &[], None).await
    }
}

/// The deepest error in the `source` chain: "Connection refused (os error 111)" rather than
/// "error sending request for url (...)".
fn innermost_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut current = error;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}

/// Sets `key` in `body` when `value` is given.
pub(crate) fn put_some(body: &mut Map<String, Value>, key: &str, value: Option<impl Into<Value>>) {
    if let Some(value) = value {
        body.insert(key.to_owned(), value.into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problem_documents_become_one_line() {
        let failure = ApiFailure::from_body(
            StatusCode::NOT_FOUND,
            r#"{"type":"https://redoubt.dev/problems/not-found","title":"Not Found","status":404,"detail":"user not found"}"#,
        );
        assert_eq!(failure.kind, "not-found");
        assert_eq!(failure.to_string(), "user not found (HTTP 404)");
        let plain = ApiFailure::from_body(StatusCode::BAD_GATEWAY, "");
        assert_eq!(plain.to_string(), "Bad Gateway (HTTP 502)");
        let refused = ApiFailure::from_body(
            StatusCode::UNAUTHORIZED,
            r#"{"type":"https://redoubt.dev/problems/unauthorized","detail":"x"}"#,
        );
        assert!(refused.to_string().contains("redoubt-core login"));
    }

    #[test]
    fn urls_without_a_scheme_are_refused() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        assert!(ApiClient::new("127.0.0.1:9000", None).is_err());
        assert!(ApiClient::new("http://127.0.0.1:9000/", None).is_ok());
        assert!(ApiClient::new("http://127.0.0.1:9000", Some("a b".into())).is_err());
    }
}
