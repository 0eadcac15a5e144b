//! Headless Debian Chromium driven through `chromedriver` (package `chromium-driver`) with a
//! minimal W3C WebDriver client on reqwest: navigate, read the URL, find elements by CSS, type,
//! click, read text and the page source, get and delete cookies, run scripts, click at a point
//! and type on the keyboard (W3C actions), grant permissions, resize the window. chromedriver runs on a free
//! port in its own process group and is killed with the browser on drop.
//!
//! Chromium resolves every `*.localhost` name to the loopback address, so tests get distinct
//! host names (`app1.redoubt.localhost`, `app2.redoubt.localhost`, cookie domain
//! `redoubt.localhost`) without touching `/etc/hosts`.

use super::{START_DEADLINE, free_addr, kill_group, own_group};
use anyhow::{Context, bail};
use serde_json::{Value, json};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

/// The key of an element reference in W3C WebDriver.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// How long [`Browser::find`] waits for an element to appear.
pub const FIND_DEADLINE: Duration = Duration::from_secs(10);

/// Whether chromedriver and Chromium are installed; see [`super::peer_available`].
pub fn available() -> bool {
    super::peer_available("chromedriver", &["--version"], "chromium-driver")
        && super::peer_available("chromium", &["--version"], "chromium")
}

/// An element on the current page.
#[derive(Debug, Clone)]
pub struct Element(String);

