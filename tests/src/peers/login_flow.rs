//! A login through the real browser flow over plain HTTP, for tests and the benchmark that need
//! a session without a browser: follow redirects by hand from the application through the
//! outpost's start page to the core's login page, fill its forms (username and password, then
//! a TOTP code when asked) from what the HTML says, follow the authorization code back to the
//! outpost's callback, and keep every cookie set on the way in a small cookie jar.

use anyhow::{Context, bail};
use reqwest::StatusCode;
use std::time::Duration;
use url::Url;

/// Redirects and form posts one login may take before it is called a loop.
pub const MAX_STEPS: usize = 30;

/// One stored cookie.
#[derive(Debug, Clone, PartialEq)]
pub struct Cookie {
    pub name: String,
    pub value: String,
    /// The `Domain` attribute (without a leading dot), or the host that set it.
    pub domain: String,
    /// Set without a `Domain` attribute: sent back to that host only.
    pub host_only: bool,
    pub attributes: String,
}

/// Cookies by domain, as a browser keeps them (paths are ignored: every cookie goes to every
/// path of its host).
#[derive(Debug, Clone, Default)]
pub struct CookieJar {
    cookies: Vec<Cookie>,
}

impl CookieJar {
    /// Stores one `Set-Cookie` header received from `host`; an expired one deletes.
    pub fn store(&mut self, host: &str, set_cookie: &str) {
        let mut parts = set_cookie.split(';');
        let Some((name, value)) = parts.next().and_then(|p| p.split_once('=')) else {
            return;
        };
        let (name, value) = (name.trim().to_owned(), value.trim().to_owned());
        let mut domain = None;
        let mut expired = false;
        let attributes: Vec<&str> = parts.map(str::trim).collect();
        for attribute in &attributes {
            let (key, val) = attribute.split_once('=').unwrap_or((attribute, ""));
            match key.to_ascii_lowercase().as_str() {
                "domain" => domain = Some(val.trim_start_matches('.').to_ascii_lowercase()),
                "max-age" => expired |= val.parse::<i64>().is_ok_and(|v| v <= 0),
                "expires" => expired |= val.contains("1970"),
                _ => {}
            }
        }
        let host = host.to_ascii_lowercase();
        let (domain, host_only) = match domain {
            Some(d) if host == d || host.ends_with(&format!(".{d}")) => (d, false),
            Some(_) => return, // a browser refuses a domain the host is not under
            None => (host, true),
        };
        self.cookies
            .retain(|c| !(c.name == name && c.domain == domain && c.host_only == host_only));
        if !expired {
            self.cookies.push(Cookie {
                name,
                value,
                domain,
                host_only,
                attributes: attributes.join("; "),
            });
        }
    }

    /// The cookies a browser would send to `host`.
    pub fn for_host(&self, host: &str) -> Vec<&Cookie> {
        let host = host.to_ascii_lowercase();
        self.cookies
            .iter()
            .filter(|c| {
                host == c.domain || (!c.host_only && host.ends_with(&format!(".{}", c.domain)))
            })
            .collect()
    }

    /// The `Cookie` header for `host`, if any cookie applies.
    pub fn header_for(&self, host: &str) -> Option<String> {
        let cookies = self.for_host(host);
        (!cookies.is_empty()).then(|| {
            cookies
                .iter()
                .map(|c| format!("{}={}", c.name, c.value))
                .collect::<Vec<_>>()
                .join("; ")
        })
    }

    /// Every stored cookie.
    pub fn all(&self) -> &[Cookie] {
        &self.cookies
    }

    /// The first cookie named `name`.
    pub fn get(&self, name: &str) -> Option<&Cookie> {
        self.cookies.iter().find(|c| c.name == name)
    }

    /// Replaces the value of every cookie named `name` (to tamper with it).
    pub fn set_value(&mut self, name: &str, value: &str) {
        for cookie in self.cookies.iter_mut().filter(|c| c.name == name) {
            value.clone_into(&mut cookie.value);
        }
    }
}

/// Resolves `localhost` and every `*.localhost` name to the loopback address, as Chromium does,
/// and other names through the system.
#[derive(Debug, Clone, Copy)]
pub struct LocalhostResolver;

impl reqwest::dns::Resolve for LocalhostResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().trim_end_matches('.').to_ascii_lowercase();
        Box::pin(async move {
            if host == "localhost" || host.ends_with(".localhost") {
                let addrs: reqwest::dns::Addrs = Box::new(std::iter::once(
                    std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
                ));
                return Ok(addrs);
            }
            let found: Vec<std::net::SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let addrs: reqwest::dns::Addrs = Box::new(found.into_iter());
            Ok(addrs)
        })
    }
}

