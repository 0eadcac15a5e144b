//! `bench-proxy`: the proxy outpost against nginx on the same machine in one run, all driven by
//! `wrk -t2 -c64 -d5s --latency`:
//! (a) the outpost's `auth/nginx` check with a valid session cookie against nginx answering
//!     `return 200` (goal: at least 0.5x the requests per second);
//! (b) the outpost in proxy mode against nginx `proxy_pass`, both in front of the same small
//!     fast upstream (nginx `return 200 "hello"` on its own port; goal: at least 0.8x).
//! The session cookies come from a real login (start, the core's login page, callback) over
//! HTTP. Prints requests/s, p50 and p99 for every phase and the two ratios. Run with
//! `scripts/bench-proxy`. Not a test: it never fails on a timing, only when a phase answered
//! errors, which would make its figures meaningless.
//!
//! `--quick` runs each phase for 2 s without warm-up; `--nginx-only` runs the nginx phases alone
//! (no core or outpost), to check the peer side of the setup.

use anyhow::{Context, bail};
use redoubt_tests::bench::{start_core, start_outpost, wait_ready};
use redoubt_tests::peers::login_flow::{Credentials, HttpBrowser, login};
use redoubt_tests::peers::nginx::Nginx;
use redoubt_tests::peers::wrk::{self, WrkReport, WrkRun};
use redoubt_tests::peers::{free_addr, wait_listening};
use serde_json::json;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

const USER: &str = "bench";
const PASSWORD: &str = "bench-password-1";
const UPSTREAM_BODY: &str = "hello";

struct Args {
    core: PathBuf,
    outpost: PathBuf,
    quick: bool,
    nginx_only: bool,
}

fn args() -> anyhow::Result<Args> {
    let usage = "usage: bench-proxy <release redoubt-core> <release redoubt-outpost> \
                 [--quick] [--nginx-only]";
    let mut positional = Vec::new();
    let (mut quick, mut nginx_only) = (false, false);
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--quick" => quick = true,
            "--nginx-only" => nginx_only = true,
            flag if flag.starts_with("--") => bail!("unknown option {flag}\n{usage}"),
            _ => positional.push(PathBuf::from(arg)),
        }
    }
    let mut positional = positional.into_iter();
    Ok(Args {
        core: positional.next().context(usage)?,
        outpost: positional.next().context(usage)?,
        quick,
        nginx_only,
    })
}

/// The nginx side: the shared upstream, `return 200` and `proxy_pass` to the upstream.
struct NginxSide {
    upstream: SocketAddr,
    return_200: SocketAddr,
    proxy_pass: SocketAddr,
    _server: Nginx,
}

async fn start_nginx() -> anyhow::Result<NginxSide> {
    let (upstream, return_200, proxy_pass) = (free_addr()?, free_addr()?, free_addr()?);
    let conf = format!(
        "upstream bench_upstream {{ server {upstream}; keepalive 64; }}\n\
         server {{ listen {upstream}; location / {{ return 200 \"{UPSTREAM_BODY}\"; }} }}\n\
         server {{ listen {return_200}; location / {{ return 200; }} }}\n\
         server {{ listen {proxy_pass}; location / {{\n\
           proxy_pass http://bench_upstream; proxy_http_version 1.1;\n\
           proxy_set_header Connection \"\"; proxy_set_header Host $http_host; }} }}"
    );
    let server = Nginx::start(&conf, &[upstream, return_200, proxy_pass], "auto").await?;
    Ok(NginxSide {
        upstream,
        return_200,
        proxy_pass,
        _server: server,
    })
}

/// The outpost side: a core, a user, one `forward_single` and one `proxy` provider served by
/// one outpost process, and a session cookie for each.
struct OutpostSide {
    http: SocketAddr,
    forward_host: String,
    forward_cookie: String,
    proxy_host: String,
    proxy_cookie: String,
    _core: redoubt_tests::bench::BenchCore,
    _outpost: tokio::process::Child,
    _dir: tempfile::TempDir,
}

async fn start_outpost_side(args: &Args, upstream: SocketAddr) -> anyhow::Result<OutpostSide> {
    let dir = tempfile::tempdir()?;
    let core = start_core(&args.core, &dir.path().join("core")).await?;
    let api = core.api.clone();
    api.post(
        "/api/v1/users",
        json!({"username": USER, "name": "Bench User", "email": "bench@example.com",
               "password": PASSWORD}),
    )
    .await?;
    let http = free_addr()?;
    let forward_host = format!("fwd.bench.localhost:{}", http.port());
    let proxy_host = format!("prx.bench.localhost:{}", http.port());
    let mut provider_ids = Vec::new();
    for (name, settings) in [
        (
            "bench-forward",
            json!({"mode": "forward_single", "external_host": format!("http://{forward_host}")}),
        ),
        (
            "bench-proxy",
            json!({"mode": "proxy", "external_host": format!("http://{proxy_host}"),
                   "internal_host": format!("http://{upstream}")}),
        ),
    ] {
        let provider = api
            .post(
                "/api/v1/providers",
                json!({"name": name, "kind": "proxy", "settings": settings}),
            )
            .await?;
        api.post(
            "/api/v1/applications",
            json!({"slug": name, "name": name, "provider_id": provider["id"]}),
        )
        .await?;
        provider_ids.push(provider["id"].clone());
    }
    let created = api
        .post(
            "/api/v1/outposts",
            json!({"name": "bench-proxy", "kind": "proxy", "provider_ids": provider_ids}),
        )
        .await?;
    let token = created["token"].as_str().context("outpost token")?;
    let state = dir.path().join("outpost");
    std::fs::create_dir_all(&state)?;
    let (mut outpost, metrics) = start_outpost(
        &args.outpost,
        &api.url,
        token,
        &state,
        &[("HTTP", http.to_string()), ("HTTPS", "127.0.0.1:0".into())],
    )?;
    let client = reqwest::Client::new();
    wait_ready(
        &client,
        &format!("http://{metrics}"),
        "the outpost",
        Instant::now(),
    )
    .await?;
    wait_listening(
        http,
        "the outpost",
        || matches!(outpost.try_wait(), Ok(None)),
        String::new,
    )
    .await?;

    let mut browser = HttpBrowser::new()?;
    let credentials = Credentials {
        username: USER,
        password: PASSWORD,
        totp: None,
    };
    let start = format!("http://{forward_host}/outpost.redoubt/start?rd=http://{forward_host}/");
    login(&mut browser, &start, &credentials).await?;
    let forward_cookie = browser
        .jar
        .header_for("fwd.bench.localhost")
        .context("no session cookie after the forward_single login")?;
    let page = login(&mut browser, &format!("http://{proxy_host}/"), &credentials).await?;
    if page.body != UPSTREAM_BODY {
        bail!(
            "after the login, proxy mode answered {} `{}` instead of the upstream",
            page.status,
            page.body
        );
    }
    let proxy_cookie = browser
        .jar
        .header_for("prx.bench.localhost")
        .context("no session cookie after the proxy login")?;
    Ok(OutpostSide {
        http,
        forward_host,
        forward_cookie,
        proxy_host,
        proxy_cookie,
        _core: core,
        _outpost: outpost,
        _dir: dir,
    })
}

