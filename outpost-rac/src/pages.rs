//! The RAC outpost's server-rendered pages: the list of remote desktops a user may open, the
//! session page that hosts the canvas and `rac.js`, and error pages. HTML is built with `maud`,
//! which escapes every interpolated value. No page carries inline script or style (the client
//! and its styles are served from [`SCRIPT_PATH`] and [`STYLE_PATH`]), so [`CSP`] can forbid both.

use maud::{DOCTYPE, Markup, html};

/// The Content-Security-Policy of every RAC page: scripts, styles and WebSocket connections only
/// from the outpost itself, images also from `blob:` (remote cursors) and `data:`, no framing.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
img-src 'self' blob: data:; connect-src 'self'; base-uri 'none'; form-action 'self'; \
frame-ancestors 'none'";

/// Where the browser client is served (`text/javascript`).
pub const SCRIPT_PATH: &str = "/static/rac.js";
/// Where the stylesheet is served (`text/css`).
pub const STYLE_PATH: &str = "/static/rac.css";

/// The browser client: socket, tile drawing, input, clipboard, resize and toolbar.
pub const RAC_JS: &str = include_str!("../static/rac.js");
/// The stylesheet of every RAC page (light and dark).
pub const RAC_CSS: &str = include_str!("../static/rac.css");

/// A static file of the RAC pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StaticFile {
    pub content_type: &'static str,
    pub body: &'static str,
}

/// The static file served at `path`, if any ([`SCRIPT_PATH`] or [`STYLE_PATH`]).
pub fn static_file(path: &str) -> Option<StaticFile> {
    match path {
        SCRIPT_PATH => Some(StaticFile {
            content_type: "text/javascript; charset=utf-8",
            body: RAC_JS,
        }),
        STYLE_PATH => Some(StaticFile {
            content_type: "text/css; charset=utf-8",
            body: RAC_CSS,
        }),
        _ => None,
    }
}

/// One desktop on the endpoint list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointLink {
    /// The endpoint's URL slug: the link goes to `/rac/{slug}`.
    pub slug: String,
    pub name: String,
    /// May be empty.
    pub description: String,
}

/// What the session page needs. `Debug` never shows the ticket.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionPage {
    pub slug: String,
    /// The endpoint's display name.
    pub name: String,
    /// The sealed single-use ticket the page hands back when it opens the WebSocket.
    pub ticket: String,
    /// `prompt` mode: the page asks for the RDP credentials before it connects.
    pub prompt: bool,
    /// Prefilled user name in prompt mode (may be empty).
    pub username: String,
    /// Prefilled domain in prompt mode (may be empty).
    pub domain: String,
}

impl std::fmt::Debug for SessionPage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionPage")
            .field("slug", &self.slug)
            .field("name", &self.name)
            .field("ticket", &"<redacted>")
            .field("prompt", &self.prompt)
            .field("username", &self.username)
            .field("domain", &self.domain)
            .finish()
    }
}

/// The page an endpoint is opened at.
pub fn session_path(slug: &str) -> String {
    format!("/rac/{}", path_segment(slug))
}

/// The endpoint's WebSocket path (the page adds `?ticket=` and its `width` and `height`).
pub fn websocket_path(slug: &str) -> String {
    format!("/rac/{}/ws", path_segment(slug))
}

