//! `bench-ldap`: the LDAP outpost against Debian's slapd (mdb, `{SSHA}` passwords) holding the
//! same 10,000 users and 1,000 groups, driven by the same load generator in one run. Prints warm
//! simple binds/s, equality searches by uid/s and a subtree search of all users for both, with
//! ratios; the cost of a cold bind next to one Argon2id check; and the outpost's RSS with
//! 10,000 and with 100,000 users and 10,000 groups. Run with `scripts/bench-ldap`. Not a test:
//! it never fails on a timing.

use anyhow::{Context, bail};
use ldap3_proto::proto::{LdapFilter, LdapResultCode};
use redoubt_core::auth::password::{HashParams, PasswordHasherArgon2};
use redoubt_tests::bench::{BenchApi, free_port, rss_mb, start_core, start_outpost};
use redoubt_tests::ldap_client::LdapClient;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

const BASE: &str = "dc=example,dc=com";
const PASSWORD: &str = "bench-password-1";
/// Users that have a password (binds cycle over them); the rest have none, as hashing 10,000
/// Argon2id passwords would take minutes and changes nothing the benchmark measures.
const BIND_USERS: usize = 200;
/// Concurrent connections per load phase.
const CONNECTIONS: usize = 16;
const PHASE: Duration = Duration::from_secs(5);

struct Args {
    core: PathBuf,
    outpost: PathBuf,
    /// Skip the 100,000-user memory phase.
    quick: bool,
}

fn args() -> anyhow::Result<Args> {
    let usage = "usage: bench-ldap <release redoubt-core> <release redoubt-outpost> [--quick]";
    let mut args = std::env::args().skip(1);
    let core = args.next().context(usage)?.into();
    let outpost = args.next().context(usage)?.into();
    let quick = args.next().is_some_and(|a| a == "--quick");
    Ok(Args {
        core,
        outpost,
        quick,
    })
}

fn user_name(i: usize) -> String {
    format!("user{i:06}")
}

fn group_name(i: usize) -> String {
    format!("group{i:05}")
}

fn user_dn(i: usize) -> String {
    format!("cn={},ou=users,{BASE}", user_name(i))
}

/// Creates users `users` and groups `groups`; user `i` joins group `i % total_groups`. Returns
/// the id of user 0 when it was created.
async fn fill(
    api: &BenchApi,
    users: std::ops::Range<usize>,
    groups: std::ops::Range<usize>,
    total_groups: usize,
) -> anyhow::Result<Option<i64>> {
    const WORKERS: usize = 8;
    let mut tasks = Vec::new();
    for worker in 0..WORKERS {
        let (api, groups) = (api.clone(), groups.clone());
        tasks.push(tokio::spawn(async move {
            for i in groups.skip(worker).step_by(WORKERS) {
                api.post("/api/v1/groups", json!({"name": group_name(i)}))
                    .await?;
            }
            anyhow::Ok(None)
        }));
    }
    for task in tasks.drain(..) {
        task.await??;
    }
    // Group ids are assigned in creation order after the bootstrap's; look them up by name.
    let group_ids = group_ids(api).await?;
    let group_ids = std::sync::Arc::new(group_ids);
    for worker in 0..WORKERS {
        let (api, users, group_ids) = (api.clone(), users.clone(), group_ids.clone());
        tasks.push(tokio::spawn(async move {
            let mut first = None;
            for i in users.skip(worker).step_by(WORKERS) {
                let mut body = json!({"username": user_name(i), "name": format!("User {i}"),
                    "email": format!("{}@example.com", user_name(i))});
                if i < BIND_USERS {
                    body["password"] = json!(PASSWORD);
                }
                let user = api.post("/api/v1/users", body).await?;
                if i == 0 {
                    first = user["id"].as_i64();
                }
                let group = group_ids
                    .get(&group_name(i % total_groups))
                    .context("group id")?;
                api.post(
                    &format!("/api/v1/groups/{group}/members"),
                    json!({"user_id": user["id"]}),
                )
                .await?;
            }
            anyhow::Ok(first)
        }));
    }
    let mut first = None;
    for task in tasks {
        first = first.or(task.await??);
    }
    Ok(first)
}

async fn group_ids(api: &BenchApi) -> anyhow::Result<std::collections::HashMap<String, i64>> {
    let mut ids = std::collections::HashMap::new();
    for page in 1.. {
        let body: Value = api
            .client
            .get(format!(
                "{}/api/v1/groups?page={page}&page_size=500",
                api.url
            ))
            .bearer_auth(&api.token)
            .send()
            .await?
            .json()
            .await?;
        let items = body["items"].as_array().context("group list items")?;
        for g in items {
            ids.insert(
                g["name"].as_str().context("name")?.to_owned(),
                g["id"].as_i64().context("id")?,
            );
        }
        if items.len() < 500 {
            break;
        }
    }
    Ok(ids)
}

