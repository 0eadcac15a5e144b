//! The RAC outpost end to end with real peers on both sides: Debian's xrdp (with xorgxrdp, as
//! the test user whose desktop is [`DESKTOP_RGB`] with an xterm at the top left) behind the
//! outpost, and headless Chromium running `rac.js` in front of it. Chromium signs in through
//! the core's login form, opens the desktop from the outpost's list, and the test reads the
//! canvas's pixels, types a shell command into the xterm through the page, and copies text on
//! the remote desktop into the page; in `prompt` mode it fills the page's credentials form.
//!
//! Skips (or fails, with `REDOUBT_REQUIRE_PEERS=1`) when xrdp or Chromium is not installed.
//! Every step has a deadline; a failure reports the page's state and xrdp's logs, and xrdp,
//! its sessions and Chromium are stopped whether the test passed or not.

use anyhow::{Context, bail, ensure};
use redoubt_tests::TestCore;
use redoubt_tests::peers::browser::{self, Browser};
use redoubt_tests::peers::served::{listening, start_proxy_outpost};
use redoubt_tests::peers::xrdp::{self, DESKTOP_RGB, Xrdp};
use redoubt_tests::peers::{crypto, free_addr};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const USER: &str = "dana";
const PASSWORD: &str = "dana-Desk-Password-1";

/// How long the page may take from opening to showing the first frame (xrdp starts a whole X
/// session for the first login).
const CONNECT_DEADLINE: Duration = Duration::from_secs(40);

/// How long the desktop may take to be painted, or to show a change.
const PICTURE_DEADLINE: Duration = Duration::from_secs(20);

/// The page's test hooks and status line.
const PAGE_STATE: &str = "const d = document.body.dataset;
    const s = document.getElementById('status');
    return {state: d.state || '', frames: Number(d.frames || 0), endReason: d.endReason || null,
            status: s ? s.textContent : ''};";

/// Canvas pixels (RGBA) at desktop points of the background, away from the xterm at the top
/// left, and one inside the xterm.
const SAMPLE_PIXELS: &str = "const c = document.getElementById('screen');
    const w = c.width, h = c.height;
    if (w < 64 || h < 64) return {w, h, background: [], xterm: null, state: document.body.dataset.state};
    const ctx = c.getContext('2d');
    const at = (x, y) => [x, y, ...ctx.getImageData(x, y, 1, 1).data];
    const points = [[w - 8, 8], [w - 8, h >> 1], [w - 8, h - 8], [w >> 1, h >> 1],
                    [w >> 1, h - 8], [8, h - 8]];
    return {w, h, background: points.map(([x, y]) => at(x, y)), xterm: at(20, 20),
            state: document.body.dataset.state};";

/// The desktop size the page wants for its viewport (device pixels, even width), as `rac.js`
/// computes it.
const VIEWPORT_SIZE: &str = "const b = document.getElementById('viewport').getBoundingClientRect();
    const r = window.devicePixelRatio || 1;
    return [Math.floor(b.width * r) & ~1, Math.floor(b.height * r)];";

/// The viewport point (CSS pixels) that shows desktop pixel (`x`, `y`) of the canvas, which
/// is scaled with `object-fit: contain`.
const DESKTOP_TO_VIEWPORT: &str = "const [x, y] = arguments;
    const c = document.getElementById('screen');
    const r = c.getBoundingClientRect();
    const scale = Math.min(r.width / c.width, r.height / c.height);
    const left = r.left + (r.width - c.width * scale) / 2;
    const top = r.top + (r.height - c.height * scale) / 2;
    return [Math.round(left + (x + 0.5) * scale), Math.round(top + (y + 0.5) * scale)];";

/// What the page did with the remote clipboard: the text in the system clipboard (read back
/// with `clipboard-read` granted) and the fallback panel's text when it is shown.
const CLIPBOARD_STATE: &str = "const done = arguments[arguments.length - 1];
    const panel = document.getElementById('clipboard-panel');
    const area = document.getElementById('clipboard-text');
    const shown = panel && !panel.hidden && area ? area.value : null;
    const clip = navigator.clipboard;
    const read = clip && clip.readText ? clip.readText() : Promise.reject(new Error('no API'));
    read.then((text) => done({shown, clipboard: text, error: null}),
              (error) => done({shown, clipboard: null, error: String(error)}));";

/// The core, xrdp, the RAC outpost serving one endpoint on it, and Chromium.
struct Desk {
    core: TestCore,
    xrdp: Xrdp,
    browser: Browser,
    origin: String,
    port: u16,
    _state: tempfile::TempDir,
    _outpost: redoubt_outpost::RunningOutpost,
}