/// The list of desktops `user` may open, with a sign-out form posting to `sign_out_path`.
pub fn endpoint_list(user: &str, endpoints: &[EndpointLink], sign_out_path: &str) -> String {
    let body = html! {
        header.topbar {
            span.brand { "Redoubt" }
            form.signout method="post" action=(sign_out_path) {
                span.user { "Signed in as " strong { (user) } }
                button type="submit" { "Sign out" }
            }
        }
        main.list-page {
            h1 { "Remote desktops" }
            @if endpoints.is_empty() {
                p.empty {
                    "You have no remote desktops yet. Ask an administrator for access."
                }
            } @else {
                ul.endpoints {
                    @for endpoint in endpoints {
                        li {
                            a href=(session_path(&endpoint.slug)) {
                                span.name { (endpoint.name) }
                                @if !endpoint.description.is_empty() {
                                    span.description { (endpoint.description) }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    document("Remote desktops", "list", false, body)
}

/// The page of one remote desktop: toolbar, status line, the credentials form in prompt mode,
/// and the canvas `rac.js` draws on. Every value `rac.js` needs is a `data-` attribute of
/// `<main id="rac">`.
pub fn session_page(page: &SessionPage) -> String {
    let body = html! {
        main #rac
            data-ws=(websocket_path(&page.slug))
            data-ticket=(page.ticket)
            data-prompt=(if page.prompt { "1" } else { "0" })
            data-username=(page.username)
            data-domain=(page.domain)
            data-name=(page.name)
        {
            div.toolbar role="toolbar" aria-label="Remote desktop controls" {
                a.back href="/" { "Desktops" }
                span.title { (page.name) }
                span.spacer {}
                button type="button" data-action="ctrl-alt-del" disabled
                    title="Send Ctrl+Alt+Del" { "Ctrl+Alt+Del" }
                button type="button" data-action="windows" disabled aria-label="Windows key"
                    title="Press the Windows key" { "Win" }
                button type="button" data-action="alt-tab" disabled
                    title="Send Alt+Tab" { "Alt+Tab" }
                button type="button" data-action="unicode" aria-pressed="false" disabled
                    aria-label="Unicode keyboard"
                    title="Type characters as they are, whatever the remote keyboard layout" {
                    "Unicode"
                }
                button type="button" data-action="fullscreen" disabled { "Fullscreen" }
                button type="button" data-action="disconnect" disabled { "Disconnect" }
            }
            p #status role="status" aria-live="polite" {
                @if page.prompt { "Enter your credentials for " (page.name) "." }
                @else { "Connecting to " (page.name) "\u{2026}" }
            }
            div #viewport .viewport {
                canvas #screen tabindex="0" width="0" height="0"
                    aria-label={ "Remote desktop " (page.name) } {}
                // Unicode mode types here so that IMEs and virtual keyboards work (rac.js).
                textarea #ime .ime tabindex="-1" aria-label="Keyboard input for the remote desktop"
                    autocomplete="off" autocapitalize="off" autocorrect="off" spellcheck="false" {}
                @if page.prompt { (credentials_form(page)) }
                div #overlay .overlay hidden role="alertdialog" aria-labelledby="overlay-message" {
                    div.card {
                        p #overlay-message {}
                        button #reconnect type="button" { "Reconnect" }
                        " "
                        a href="/" { "All desktops" }
                    }
                }
            }
            section #clipboard-panel .clipboard-panel hidden aria-label="Remote clipboard" {
                label for="clipboard-text" { "Text copied on the remote desktop" }
                textarea #clipboard-text readonly rows="4" {}
                div.actions {
                    button #clipboard-copy type="button" { "Copy" }
                    button #clipboard-close type="button" { "Close" }
                }
            }
        }
        noscript { p.noscript { "This page needs JavaScript to show the remote desktop." } }
    };
    document(&page.name, "session", true, body)
}

/// The form of prompt mode. Its submit button starts disabled and `rac.js` enables it, so
/// without the script nothing is ever submitted; `method="post"` keeps a password out of URLs.
fn credentials_form(page: &SessionPage) -> Markup {
    html! {
        form #credentials .credentials method="post" autocomplete="on" {
            h2 { "Sign in to " (page.name) }
            label for="rac-username" { "User name" }
            input #rac-username name="username" type="text" autocomplete="username"
                autocapitalize="off" spellcheck="false" required value=(page.username);
            label for="rac-domain" { "Domain " span.optional { "(optional)" } }
            input #rac-domain name="domain" type="text" autocapitalize="off"
                spellcheck="false" value=(page.domain);
            label for="rac-password" { "Password" }
            input #rac-password name="password" type="password" autocomplete="current-password"
                maxlength="4096";
            button type="submit" disabled { "Connect" }
        }
    }
}

/// A page that says what went wrong, with a link back to the list.
pub fn error_page(title: &str, message: &str) -> String {
    let body = html! {
        main.error-page {
            h1 { (title) }
            p { (message) }
            p { a href="/" { "All remote desktops" } }
        }
    };
    document(title, "error", false, body)
}

/// The page frame: head with the stylesheet (and the client when `script`), `body` with the
/// test hook `data-state` on session pages.
fn document(title: &str, kind: &str, script: bool, body: Markup) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="no-referrer";
                title { (title) " \u{2013} Redoubt" }
                link rel="stylesheet" href=(STYLE_PATH);
                @if script { script src=(SCRIPT_PATH) defer {} }
            }
            body class=(kind) data-state=[script.then_some("connecting")] { (body) }
        }
    }
    .into_string()
}