/// A response as the flow saw it.
#[derive(Debug, Clone)]
pub struct Page {
    pub url: Url,
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

/// A client that never follows redirects by itself and keeps cookies in a [`CookieJar`].
#[derive(Debug, Clone)]
pub struct HttpBrowser {
    client: reqwest::Client,
    pub jar: CookieJar,
}

impl HttpBrowser {
    pub fn new() -> anyhow::Result<Self> {
        super::crypto();
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .dns_resolver(LocalhostResolver)
            .build()?;
        Ok(Self {
            client,
            jar: CookieJar::default(),
        })
    }

    /// Sends one request (GET, or a form POST when `form` is given) with the jar's cookies and
    /// `extra` headers; stores the cookies it sets; does not follow a redirect.
    pub async fn send(
        &mut self,
        url: &Url,
        form: Option<&[(String, String)]>,
        extra: &[(&str, &str)],
    ) -> anyhow::Result<Page> {
        let host = url.host_str().context("URL without a host")?.to_owned();
        if !is_loopback_name(&host) {
            bail!("refusing to leave the machine: {url}");
        }
        let mut request = match form {
            Some(fields) => {
                let body = url::form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(fields)
                    .finish();
                self.client
                    .post(url.clone())
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(body)
            }
            None => self.client.get(url.clone()),
        };
        if let Some(cookies) = self.jar.header_for(&host) {
            request = request.header("cookie", cookies);
        }
        for (name, value) in extra {
            request = request.header(*name, *value);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("request {url}"))?;
        for set_cookie in response.headers().get_all("set-cookie") {
            if let Ok(text) = set_cookie.to_str() {
                self.jar.store(&host, text);
            }
        }
        Ok(Page {
            url: url.clone(),
            status: response.status(),
            headers: response.headers().clone(),
            body: response.text().await.unwrap_or_default(),
        })
    }

    /// GETs `url` and follows redirects (at most [`MAX_STEPS`]); returns the last page.
    pub async fn get(&mut self, url: &str) -> anyhow::Result<Page> {
        let url = Url::parse(url)?;
        let page = self.send(&url, None, &[]).await?;
        self.follow(page).await
    }

