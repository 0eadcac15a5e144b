//! Reading client credentials from a request (RFC 6749 section 2.3.1): HTTP Basic with the
//! form-urlencoded client id and secret (`client_secret_basic`), or `client_id` and
//! `client_secret` in the body (`client_secret_post`), or `client_id` alone (public clients).
//! Using two methods at once is refused.

use super::clients::PresentedClient;
use super::request::Params;
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;

/// Why credentials could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unreadable {
    /// No client identified itself.
    Missing,
    /// Malformed header or two methods at once.
    Invalid,
}

fn form_decode(text: &str) -> String {
    url::form_urlencoded::parse(format!("x={text}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// The client credentials of a request.
pub fn read(headers: &HeaderMap, form: &Params) -> Result<PresentedClient, Unreadable> {
    let basic = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Basic ")
                .or_else(|| v.strip_prefix("basic "))
        });
    match (basic, form.get("client_secret")) {
        (Some(encoded), None) => {
            let decoded = data_encoding::BASE64
                .decode(encoded.trim().as_bytes())
                .map_err(|_| Unreadable::Invalid)?;
            let text = String::from_utf8(decoded).map_err(|_| Unreadable::Invalid)?;
            let (id, secret) = text.split_once(':').ok_or(Unreadable::Invalid)?;
            let client_id = form_decode(id);
            if form
                .get("client_id")
                .is_some_and(|body_id| body_id != client_id)
            {
                return Err(Unreadable::Invalid);
            }
            Ok(PresentedClient {
                client_id,
                secret: Some(form_decode(secret)).filter(|s| !s.is_empty()),
            })
        }
        (Some(_), Some(_)) => Err(Unreadable::Invalid),
        (None, secret) => {
            let client_id = form.get("client_id").ok_or(Unreadable::Missing)?;
            Ok(PresentedClient {
                client_id: client_id.to_owned(),
                secret: secret.map(str::to_owned),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn form(text: &str) -> Params {
        Params::parse(text.as_bytes()).expect("form")
    }

    #[test]
    fn basic_post_and_public() {
        let mut headers = HeaderMap::new();
        let encoded = data_encoding::BASE64.encode(b"my%20app:s%3Acret");
        headers.insert(
            AUTHORIZATION,
            HeaderValue::from_str(&format!("Basic {encoded}")).expect("header"),
        );
        assert_eq!(
            read(&headers, &form("")),
            Ok(PresentedClient {
                client_id: "my app".into(),
                secret: Some("s:cret".into())
            })
        );
        assert_eq!(
            read(&headers, &form("client_secret=x")),
            Err(Unreadable::Invalid)
        );
        let empty = HeaderMap::new();
        assert_eq!(
            read(&empty, &form("client_id=a&client_secret=b")),
            Ok(PresentedClient {
                client_id: "a".into(),
                secret: Some("b".into())
            })
        );
        assert_eq!(
            read(&empty, &form("client_id=a")),
            Ok(PresentedClient {
                client_id: "a".into(),
                secret: None
            })
        );
        assert_eq!(read(&empty, &form("")), Err(Unreadable::Missing));
    }
}