/// Percent-encodes a path segment (slugs are URL-safe already; this keeps any other byte from
/// changing the path).
fn path_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(slug: &str, name: &str, description: &str) -> EndpointLink {
        EndpointLink {
            slug: slug.into(),
            name: name.into(),
            description: description.into(),
        }
    }

    fn session(prompt: bool) -> SessionPage {
        SessionPage {
            slug: "build-box".into(),
            name: "Build <box> & \"co\"".into(),
            ticket: "tkt.abc_-123".into(),
            prompt,
            username: "alice".into(),
            domain: "CORP".into(),
        }
    }

    #[test]
    fn endpoint_names_and_descriptions_are_escaped() {
        let html = endpoint_list(
            "<b>bob</b>",
            &[endpoint(
                "evil",
                "<script>alert(1)</script>",
                "a \"quoted\" <i>desc</i>",
            )],
            "/outpost.redoubt/sign_out",
        );
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{html}"
        );
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;b&gt;bob&lt;/b&gt;"));
        assert!(html.contains("a &quot;quoted&quot; &lt;i&gt;desc&lt;/i&gt;"));
        assert!(html.contains(r#"href="/rac/evil""#));
        assert!(html.contains(
            r#"<form class="signout" method="post" action="/outpost.redoubt/sign_out">"#
        ));
    }

    #[test]
    fn endpoint_list_links_each_desktop_in_order() {
        let html = endpoint_list(
            "alice",
            &[endpoint("a-1", "First", ""), endpoint("b", "Second", "Lab")],
            "/out",
        );
        let first = html.find(r#"href="/rac/a-1""#).expect("first link");
        let second = html.find(r#"href="/rac/b""#).expect("second link");
        assert!(first < second);
        assert!(html.contains("<span class=\"description\">Lab</span>"));
        assert_eq!(html.matches("class=\"description\"").count(), 1);
        assert!(!html.contains("Ask an administrator"));
        assert!(!html.contains(SCRIPT_PATH), "the list runs no script");
    }

    #[test]
    fn empty_list_says_to_ask_an_administrator() {
        let html = endpoint_list("alice", &[], "/out");
        assert!(html.contains("Ask an administrator for access."));
        assert!(!html.contains("<ul"));
    }

    #[test]
    fn odd_slugs_are_percent_encoded_in_paths() {
        assert_eq!(session_path("a b/\"<"), "/rac/a%20b%2F%22%3C");
        assert_eq!(websocket_path("desk-1"), "/rac/desk-1/ws");
        let html = endpoint_list("u", &[endpoint("x\"y", "X", "")], "/out");
        assert!(html.contains(r#"href="/rac/x%22y""#));
    }

    #[test]
    fn session_page_carries_the_data_attributes_escaped() {
        let html = session_page(&session(false));
        assert!(html.contains(r#"<main id="rac" data-ws="/rac/build-box/ws" data-ticket="tkt.abc_-123" data-prompt="0" data-username="alice" data-domain="CORP" data-name="Build &lt;box&gt; &amp; &quot;co&quot;">"#), "{html}");
        assert!(html.contains(r#"<canvas id="screen" tabindex="0""#));
        assert!(html.contains(r#"<body class="session" data-state="connecting">"#));
        assert!(html.contains(r#"<script src="/static/rac.js" defer></script>"#));
        assert!(html.contains(r#"<link rel="stylesheet" href="/static/rac.css">"#));
        assert!(
            !html.contains("<form"),
            "no credentials form in static mode"
        );
        assert!(!html.contains("<box>"));
    }

    #[test]
    fn prompt_mode_renders_a_labelled_form_that_cannot_submit_without_the_script() {
        let html = session_page(&session(true));
        assert!(html.contains(r#"data-prompt="1""#));
        for id in ["rac-username", "rac-domain", "rac-password"] {
            assert!(html.contains(&format!(r#"<label for="{id}">"#)), "{id}");
            assert!(html.contains(&format!(r#"id="{id}""#)), "{id}");
        }
        assert!(html.contains(r#"value="alice""#));
        assert!(html.contains(r#"<form class="credentials" id="credentials" method="post""#));
        assert!(html.contains(r#"<button type="submit" disabled>Connect</button>"#));
    }

    #[test]
    fn pages_have_no_inline_script_or_style() {
        let pages = [
            session_page(&session(true)),
            endpoint_list("u", &[endpoint("a", "A", "")], "/out"),
            error_page("No", "Nope"),
        ];
        for html in pages {
            assert!(!html.contains("<style"), "{html}");
            assert!(!html.contains(" style="), "{html}");
            assert!(
                !has_event_handler(&html),
                "no event handler attributes: {html}"
            );
            for (at, _) in html.match_indices("<script") {
                assert!(
                    html[at..].starts_with(r#"<script src="/static/rac.js""#),
                    "{html}"
                );
            }
        }
    }

    /// Whether `html` has an ` onxyz=` attribute.
    fn has_event_handler(html: &str) -> bool {
        html.match_indices(" on").any(|(at, _)| {
            let name: String = html[at + 3..]
                .chars()
                .take_while(char::is_ascii_lowercase)
                .collect();
            html[at + 3 + name.len()..].starts_with('=')
        })
    }

    #[test]
    fn error_page_escapes_and_links_home() {
        let html = error_page("Denied <x>", "You & <i>me</i>");
        assert!(html.contains("<h1>Denied &lt;x&gt;</h1>"));
        assert!(html.contains("<p>You &amp; &lt;i&gt;me&lt;/i&gt;</p>"));
        assert!(html.contains(r#"<a href="/">"#));
        assert!(html.contains("<title>Denied &lt;x&gt; \u{2013} Redoubt</title>"));
    }

    #[test]
    fn csp_is_strict() {
        assert!(!CSP.contains("unsafe-inline"));
        assert!(!CSP.contains("unsafe-eval"));
        for directive in [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' blob: data:",
            "connect-src 'self'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ] {
            assert!(CSP.split("; ").any(|d| d == directive), "{directive}");
        }
    }

    #[test]
    fn static_files_are_served_with_their_types() {
        let js = static_file("/static/rac.js").expect("js");
        assert!(js.content_type.starts_with("text/javascript"));
        assert!(js.body.starts_with("'use strict';"));
        let css = static_file("/static/rac.css").expect("css");
        assert!(css.content_type.starts_with("text/css"));
        assert!(css.body.contains("prefers-color-scheme: dark"));
        assert_eq!(static_file("/static/other.js"), None);
    }

    #[test]
    fn session_page_debug_hides_the_ticket() {
        let shown = format!("{:?}", session(false));
        assert!(!shown.contains("tkt.abc"));
        assert!(shown.contains("<redacted>"));
    }
}