impl Desk {
    /// Starts everything for an endpoint on xrdp in `auth_mode`, of a fixed `size` or (`None`)
    /// following the browser's; `None` when xrdp or Chromium is not available here.
    async fn start(auth_mode: &str, size: Option<(u16, u16)>) -> Option<Self> {
        if !xrdp::available() || !browser::available() {
            return None;
        }
        crypto();
        let core = TestCore::start().await;
        let xrdp = Xrdp::start().await.expect("xrdp starts");
        let addr = free_addr().expect("free port");
        let origin = format!("http://desk.localhost:{}", addr.port());
        let mut endpoint = json!({
            "slug": "desk", "name": "Desk", "host": xrdp.host(),
            "auth_mode": auth_mode, "lossless": true, "security": "tls",
            "server_public_key_sha256": xrdp.public_key_sha256(),
        });
        if let (Some(fields), Some((width, height))) = (endpoint.as_object_mut(), size) {
            fields.insert("width".into(), json!(width));
            fields.insert("height".into(), json!(height));
        }
        let settings = json!({"external_host": origin, "endpoints": [endpoint]});
        let (provider_id, token) = core.create_served_provider("rac", "desk", settings).await;
        core.create_member(json!({"username": USER, "password": PASSWORD}), &[])
            .await;
        if auth_mode == "static" {
            let user = xrdp.user();
            core.api
                .put(
                    &format!("/api/v1/providers/{provider_id}/rac/endpoints/desk/credentials"),
                    json!({"username": user.username, "password": user.password}),
                )
                .await
                .expect(204);
        }
        let state = tempfile::tempdir().expect("state dir");
        let outpost = start_proxy_outpost(&core, &token, state.path(), Some(addr)).await;
        // The module binds its listener after the first configuration: wait for it.
        listening(&outpost).await;
        let browser = Browser::start().await.expect("chromium starts");
        Some(Self {
            core,
            xrdp,
            browser,
            origin,
            port: addr.port(),
            _state: state,
            _outpost: outpost,
        })
    }

    /// Stops Chromium and xrdp (with its sessions) and fails the test with the page's state
    /// and xrdp's logs when `outcome` is an error.
    async fn finish(self, outcome: anyhow::Result<()>) {
        let page = match &outcome {
            Ok(()) => Value::Null,
            Err(_) => page_state(&self.browser)
                .await
                .unwrap_or_else(|e| json!(format!("unknown: {e:#}"))),
        };
        let logs = self.xrdp.logs();
        self.browser.quit().await;
        let stopped = self.xrdp.stop();
        if let Err(error) = outcome {
            panic!("{error:#}\npage: {page}\nxrdp logs:\n{logs}");
        }
        stopped.expect("xrdp and its sessions stop");
    }

    /// Signs in with Chromium at the outpost (sent to the core's login form and back), sees
    /// the desktop in the list and opens it.
    async fn open_desktop(&self) -> anyhow::Result<()> {
        let browser = &self.browser;
        browser.goto(&format!("{}/", self.origin)).await?;
        let login = format!("{}/login", self.core.url);
        if let Err(error) = browser
            .wait_for_url(Duration::from_secs(10), |u| u.starts_with(&login))
            .await
        {
            let shown = browser.source().await.unwrap_or_default();
            bail!(
                "the outpost does not send the browser to the core's login page: {error:#}\n{shown}"
            );
        }
        let username = browser.find("input[name=username]").await?;
        browser.send_keys(&username, USER).await?;
        let password = browser.find("input[type=password]").await?;
        browser.send_keys(&password, PASSWORD).await?;
        let submit = browser.find("button[type=submit]").await?;
        browser.click(&submit).await?;
        let home = format!("{}/", self.origin);
        browser
            .wait_for_url(Duration::from_secs(10), |u| u == home)
            .await
            .context("back at the outpost's list after signing in")?;
        let link = browser
            .find("a[href=\"/rac/desk\"]")
            .await
            .context("the list offers the desktop")?;
        let text = browser.text(&link).await?;
        ensure!(text.contains("Desk"), "the link says {text:?}");
        browser.click(&link).await?;
        let session = format!("{}/rac/desk", self.origin);
        browser
            .wait_for_url(Duration::from_secs(10), |u| u == session)
            .await
            .context("the desktop's page")?;
        Ok(())
    }

