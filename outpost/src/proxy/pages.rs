//! The small HTML pages the outpost answers with itself: unknown host, a forwarded URL that
//! cannot be reconstructed, a refused return URL, a failed login, upstream errors. Every value
//! shown is escaped; none of them redirects automatically, so none can loop.

use super::body::ProxyBody;
use http::{HeaderValue, Response, StatusCode, header};

/// A page with `status`, a title and one paragraph (escaped here).
pub fn page(status: StatusCode, title: &str, message: &str) -> Response<ProxyBody> {
    page_with_link(status, title, message, None)
}

/// A page with an optional link (`(href, text)`).
pub fn page_with_link(
    status: StatusCode,
    title: &str,
    message: &str,
    link: Option<(&str, &str)>,
) -> Response<ProxyBody> {
    let link = link
        .map(|(href, text)| format!("<p><a href=\"{}\">{}</a></p>", escape(href), escape(text)))
        .unwrap_or_default();
    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\"><title>{title}</title>\
<style>body{{font-family:system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;color:#222}}h1{{font-size:1.4rem}}</style></head>\
<body><main><h1>{title}</h1><p>{message}</p>{link}<p><small>Redoubt outpost &middot; HTTP {code}</small></p></main></body></html>\n",
        title = escape(title),
        message = escape(message),
        code = status.as_u16(),
    );
    let mut response = Response::new(ProxyBody::full(html));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::HeaderName::from_static("x-content-type-options"),
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// No provider of this outpost serves `host`.
pub fn unknown_host(host: &str) -> Response<ProxyBody> {
    page(
        StatusCode::NOT_FOUND,
        "Unknown application",
        &format!(
            "This outpost serves no application at the host \u{201c}{host}\u{201d}. Check the external host (or, in forward_domain mode, the cookie domain) of the proxy provider, and that the reverse proxy passes the original host."
        ),
    )
}

/// The reverse proxy did not say where the user was going.
pub fn bad_forward(detail: &str) -> Response<ProxyBody> {
    page(
        StatusCode::BAD_REQUEST,
        "Misconfigured reverse proxy",
        &format!(
            "The original URL cannot be reconstructed from this forward-auth request: {detail}. See the example configurations for the headers each reverse proxy must send."
        ),
    )
}

/// Escapes text for HTML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_escape_what_they_show() {
        assert_eq!(
            escape("<a href='x'>&\""),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;"
        );
        let r = unknown_host("<script>");
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        match r.into_body() {
            ProxyBody::Full(Some(b)) => {
                let text = String::from_utf8(b.to_vec()).expect("utf8");
                assert!(text.contains("&lt;script&gt;"));
                assert!(!text.contains("<script>"));
            }
            other => panic!("unexpected body {other:?}"),
        }
    }
}
