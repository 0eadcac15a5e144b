//! Server-rendered HTML: escaping and the page frame. Pages work without JavaScript and carry
//! `lang`, labels for every field and `role="alert"` on errors. Responses forbid framing and
//! caching, and a strict Content-Security-Policy allows no scripts at all.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;\
padding:0 1rem;line-height:1.5;color:#1a1a1a}h1{font-size:1.5rem}label{display:block;\
margin-top:1rem;font-weight:600}input{font:inherit;width:100%;box-sizing:border-box;\
padding:.5rem;border:1px solid #767676;border-radius:4px}button{font:inherit;margin-top:1.25rem;\
padding:.5rem 1.25rem;border:0;border-radius:4px;background:#0b57d0;color:#fff;cursor:pointer}\
button.secondary{background:#5f6368}[role=alert]{border-left:4px solid #b3261e;\
background:#fdecea;padding:.75rem 1rem;margin:1rem 0}.notice{border-left:4px solid #146c2e;\
background:#e6f4ea;padding:.75rem 1rem;margin:1rem 0}code{word-break:break-all}\
.qr svg{width:12rem;height:12rem}section{margin-top:2rem}";

/// A whole page.
pub fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} – Redoubt</title><style>{STYLE}</style></head>\
         <body><main>{body}</main></body></html>",
        escape(title)
    )
}

/// An error box (announced by screen readers).
pub fn alert(message: &str) -> String {
    format!("<div role=\"alert\" id=\"error\">{}</div>", escape(message))
}

/// A hidden form field.
pub fn hidden(name: &str, value: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
        escape(name),
        escape(value)
    )
}

/// A page response with the security headers every page carries.
pub fn respond(status: StatusCode, html: String, set_cookies: &[String]) -> Response {
    let mut response = (status, html).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self' http: https:; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    for cookie in set_cookies {
        if let Ok(value) = HeaderValue::from_str(cookie) {
            headers.append(header::SET_COOKIE, value);
        }
    }
    response
}

/// A `303 See Other` to `location`, setting cookies.
pub fn redirect(location: &str, set_cookies: &[String]) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(location) {
        headers.insert(header::LOCATION, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    for cookie in set_cookies {
        if let Ok(value) = HeaderValue::from_str(cookie) {
            headers.append(header::SET_COOKIE, value);
        }
    }
    response
}

/// A page that only states a problem.
pub fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    respond(
        status,
        page(
            title,
            &format!("<h1>{}</h1>{}", escape(title), alert(message)),
        ),
        &[],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        assert!(page("T", "").starts_with("<!DOCTYPE html>\n<html lang=\"en\">"));
    }
}