    /// Waits for the page to be connected with at least one frame drawn.
    async fn wait_connected(&self) -> anyhow::Result<()> {
        let started = Instant::now();
        loop {
            let page = page_state(&self.browser).await?;
            if page["state"] == "connected" && page["frames"].as_u64().unwrap_or(0) > 0 {
                return Ok(());
            }
            if page["state"] == "ended" {
                bail!("the connection ended: {page}");
            }
            if started.elapsed() > CONNECT_DEADLINE {
                bail!("not connected within {CONNECT_DEADLINE:?}: {page}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the canvas shows exactly [`DESKTOP_RGB`] at every background sample and
    /// something else inside the xterm; returns the canvas size.
    async fn wait_for_desktop(&self) -> anyhow::Result<(u64, u64)> {
        let expected = [DESKTOP_RGB[0], DESKTOP_RGB[1], DESKTOP_RGB[2], 255].map(u64::from);
        let started = Instant::now();
        loop {
            let seen = self.browser.execute(SAMPLE_PIXELS, vec![]).await?;
            if seen["state"] == "ended" {
                bail!("the connection ended while waiting for the desktop");
            }
            let (width, height) = (
                seen["w"].as_u64().unwrap_or(0),
                seen["h"].as_u64().unwrap_or(0),
            );
            let rgba = |sample: &Value| -> Vec<u64> {
                sample
                    .as_array()
                    .map(|s| s.iter().skip(2).filter_map(Value::as_u64).collect())
                    .unwrap_or_default()
            };
            let background = seen["background"].as_array().cloned().unwrap_or_default();
            let painted = !background.is_empty() && background.iter().all(|s| rgba(s) == expected);
            let xterm = rgba(&seen["xterm"]);
            if painted && xterm.len() == 4 && xterm != expected {
                ensure!(
                    width > 560 && height > 200,
                    "the desktop ({width}x{height}) is too small to sample away from the xterm"
                );
                return Ok((width, height));
            }
            if started.elapsed() > PICTURE_DEADLINE {
                bail!(
                    "the canvas does not show the desktop #336699 with the xterm within \
                     {PICTURE_DEADLINE:?}; samples [x, y, r, g, b, a]: {seen}"
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Clicks the canvas where it shows desktop pixel (`x`, `y`).
    async fn click_desktop(&self, x: u32, y: u32) -> anyhow::Result<()> {
        let point = self
            .browser
            .execute(DESKTOP_TO_VIEWPORT, vec![json!(x), json!(y)])
            .await?;
        let (Some(vx), Some(vy)) = (point[0].as_i64(), point[1].as_i64()) else {
            bail!("no viewport point for ({x}, {y}): {point}");
        };
        self.browser.click_at(vx, vy).await
    }
}

async fn page_state(browser: &Browser) -> anyhow::Result<Value> {
    browser.execute(PAGE_STATE, vec![]).await
}

/// Logs the time a step took (for the report of slow peers).
fn took(step: &str, since: Instant) {
    eprintln!("{step}: {:?}", since.elapsed());
}

/// Static credentials: sign in, open the desktop, exact colours, typing into the xterm through
/// the page, the remote clipboard reaching the page, disconnecting.
async fn static_desktop(desk: &Desk) -> anyhow::Result<()> {
    let started = Instant::now();
    desk.open_desktop().await?;
    took("signed in and opened the desktop", started);
    desk.wait_connected().await?;
    took("connected with a frame", started);
    let display = desk.xrdp.wait_for_session().await?;
    let (width, height) = desk.wait_for_desktop().await?;
    took(&format!("desktop {width}x{height} shows #336699"), started);
    // The desktop started at the browser's size (no resize while xrdp was logging on).
    let viewport = desk.browser.execute(VIEWPORT_SIZE, vec![]).await?;
    ensure!(
        viewport == json!([width, height]),
        "the desktop is {width}x{height}, the browser's viewport {viewport}"
    );
    ensure!(
        desk.xrdp
            .xrdp_log()
            .contains(&format!("login successful for user {}", xrdp::USERNAME)),
        "xrdp did not log the static credentials' login"
    );

    // Typing: the xterm has the keyboard while the pointer is over it (no window manager).
    desk.xrdp
        .wait_for_window(display, "xterm", PICTURE_DEADLINE)
        .await?;
    let file = format!("rac-typed-{}", desk.port);
    desk.xrdp.remove_home_file(&file);
    desk.click_desktop(40, 40).await?;
    let focused = desk
        .browser
        .execute("return document.activeElement.id;", vec![])
        .await?;
    ensure!(
        focused == "screen",
        "the canvas has no focus after a click: {focused}"
    );
    desk.browser
        .type_keys(&format!("echo ok > ~/{file}\n"))
        .await?;
    let typed = desk
        .xrdp
        .wait_for_home_file(&file, PICTURE_DEADLINE, |t| t.ends_with('\n'))
        .await?;
    desk.xrdp.remove_home_file(&file);
    ensure!(typed == "ok\n", "~/{file} holds {typed:?}");
    took("typed a command into the xterm", started);

    // The remote clipboard reaches the page: in the system clipboard when the page may write
    // it, otherwise in the page's clipboard panel.
    if let Err(error) = desk
        .browser
        .set_permission("clipboard-read", "granted")
        .await
    {
        eprintln!("cannot grant clipboard-read, only the panel is observable: {error:#}");
    }
    let text = format!("copied on the desk {}", desk.port);
    desk.xrdp.set_clipboard_text(display, &text).await?;
    let copied = Instant::now();
    loop {
        let seen = desk.browser.execute_async(CLIPBOARD_STATE, vec![]).await?;
        if seen["clipboard"] == text.as_str() {
            eprintln!("the page wrote the remote text to the clipboard");
            break;
        }
        if seen["shown"] == text.as_str() {
            eprintln!("the page showed the remote text in its panel: {seen}");
            break;
        }
        if copied.elapsed() > PICTURE_DEADLINE {
            bail!("the remote clipboard {text:?} did not reach the page: {seen}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    took("the remote clipboard reached the page", started);

    // The desktop follows the browser window: xrdp resizes the session (Deactivate-All and a
    // new capability exchange) and the page shows the new size, still #336699.
    desk.browser.set_window_size(1100, 800).await?;
    let resized = Instant::now();
    loop {
        let wanted = desk.browser.execute(VIEWPORT_SIZE, vec![]).await?;
        let (new_width, new_height) = desk.wait_for_desktop().await?;
        if wanted == json!([new_width, new_height]) && (new_width, new_height) != (width, height) {
            took(&format!("resized to {new_width}x{new_height}"), started);
            break;
        }
        if resized.elapsed() > PICTURE_DEADLINE {
            bail!("the desktop stays {new_width}x{new_height}, the viewport wants {wanted}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Disconnecting ends the page's session.
    let disconnect = desk.browser.find("button[data-action=disconnect]").await?;
    desk.browser.click(&disconnect).await?;
    let page = page_state(&desk.browser).await?;
    ensure!(
        page["state"] == "ended" && page["endReason"] == "user",
        "after Disconnect: {page}"
    );
    Ok(())
}

/// Prompt mode: the page asks for the credentials before connecting; filled in, the desktop
/// shows.
async fn prompted_desktop(desk: &Desk) -> anyhow::Result<()> {
    let started = Instant::now();
    desk.open_desktop().await?;
    let browser = &desk.browser;
    let username = browser.find("#credentials #rac-username").await?;
    let page = page_state(browser).await?;
    ensure!(
        page["state"] == "connecting" && page["frames"] == 0,
        "connected before the credentials: {page}"
    );
    ensure!(
        desk.xrdp.session_display().is_none(),
        "a session started before the credentials were given"
    );
    let user = desk.xrdp.user();
    browser.clear(&username).await?;
    browser.send_keys(&username, &user.username).await?;
    let password = browser.find("#credentials #rac-password").await?;
    browser.send_keys(&password, &user.password).await?;
    let submit = browser.find("#credentials button[type=submit]").await?;
    browser.click(&submit).await?;
    desk.wait_connected().await?;
    took("connected with the prompted credentials", started);
    let left = browser
        .execute(
            "return document.getElementById('rac-password').value;",
            vec![],
        )
        .await?;
    ensure!(left == "", "the password stays in the form");
    let (width, height) = desk.wait_for_desktop().await?;
    took(&format!("desktop {width}x{height} shows #336699"), started);
    ensure!(
        desk.xrdp
            .xrdp_log()
            .contains(&format!("login successful for user {}", user.username)),
        "xrdp did not log the prompted login"
    );
    Ok(())
}

#[tokio::test]
async fn rac_xrdp_in_chromium() {
    let Some(desk) = Desk::start("static", None).await else {
        return;
    };
    let outcome = static_desktop(&desk).await;
    desk.finish(outcome).await;
}

#[tokio::test]
async fn rac_xrdp_in_chromium_prompts_for_credentials() {
    let Some(desk) = Desk::start("prompt", Some((1024, 768))).await else {
        return;
    };
    let outcome = prompted_desktop(&desk).await;
    desk.finish(outcome).await;
}