/// Starts a release outpost for `token` with LDAP on `ldap`; returns the process and its
/// metrics URL.
fn start_ldap_outpost(
    binary: &Path,
    core_url: &str,
    token: &str,
    state: &Path,
    ldap: SocketAddr,
) -> anyhow::Result<(Child, String)> {
    let listen = [("LDAP", ldap.to_string()), ("LDAPS", "127.0.0.1:0".into())];
    let (child, metrics) = start_outpost(binary, core_url, token, state, &listen)?;
    Ok((child, format!("http://{metrics}/metrics")))
}

/// Waits until the outpost's directory holds at least `users` users; returns the time taken.
async fn wait_directory(metrics_url: &str, users: usize) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let client = reqwest::Client::new();
    loop {
        if let Ok(response) = client.get(metrics_url).send().await
            && let Ok(text) = response.text().await
        {
            let loaded = text
                .lines()
                .find_map(|l| l.strip_prefix("redoubt_ldap_directory_entries{kind=\"user\"} "))
                .and_then(|v| v.trim().parse::<f64>().ok())
                .unwrap_or(0.0);
            if loaded as usize >= users {
                return Ok(started.elapsed());
            }
        }
        if started.elapsed() > Duration::from_secs(300) {
            bail!("the outpost did not load {users} users within 5 minutes");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Writes slapd's configuration and the same directory as LDIF, loads it with slapadd and
/// starts slapd on `addr`.
async fn start_slapd(
    dir: &Path,
    addr: SocketAddr,
    users: usize,
    groups: usize,
) -> anyhow::Result<Child> {
    let hash = std::process::Command::new("slappasswd")
        .args(["-h", "{SSHA}", "-s", PASSWORD])
        .output()
        .context("run slappasswd (apt-get install slapd)")?;
    let hash = String::from_utf8(hash.stdout)?.trim().to_owned();
    let db = dir.join("db");
    std::fs::create_dir_all(&db)?;
    let conf = dir.join("slapd.conf");
    std::fs::write(
        &conf,
        format!(
            "include /etc/ldap/schema/core.schema\n\
             include /etc/ldap/schema/cosine.schema\n\
             include /etc/ldap/schema/nis.schema\n\
             include /etc/ldap/schema/inetorgperson.schema\n\
             modulepath /usr/lib/ldap\n\
             moduleload back_mdb\n\
             pidfile {pid}\n\
             sizelimit unlimited\n\
             loglevel 0\n\
             database mdb\n\
             maxsize 4294967296\n\
             suffix \"{BASE}\"\n\
             rootdn \"cn=admin,{BASE}\"\n\
             directory {db}\n\
             index objectClass eq\n\
             index uid,cn eq\n\
             index member eq\n",
            pid = dir.join("slapd.pid").display(),
            db = db.display()
        ),
    )?;
    let mut ldif = format!(
        "dn: {BASE}\nobjectClass: top\nobjectClass: dcObject\nobjectClass: organization\no: example\ndc: example\n\n\
         dn: ou=users,{BASE}\nobjectClass: organizationalUnit\nou: users\n\n\
         dn: ou=groups,{BASE}\nobjectClass: organizationalUnit\nou: groups\n\n"
    );
    for i in 0..users {
        let name = user_name(i);
        ldif.push_str(&format!(
            "dn: {dn}\nobjectClass: inetOrgPerson\nobjectClass: posixAccount\ncn: {name}\nsn: {i}\n\
             uid: {name}\nmail: {name}@example.com\ndisplayName: User {i}\nuidNumber: {uid}\n\
             gidNumber: {gid}\nhomeDirectory: /home/{name}\n",
            dn = user_dn(i),
            uid = 2000 + i,
            gid = 4000 + i % groups,
        ));
        if i < BIND_USERS {
            ldif.push_str(&format!("userPassword: {hash}\n"));
        }
        ldif.push('\n');
    }
    for g in 0..groups {
        ldif.push_str(&format!(
            "dn: cn={name},ou=groups,{BASE}\nobjectClass: groupOfNames\ncn: {name}\n",
            name = group_name(g)
        ));
        for i in (g..users).step_by(groups) {
            ldif.push_str(&format!("member: {}\n", user_dn(i)));
        }
        ldif.push('\n');
    }
    let ldif_path = dir.join("directory.ldif");
    std::fs::write(&ldif_path, ldif)?;
    let loaded = std::process::Command::new("slapadd")
        .arg("-q")
        .arg("-f")
        .arg(&conf)
        .arg("-l")
        .arg(&ldif_path)
        .output()
        .context("run slapadd")?;
    if !loaded.status.success() {
        bail!(
            "slapadd failed: {}",
            String::from_utf8_lossy(&loaded.stderr)
        );
    }
    let child = Command::new("slapd")
        .arg("-f")
        .arg(&conf)
        .args(["-h", &format!("ldap://{addr}/"), "-d", "0"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("start slapd")?;
    let started = Instant::now();
    while LdapClient::connect(addr).await.is_err() {
        if started.elapsed() > Duration::from_secs(30) {
            bail!("slapd did not listen within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(child)
}

#[derive(Clone, Copy)]
enum Load {
    /// Simple binds cycling over the users with passwords, on open connections.
    Bind,
    /// `(uid=<user>)` subtree searches from the base, bound as the search user.
    SearchUid { users: usize },
}

struct Figures {
    per_second: f64,
    p50: Duration,
    p99: Duration,
}

async fn run_load(addr: SocketAddr, load: Load) -> anyhow::Result<Figures> {
    let deadline = Instant::now() + PHASE;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..CONNECTIONS {
        tasks.push(tokio::spawn(async move {
            let mut client = LdapClient::connect(addr).await?;
            if let Load::SearchUid { .. } = load
                && client.bind(&user_dn(0), PASSWORD).await? != LdapResultCode::Success
            {
                bail!("the search user cannot bind");
            }
            let mut latencies = Vec::new();
            let mut n = worker * 7919;
            while Instant::now() < deadline {
                n += 1;
                let t = Instant::now();
                match load {
                    Load::Bind => {
                        let code = client.bind(&user_dn(n % BIND_USERS), PASSWORD).await?;
                        if code != LdapResultCode::Success {
                            bail!("bind of {} answered {code:?}", user_dn(n % BIND_USERS));
                        }
                    }
                    Load::SearchUid { users } => {
                        let name = user_name(n % users);
                        let (entries, code) = client
                            .search(BASE, LdapFilter::Equality("uid".into(), name.clone()), &[])
                            .await?;
                        if entries != 1 || code != LdapResultCode::Success {
                            bail!("(uid={name}) found {entries} entries, {code:?}");
                        }
                    }
                }
                latencies.push(t.elapsed());
            }
            anyhow::Ok(latencies)
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await??);
    }
    let elapsed = started.elapsed();
    all.sort();
    Ok(Figures {
        per_second: all.len() as f64 / elapsed.as_secs_f64(),
        p50: all[all.len() / 2],
        p99: all[all.len() * 99 / 100],
    })
}

/// Median time of a subtree search returning every user, and the entry count.
async fn search_all(addr: SocketAddr) -> anyhow::Result<(Duration, usize)> {
    let mut client = LdapClient::connect(addr).await?;
    client.bind(&user_dn(0), PASSWORD).await?;
    let mut times = Vec::new();
    let mut count = 0;
    for _ in 0..5 {
        let t = Instant::now();
        let (entries, code) = client
            .search(
                &format!("ou=users,{BASE}"),
                LdapFilter::Equality("objectClass".into(), "inetOrgPerson".into()),
                &[],
            )
            .await?;
        if code != LdapResultCode::Success {
            bail!("the subtree search answered {code:?}");
        }
        times.push(t.elapsed());
        count = entries;
    }
    times.sort();
    Ok((times[times.len() / 2], count))
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args = args()?;
    let dir = tempfile::tempdir()?;
    let core = start_core(&args.core, &dir.path().join("core")).await?;
    let api = core.api.clone();
    let url = api.url.clone();

    let (users, groups) = (10_000, 1_000);
    let t = Instant::now();
    let first_user = fill(&api, 0..users, 0..groups, groups)
        .await?
        .context("user 0 was created")?;
    eprintln!(
        "filled the core with {users} users and {groups} groups in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let search_group = api
        .post("/api/v1/groups", json!({"name": "ldap-search"}))
        .await?;
    api.post(
        &format!("/api/v1/groups/{}/members", search_group["id"]),
        json!({"user_id": first_user}),
    )
    .await?;
    let provider = api
        .post(
            "/api/v1/providers",
            json!({"name": "directory", "kind": "ldap",
                   "settings": {"base_dn": BASE, "search_group_id": search_group["id"]}}),
        )
        .await?;
    api.post(
        "/api/v1/applications",
        json!({"slug": "directory", "name": "Directory", "provider_id": provider["id"]}),
    )
    .await?;
    let outpost = api
        .post(
            "/api/v1/outposts",
            json!({"name": "ldap", "kind": "ldap", "provider_ids": [provider["id"]]}),
        )
        .await?;
    let outpost_token = outpost["token"].as_str().context("token")?.to_owned();

    let redoubt_addr: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
    let state = dir.path().join("outpost");
    let (outpost_child, metrics_url) =
        start_ldap_outpost(&args.outpost, &url, &outpost_token, &state, redoubt_addr)?;
    let loaded = wait_directory(&metrics_url, users).await?;
    eprintln!(
        "the outpost served the directory {:.2} s after start",
        loaded.as_secs_f64()
    );

    // Cold binds: each user's first bind goes to the core (one Argon2id check).
    let hasher = PasswordHasherArgon2::new(HashParams::default())?;
    let phc = hasher.hash(PASSWORD)?;
    let mut argon = Vec::new();
    for _ in 0..10 {
        let t = Instant::now();
        assert!(hasher.verify(PASSWORD, &phc));
        argon.push(t.elapsed());
    }
    argon.sort();
    let mut cold = Vec::new();
    let mut client = LdapClient::connect(redoubt_addr).await?;
    for i in 0..BIND_USERS {
        let t = Instant::now();
        let code = client.bind(&user_dn(i), PASSWORD).await?;
        if code != LdapResultCode::Success {
            bail!("cold bind of {} answered {code:?}", user_dn(i));
        }
        cold.push(t.elapsed());
    }
    cold.sort();

    let slapd_addr: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
    let slapd_dir = dir.path().join("slapd");
    std::fs::create_dir_all(&slapd_dir)?;
    let _slapd = start_slapd(&slapd_dir, slapd_addr, users, groups).await?;

    let mut rows = Vec::new();
    for (what, load) in [
        ("warm simple binds/s", Load::Bind),
        ("uid equality searches/s", Load::SearchUid { users }),
    ] {
        let slapd = run_load(slapd_addr, load).await?;
        let redoubt = run_load(redoubt_addr, load).await?;
        rows.push((what, slapd, redoubt));
    }
    let (slapd_all, slapd_count) = search_all(slapd_addr).await?;
    let (redoubt_all, redoubt_count) = search_all(redoubt_addr).await?;
    let rss_10k = rss_mb(outpost_child.id().context("pid")?)?;

    println!(
        "\nLDAP: {users} users, {groups} groups, {CONNECTIONS} connections, {} s per phase\n",
        PHASE.as_secs()
    );
    println!(
        "{:<28} {:>12} {:>12} {:>8}   {:>22} {:>22}",
        "", "slapd", "redoubt", "ratio", "p50/p99 slapd", "p50/p99 redoubt"
    );
    for (what, slapd, redoubt) in &rows {
        println!(
            "{:<28} {:>12.0} {:>12.0} {:>7.2}x   {:>22} {:>22}",
            what,
            slapd.per_second,
            redoubt.per_second,
            redoubt.per_second / slapd.per_second,
            format!("{}/{}", ms(slapd.p50), ms(slapd.p99)),
            format!("{}/{}", ms(redoubt.p50), ms(redoubt.p99)),
        );
    }
    println!(
        "{:<28} {:>12} {:>12} {:>7.2}x   ({slapd_count} and {redoubt_count} entries)",
        "subtree search, all users",
        ms(slapd_all),
        ms(redoubt_all),
        slapd_all.as_secs_f64() / redoubt_all.as_secs_f64(),
    );
    let argon_p50 = argon[argon.len() / 2];
    let cold_p50 = cold[cold.len() / 2];
    println!(
        "\ncold bind: p50 {} (one Argon2id check here: {}; overhead {})",
        ms(cold_p50),
        ms(argon_p50),
        ms(cold_p50.saturating_sub(argon_p50)),
    );
    println!("outpost RSS with {users} users and {groups} groups: {rss_10k:.1} MB");
    drop(outpost_child);

    if !args.quick {
        let (users_100k, groups_10k) = (100_000, 10_000);
        let t = Instant::now();
        fill(&api, users..users_100k, groups..groups_10k, groups_10k).await?;
        eprintln!(
            "filled the core up to {users_100k} users and {groups_10k} groups in {:.1} s",
            t.elapsed().as_secs_f64()
        );
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
        let state = dir.path().join("outpost-100k");
        let (child, metrics_url) =
            start_ldap_outpost(&args.outpost, &url, &outpost_token, &state, addr)?;
        let loaded = wait_directory(&metrics_url, users_100k).await?;
        let (all, count) = search_all(addr).await?;
        let searches = run_load(addr, Load::SearchUid { users: users_100k }).await?;
        let rss = rss_mb(child.id().context("pid")?)?;
        println!(
            "outpost with {users_100k} users and {groups_10k} groups: RSS {rss:.1} MB, \
             loaded in {:.2} s, all-users search {} ({count} entries), {:.0} uid searches/s",
            loaded.as_secs_f64(),
            ms(all),
            searches.per_second
        );
    }
    Ok(())
}