/// A headless Chromium session.
pub struct Browser {
    client: reqwest::Client,
    /// `http://127.0.0.1:<port>/session/<id>`.
    session: String,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver, waits for its `/status` to say ready, and opens a headless session
    /// with a fresh profile.
    pub async fn start() -> anyhow::Result<Self> {
        super::crypto();
        let profile = tempfile::tempdir()?;
        let addr = free_addr()?;
        let log = std::fs::File::create(profile.path().join("chromedriver.log"))?;
        let mut command = Command::new("chromedriver");
        command
            .arg(format!("--port={}", addr.port()))
            .arg("--allowed-ips=127.0.0.1")
            // Chromium hangs at start under libfaketime (the date-independence run of
            // scripts/test): the browser keeps the real clock, as it does in every other run
            // (the test core's clock is fixed, so the two never agree anyway).
            .env_remove("LD_PRELOAD")
            .env_remove("FAKETIME")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        let driver = own_group(&mut command)
            .spawn()
            .context("start chromedriver")?;
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()?;
        let base = format!("http://{addr}");
        let started = Instant::now();
        loop {
            let ready = client.get(format!("{base}/status")).send().await;
            if let Ok(response) = ready
                && let Ok(status) = response.json::<Value>().await
                && status["value"]["ready"] == true
            {
                break;
            }
            if started.elapsed() > START_DEADLINE {
                kill_group(driver.id());
                bail!("chromedriver did not become ready within {START_DEADLINE:?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let data_dir = profile.path().join("profile");
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu",
                    "--disable-dev-shm-usage", "--no-first-run",
                    "--disable-features=HttpsUpgrades,HttpsFirstBalancedModeAutoEnable",
                    format!("--user-data-dir={}", data_dir.display()),
                ],
            },
        }}});
        let mut browser = Self {
            client,
            session: String::new(),
            driver,
            _profile: profile,
        };
        let created = browser
            .command(
                reqwest::Method::POST,
                &format!("{base}/session"),
                Some(capabilities),
            )
            .await?;
        let id = created["sessionId"]
            .as_str()
            .context("new session without an id")?;
        browser.session = format!("{base}/session/{id}");
        Ok(browser)
    }

    /// Sends a WebDriver command; returns its `value` or the WebDriver error.
    async fn command(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let mut request = self.client.request(method.clone(), url);
        if let Some(body) = body {
            request = request.json(&body);
        } else if method == reqwest::Method::POST {
            request = request.json(&json!({}));
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("WebDriver {method} {url}"))?;
        let status = response.status();
        let mut value: Value = response.json().await.context("WebDriver answer")?;
        if !status.is_success() {
            bail!(
                "WebDriver {method} {url}: {} {}",
                value["value"]["error"],
                value["value"]["message"]
            );
        }
        Ok(value["value"].take())
    }

    async fn session_command(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.session);
        self.command(method, &url, body).await
    }

    /// Opens `url` and waits for the page to load.
    pub async fn goto(&self, url: &str) -> anyhow::Result<()> {
        self.session_command(reqwest::Method::POST, "/url", Some(json!({"url": url})))
            .await?;
        Ok(())
    }

    /// The URL of the current page.
    pub async fn current_url(&self) -> anyhow::Result<String> {
        let value = self
            .session_command(reqwest::Method::GET, "/url", None)
            .await?;
        value
            .as_str()
            .map(str::to_owned)
            .context("URL is not a string")
    }

    /// The first element matching `css`, or `None` when there is none.
    pub async fn try_find(&self, css: &str) -> anyhow::Result<Option<Element>> {
        let found = self
            .session_command(
                reqwest::Method::POST,
                "/elements",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await?;
        Ok(found
            .as_array()
            .and_then(|all| all.first())
            .and_then(|e| e[ELEMENT_KEY].as_str())
            .map(|id| Element(id.to_owned())))
    }

    /// The first element matching `css`, waiting (polling, at most [`FIND_DEADLINE`]) for it to
    /// appear: a click that submits a form may return before the next page is there.
    pub async fn find(&self, css: &str) -> anyhow::Result<Element> {
        let started = Instant::now();
        loop {
            if let Some(element) = self.try_find(css).await? {
                return Ok(element);
            }
            if started.elapsed() > FIND_DEADLINE {
                bail!(
                    "no element matches `{css}` on {} after {FIND_DEADLINE:?}:\n{}",
                    self.current_url().await.unwrap_or_default(),
                    self.source().await.unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits (polling, at most [`FIND_DEADLINE`]) until the page's text satisfies `parse`;
    /// returns what it made of it. For pages that arrive after a redirect chain.
    pub async fn wait_for_text<T>(&self, parse: impl Fn(&str) -> Option<T>) -> anyhow::Result<T> {
        let started = Instant::now();
        loop {
            let text = match self.try_find("body").await? {
                Some(body) => self.text(&body).await.unwrap_or_default(),
                None => String::new(),
            };
            if let Some(value) = parse(&text) {
                return Ok(value);
            }
            if started.elapsed() > FIND_DEADLINE {
                bail!(
                    "the page at {} still shows {text:?} after {FIND_DEADLINE:?}",
                    self.current_url().await.unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Types `text` into `element`.
    pub async fn send_keys(&self, element: &Element, text: &str) -> anyhow::Result<()> {
        self.session_command(
            reqwest::Method::POST,
            &format!("/element/{}/value", element.0),
            Some(json!({"text": text})),
        )
        .await?;
        Ok(())
    }

    /// Clears a text field.
    pub async fn clear(&self, element: &Element) -> anyhow::Result<()> {
        self.session_command(
            reqwest::Method::POST,
            &format!("/element/{}/clear", element.0),
            None,
        )
        .await?;
        Ok(())
    }

    /// Clicks `element` (a submit button waits for the next page to load).
    pub async fn click(&self, element: &Element) -> anyhow::Result<()> {
        self.session_command(
            reqwest::Method::POST,
            &format!("/element/{}/click", element.0),
            None,
        )
        .await?;
        Ok(())
    }

    /// The rendered text of `element`.
    pub async fn text(&self, element: &Element) -> anyhow::Result<String> {
        let value = self
            .session_command(
                reqwest::Method::GET,
                &format!("/element/{}/text", element.0),
                None,
            )
            .await?;
        Ok(value.as_str().unwrap_or_default().to_owned())
    }

    /// An attribute of `element`.
    pub async fn attribute(&self, element: &Element, name: &str) -> anyhow::Result<Option<String>> {
        let value = self
            .session_command(
                reqwest::Method::GET,
                &format!("/element/{}/attribute/{name}", element.0),
                None,
            )
            .await?;
        Ok(value.as_str().map(str::to_owned))
    }

    /// The rendered text of the whole page (`body`).
    pub async fn body_text(&self) -> anyhow::Result<String> {
        let body = self.find("body").await?;
        self.text(&body).await
    }

    /// The HTML of the current page.
    pub async fn source(&self) -> anyhow::Result<String> {
        let value = self
            .session_command(reqwest::Method::GET, "/source", None)
            .await?;
        Ok(value.as_str().unwrap_or_default().to_owned())
    }

    /// The cookies visible to the current page, as WebDriver describes them (`name`, `value`,
    /// `domain`, `path`, `httpOnly`, `secure`, `sameSite`, `expiry`).
    pub async fn cookies(&self) -> anyhow::Result<Vec<Value>> {
        let value = self
            .session_command(reqwest::Method::GET, "/cookie", None)
            .await?;
        Ok(value.as_array().cloned().unwrap_or_default())
    }

    /// The cookie named `name` visible to the current page.
    pub async fn cookie(&self, name: &str) -> anyhow::Result<Option<Value>> {
        Ok(self
            .cookies()
            .await?
            .into_iter()
            .find(|c| c["name"] == name))
    }

    /// Adds a cookie for the current page's host.
    pub async fn add_cookie(&self, cookie: Value) -> anyhow::Result<()> {
        self.session_command(
            reqwest::Method::POST,
            "/cookie",
            Some(json!({"cookie": cookie})),
        )
        .await?;
        Ok(())
    }

    /// Deletes every cookie visible to the current page.
    pub async fn delete_cookies(&self) -> anyhow::Result<()> {
        self.session_command(reqwest::Method::DELETE, "/cookie", None)
            .await?;
        Ok(())
    }

    /// Runs `script` in the page (use sparingly: tests act as a person would).
    pub async fn execute(&self, script: &str, args: Vec<Value>) -> anyhow::Result<Value> {
        self.session_command(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({"script": script, "args": args})),
        )
        .await
    }

    /// Runs `script` in the page and waits for it to call its last argument (the WebDriver
    /// callback) with a result.
    pub async fn execute_async(&self, script: &str, args: Vec<Value>) -> anyhow::Result<Value> {
        self.session_command(
            reqwest::Method::POST,
            "/execute/async",
            Some(json!({"script": script, "args": args})),
        )
        .await
    }

    /// Sets the state (`granted`, `denied`, `prompt`) of a permission such as
    /// `clipboard-read` for the current page's origin (W3C Permissions, "Set Permission").
    pub async fn set_permission(&self, name: &str, state: &str) -> anyhow::Result<()> {
        self.session_command(
            reqwest::Method::POST,
            "/permissions",
            Some(json!({"descriptor": {"name": name}, "state": state})),
        )
        .await?;
        Ok(())
    }

    /// Moves the mouse to (`x`, `y`) CSS pixels of the viewport and clicks the primary button
    /// there, as a person would (W3C actions: trusted pointer events at that point).
    pub async fn click_at(&self, x: i64, y: i64) -> anyhow::Result<()> {
        let actions = json!({"actions": [{
            "type": "pointer", "id": "mouse", "parameters": {"pointerType": "mouse"},
            "actions": [
                {"type": "pointerMove", "origin": "viewport", "x": x, "y": y, "duration": 0},
                {"type": "pointerDown", "button": 0},
                {"type": "pointerUp", "button": 0},
            ],
        }]});
        self.session_command(reqwest::Method::POST, "/actions", Some(actions))
            .await?;
        self.release_actions().await
    }

    /// Types `text` on the keyboard into whatever has the focus (W3C key actions), holding
    /// Shift around the characters a US keyboard needs it for, so that a page reading
    /// `KeyboardEvent.code` sees the keys a person would press; `\n` is Enter.
    pub async fn type_keys(&self, text: &str) -> anyhow::Result<()> {
        const SHIFT: &str = "\u{E008}";
        const ENTER: &str = "\u{E007}";
        let mut keys = Vec::new();
        for c in text.chars() {
            let shifted = c.is_ascii_uppercase() || "~!@#$%^&*()_+{}|:\"<>?".contains(c);
            let key = if c == '\n' {
                ENTER.to_owned()
            } else {
                c.to_string()
            };
            if shifted {
                keys.push(json!({"type": "keyDown", "value": SHIFT}));
            }
            keys.push(json!({"type": "keyDown", "value": key}));
            keys.push(json!({"type": "keyUp", "value": key}));
            if shifted {
                keys.push(json!({"type": "keyUp", "value": SHIFT}));
            }
        }
        let actions = json!({"actions": [{"type": "key", "id": "keyboard", "actions": keys}]});
        self.session_command(reqwest::Method::POST, "/actions", Some(actions))
            .await?;
        self.release_actions().await
    }

    /// Resizes the browser window to `width` x `height` CSS pixels (the page's viewport follows).
    pub async fn set_window_size(&self, width: u32, height: u32) -> anyhow::Result<()> {
        self.session_command(
            reqwest::Method::POST,
            "/window/rect",
            Some(json!({"width": width, "height": height})),
        )
        .await?;
        Ok(())
    }

    /// Releases every key and button the actions left pressed.
    async fn release_actions(&self) -> anyhow::Result<()> {
        self.session_command(reqwest::Method::DELETE, "/actions", None)
            .await?;
        Ok(())
    }

    /// Waits (polling, at most `deadline`) until the current URL satisfies `done`; returns it.
    pub async fn wait_for_url(
        &self,
        deadline: Duration,
        done: impl Fn(&str) -> bool,
    ) -> anyhow::Result<String> {
        let started = Instant::now();
        loop {
            let url = self.current_url().await?;
            if done(&url) {
                return Ok(url);
            }
            if started.elapsed() > deadline {
                bail!("still at {url} after {deadline:?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Ends the session (closing Chromium) and stops chromedriver.
    pub async fn quit(mut self) {
        let _ = self
            .session_command(reqwest::Method::DELETE, "", None)
            .await;
        kill_group(self.driver.id());
        let _ = self.driver.kill().await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        kill_group(self.driver.id());
        let _ = self.driver.start_kill();
    }
}