/// One phase: an optional warm-up, then the measured run; refuses errors.
async fn phase(
    name: &str,
    url: &str,
    headers: &[(&str, &str)],
    args: &Args,
) -> anyhow::Result<WrkReport> {
    let mut run = WrkRun {
        url,
        headers,
        threads: 2,
        connections: 64,
        duration: Duration::from_secs(1),
    };
    if !args.quick {
        wrk::run(&run).await?;
    }
    run.duration = Duration::from_secs(if args.quick { 2 } else { 5 });
    let report = wrk::run(&run).await?;
    if report.non_success > 0 || report.socket_errors > 0 || report.requests == 0 {
        bail!(
            "{name}: {} non-2xx/3xx responses and {} socket errors in {} requests",
            report.non_success,
            report.socket_errors,
            report.requests
        );
    }
    println!(
        "{name:<44} {:>10.0} req/s   p50 {:>8.3} ms   p99 {:>8.3} ms",
        report.requests_per_second,
        report.p50.as_secs_f64() * 1e3,
        report.p99.as_secs_f64() * 1e3
    );
    Ok(report)
}

fn ratio(name: &str, ours: &WrkReport, theirs: &WrkReport, goal: f64) {
    let ratio = ours.requests_per_second / theirs.requests_per_second;
    let verdict = if ratio >= goal { "met" } else { "NOT met" };
    println!("  {name}: {ratio:.2}x (goal >= {goal}x: {verdict})");
}

/// Checks one request of a phase before loading it, so a wrong setup fails with a clear message.
async fn check_once(url: &str, headers: &[(&str, &str)], body: Option<&str>) -> anyhow::Result<()> {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let mut request = client.get(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await?;
    let status = response.status();
    let text = response.text().await?;
    if !status.is_success() || body.is_some_and(|b| b != text) {
        bail!("GET {url} answered {status} `{text}`");
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    redoubt_tests::peers::crypto();
    let args = args()?;
    if !wrk::available() {
        bail!("wrk is missing: apt-get install wrk");
    }
    let nginx = start_nginx().await?;
    let outpost = if args.nginx_only {
        None
    } else {
        Some(start_outpost_side(&args, nginx.upstream).await?)
    };
    println!(
        "wrk -t2 -c64 -d{}s --latency, on {} cores",
        if args.quick { 2 } else { 5 },
        std::thread::available_parallelism().map_or(0, usize::from)
    );

    let nginx_200_url = format!("http://{}/", nginx.return_200);
    check_once(&nginx_200_url, &[], None).await?;
    let nginx_200 = phase("(a) nginx return 200", &nginx_200_url, &[], &args).await?;
    if let Some(side) = &outpost {
        let url = format!("http://{}/outpost.redoubt/auth/nginx", side.http);
        let original = format!("http://{}/", side.forward_host);
        let headers = [
            ("Host", side.forward_host.as_str()),
            ("X-Original-URL", original.as_str()),
            ("Cookie", side.forward_cookie.as_str()),
        ];
        check_once(&url, &headers, None).await?;
        let auth = phase(
            "(a) outpost auth/nginx, valid cookie",
            &url,
            &headers,
            &args,
        )
        .await?;
        ratio("auth/nginx vs nginx return 200", &auth, &nginx_200, 0.5);
    }

    let nginx_proxy_url = format!("http://{}/", nginx.proxy_pass);
    check_once(&nginx_proxy_url, &[], Some(UPSTREAM_BODY)).await?;
    let nginx_proxy = phase(
        "(b) nginx proxy_pass -> upstream",
        &nginx_proxy_url,
        &[],
        &args,
    )
    .await?;
    if let Some(side) = &outpost {
        let url = format!("http://{}/", side.http);
        let headers = [
            ("Host", side.proxy_host.as_str()),
            ("Cookie", side.proxy_cookie.as_str()),
        ];
        check_once(&url, &headers, Some(UPSTREAM_BODY)).await?;
        let proxy = phase("(b) outpost proxy mode -> upstream", &url, &headers, &args).await?;
        ratio("proxy mode vs nginx proxy_pass", &proxy, &nginx_proxy, 0.8);
    }
    Ok(())
}