    /// Follows `page`'s redirects, if any.
    pub async fn follow(&mut self, mut page: Page) -> anyhow::Result<Page> {
        for _ in 0..MAX_STEPS {
            let Some(next) = redirect_target(&page)? else {
                return Ok(page);
            };
            page = self.send(&next, None, &[]).await?;
        }
        bail!("more than {MAX_STEPS} redirects, last at {}", page.url)
    }
}

/// Whether `host` names this machine: `localhost`, `*.localhost` or a loopback address. The
/// flow never sends a request anywhere else (an open redirect must not reach the network).
pub fn is_loopback_name(host: &str) -> bool {
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    host == "localhost"
        || host.ends_with(".localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Where a redirect response points, resolved against its URL.
pub fn redirect_target(page: &Page) -> anyhow::Result<Option<Url>> {
    if !page.status.is_redirection() {
        return Ok(None);
    }
    let location = page
        .headers
        .get("location")
        .context("redirect without Location")?
        .to_str()?;
    Ok(Some(page.url.join(location)?))
}

/// What the login forms ask for.
pub struct Credentials<'a> {
    pub username: &'a str,
    pub password: &'a str,
    /// Gives a current TOTP code when the login asks for one.
    pub totp: Option<&'a (dyn Fn() -> String + Send + Sync)>,
}

/// Opens `url` (an application behind the proxy, or the outpost's start page) and logs in with
/// `credentials`, submitting every login form the pages show until one shows none; returns the
/// last page (the application, when the login worked). The session cookies are in `browser.jar`.
pub async fn login(
    browser: &mut HttpBrowser,
    url: &str,
    credentials: &Credentials<'_>,
) -> anyhow::Result<Page> {
    let mut page = browser.get(url).await?;
    for _ in 0..MAX_STEPS {
        let Some(form) = forms(&page.body)
            .into_iter()
            .find(|f| f.fields.iter().any(|i| i.role() != Role::Other))
        else {
            return Ok(page);
        };
        let fields = form.fill(credentials)?;
        let action = page.url.join(&form.action)?;
        let posted = if form.method.eq_ignore_ascii_case("get") {
            let mut target = action;
            target.query_pairs_mut().extend_pairs(&fields);
            browser.send(&target, None, &[]).await?
        } else {
            browser.send(&action, Some(&fields), &[]).await?
        };
        if posted.status.is_client_error() || posted.status.is_server_error() {
            bail!(
                "submitting the form at {} answered {}: {}",
                page.url,
                posted.status,
                posted.body
            );
        }
        let next = browser.follow(posted).await?;
        if next.url == page.url && next.body == page.body {
            bail!("the login form at {} came back unchanged", page.url);
        }
        page = next;
    }
    bail!("no end to the login forms after {MAX_STEPS} steps")
}

/// An `<input>` (or named `<button>`) of a form.
#[derive(Debug, Clone, PartialEq)]
pub struct Input {
    pub name: String,
    pub kind: String,
    pub value: String,
    pub autocomplete: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Username,
    Password,
    Code,
    Other,
}

impl Input {
    fn role(&self) -> Role {
        let name = self.name.to_ascii_lowercase();
        match self.kind.as_str() {
            "password" => Role::Password,
            "text" | "email" | "tel" | "number" | "" => {
                if self.autocomplete == "one-time-code"
                    || ["totp", "code", "otp"].iter().any(|w| name.contains(w))
                {
                    Role::Code
                } else if ["user", "login", "email", "identifier"]
                    .iter()
                    .any(|w| name.contains(w))
                {
                    Role::Username
                } else {
                    Role::Other
                }
            }
            _ => Role::Other,
        }
    }
}

/// A `<form>` of a page.
#[derive(Debug, Clone, PartialEq)]
pub struct Form {
    pub action: String,
    pub method: String,
    pub fields: Vec<Input>,
}

impl Form {
    /// The fields to submit: hidden and other values as the page gave them, credentials where
    /// the form asks for them.
    fn fill(&self, credentials: &Credentials<'_>) -> anyhow::Result<Vec<(String, String)>> {
        let mut out = Vec::new();
        let mut submit_seen = false;
        for input in &self.fields {
            if input.name.is_empty() {
                continue;
            }
            let value = match (input.role(), input.kind.as_str()) {
                (Role::Username, _) => credentials.username.to_owned(),
                (Role::Password, _) => credentials.password.to_owned(),
                (Role::Code, _) => match credentials.totp {
                    Some(code) => code(),
                    None => bail!("the login asks for a TOTP code and the test has none"),
                },
                (_, "checkbox" | "radio" | "reset" | "file" | "image") => continue,
                (_, "submit") => {
                    // Only the button a person would press: the first one.
                    if submit_seen {
                        continue;
                    }
                    submit_seen = true;
                    input.value.clone()
                }
                _ => input.value.clone(),
            };
            out.push((input.name.clone(), value));
        }
        Ok(out)
    }
}

/// The forms of an HTML page (a small scanner, enough for server-rendered login pages).
pub fn forms(html: &str) -> Vec<Form> {
    let lower = html.to_ascii_lowercase();
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(start) = lower[at..].find("<form").map(|i| i + at) {
        let end = lower[start..]
            .find("</form")
            .map_or(html.len(), |i| i + start);
        let inner = &html[start..end];
        let attrs = tag_attributes(inner);
        let mut fields = Vec::new();
        let inner_lower = &lower[start..end];
        let mut pos = 1; // skip the form tag's own '<'
        while let Some(tag) = next_tag(inner_lower, pos, &["<input", "<button"]) {
            let attrs = tag_attributes(&inner[tag..]);
            let is_button = inner_lower[tag..].starts_with("<button");
            let kind = attrs.get("type").map(|k| k.to_ascii_lowercase());
            let kind = match (is_button, kind) {
                (true, None) => "submit".to_owned(),
                (_, Some(k)) => k,
                (false, None) => "text".to_owned(),
            };
            if let Some(name) = attrs.get("name") {
                fields.push(Input {
                    name: name.clone(),
                    kind,
                    value: attrs.get("value").cloned().unwrap_or_default(),
                    autocomplete: attrs.get("autocomplete").cloned().unwrap_or_default(),
                });
            }
            pos = tag + 1;
        }
        out.push(Form {
            action: attrs.get("action").cloned().unwrap_or_default(),
            method: attrs.get("method").cloned().unwrap_or_else(|| "get".into()),
            fields,
        });
        at = end.max(start + 1);
    }
    out
}

fn next_tag(lower: &str, from: usize, names: &[&str]) -> Option<usize> {
    names
        .iter()
        .filter_map(|n| {
            lower.get(from..)?.match_indices(n).find_map(|(i, _)| {
                let after = lower.as_bytes().get(from + i + n.len())?;
                (after.is_ascii_whitespace() || *after == b'>' || *after == b'/')
                    .then_some(from + i)
            })
        })
        .min()
}

/// The attributes of the tag `text` starts with (names lower-cased, values entity-decoded).
fn tag_attributes(text: &str) -> std::collections::HashMap<String, String> {
    let mut attrs = std::collections::HashMap::new();
    let bytes = text.as_bytes();
    // Skip `<tagname`.
    let mut i = text
        .find(|c: char| c.is_ascii_whitespace() || c == '>')
        .unwrap_or(text.len());
    loop {
        while i < bytes.len() && (bytes[i].is_ascii_whitespace() || bytes[i] == b'/') {
            i += 1;
        }
        if i >= bytes.len() || bytes[i] == b'>' {
            break;
        }
        let name_start = i;
        while i < bytes.len()
            && !matches!(bytes[i], b'=' | b'>' | b'/')
            && !bytes[i].is_ascii_whitespace()
        {
            i += 1;
        }
        let name = text[name_start..i].to_ascii_lowercase();
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let mut value = String::new();
        if i < bytes.len() && bytes[i] == b'=' {
            i += 1;
            while i < bytes.len() && bytes[i].is_ascii_whitespace() {
                i += 1;
            }
            if i < bytes.len() && (bytes[i] == b'"' || bytes[i] == b'\'') {
                let quote = bytes[i];
                let start = i + 1;
                let end = bytes[start..]
                    .iter()
                    .position(|b| *b == quote)
                    .map_or(bytes.len(), |p| p + start);
                value = decode_entities(&text[start..end]);
                i = (end + 1).min(bytes.len());
            } else {
                let start = i;
                while i < bytes.len() && !bytes[i].is_ascii_whitespace() && bytes[i] != b'>' {
                    i += 1;
                }
                value = decode_entities(&text[start..i]);
            }
        }
        if !name.is_empty() {
            attrs.entry(name).or_insert(value);
        }
    }
    attrs
}

/// Decodes the character references a server-rendered attribute uses.
pub fn decode_entities(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let Some(semi) = rest.find(';').filter(|s| *s <= 10) else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let entity = &rest[1..semi];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .or_else(|| entity.strip_prefix("#X"))
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_are_read_with_hidden_fields_and_entities() {
        let html = r#"<html><body><FORM method="post" action="/login?next=a&amp;b">
            <input type="hidden" name="csrf" value="t&#x2F;k">
            <label>User <input name=username autocomplete="username"></label>
            <input type="password" name="password">
            <button type="submit" name="action" value="login">Log in</button>
            <button type="submit" name="action" value="other">Other</button>
            </form><form action="/x"><input type="text" name="code" autocomplete="one-time-code"/></form>"#;
        let forms = forms(html);
        assert_eq!(forms.len(), 2);
        assert_eq!(forms[0].action, "/login?next=a&b");
        assert_eq!(forms[0].method, "post");
        let code = || "123456".to_owned();
        let credentials = Credentials {
            username: "alice",
            password: "pw",
            totp: Some(&code),
        };
        let filled = forms[0].fill(&credentials).expect("fills");
        let pairs: Vec<(&str, &str)> = filled
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            pairs,
            vec![
                ("csrf", "t/k"),
                ("username", "alice"),
                ("password", "pw"),
                ("action", "login")
            ]
        );
        let filled = forms[1].fill(&credentials).expect("fills");
        assert_eq!(filled, vec![("code".to_owned(), "123456".to_owned())]);
        let no_code = Credentials {
            totp: None,
            ..credentials
        };
        assert!(forms[1].fill(&no_code).is_err());
    }

    #[test]
    fn the_jar_keeps_host_only_and_domain_cookies_apart() {
        let mut jar = CookieJar::default();
        jar.store(
            "app1.redoubt.localhost",
            "s=1; Path=/; HttpOnly; SameSite=Lax",
        );
        jar.store(
            "app1.redoubt.localhost",
            "d=2; Domain=.redoubt.localhost; Path=/",
        );
        jar.store("app1.redoubt.localhost", "evil=3; Domain=example.com");
        assert_eq!(
            jar.header_for("app1.redoubt.localhost").as_deref(),
            Some("s=1; d=2")
        );
        assert_eq!(
            jar.header_for("app2.redoubt.localhost").as_deref(),
            Some("d=2")
        );
        assert_eq!(jar.header_for("example.com"), None);
        jar.store("app1.redoubt.localhost", "s=; Max-Age=0");
        assert_eq!(
            jar.header_for("app1.redoubt.localhost").as_deref(),
            Some("d=2")
        );
    }
}
