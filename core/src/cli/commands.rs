//! What each admin subcommand does: one REST call (or a few), then a table or JSON.

use super::client::ApiClient;
use super::output::{Output, cell};
use super::secrets;
use super::*;
use anyhow::{Context, bail};
use serde_json::{Map, Value, json};

const USER_COLUMNS: &[(&str, &str)] = &[
    ("ID", "id"),
    ("USERNAME", "username"),
    ("NAME", "name"),
    ("EMAIL", "email"),
    ("ACTIVE", "is_active"),
];
const GROUP_COLUMNS: &[(&str, &str)] = &[
    ("ID", "id"),
    ("NAME", "name"),
    ("PARENT", "parent_id"),
    ("SUPERUSER", "is_superuser"),
];
const APP_COLUMNS: &[(&str, &str)] = &[
    ("ID", "id"),
    ("SLUG", "slug"),
    ("NAME", "name"),
    ("PROVIDER", "provider_id"),
    ("GROUPS", "group_ids"),
    ("LAUNCH URL", "launch_url"),
];
const PROVIDER_COLUMNS: &[(&str, &str)] = &[("ID", "id"), ("NAME", "name"), ("KIND", "kind")];
const OUTPOST_COLUMNS: &[(&str, &str)] = &[
    ("ID", "id"),
    ("NAME", "name"),
    ("KIND", "kind"),
    ("PROVIDERS", "provider_ids"),
];
const TOKEN_COLUMNS: &[(&str, &str)] = &[
    ("ID", "id"),
    ("KIND", "kind"),
    ("USER", "user_id"),
    ("OUTPOST", "outpost_id"),
    ("EXPIRES", "expires_at"),
    ("LAST USED", "last_used_at"),
    ("DESCRIPTION", "description"),
];
const EVENT_COLUMNS: &[(&str, &str)] = &[
    ("TIME", "created_at"),
    ("ACTOR", "actor"),
    ("ACTION", "action"),
    ("TARGET", "target"),
    ("SOURCE", "source_address"),
    ("OUTCOME", "outcome"),
];
const INSTANCE_COLUMNS: &[(&str, &str)] = &[
    ("INSTANCE", "instance_id"),
    ("HOSTNAME", "hostname"),
    ("VERSION", "version"),
    ("OUTDATED", "outdated"),
    ("REVISION", "applied_revision"),
    ("UP TO DATE", "up_to_date"),
    ("HEALTHY", "healthy"),
    ("LAST SEEN", "last_seen"),
    ("ADDRESS", "remote_address"),
];

fn list_query(args: &ListArgs) -> String {
    let mut query = format!("?page={}&page_size={}", args.page, args.page_size);
    if let Some(search) = &args.search {
        query.push_str("&search=");
        query.push_str(&encode(search));
    }
    query
}

/// Percent-encodes a query value.
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Sets `key` in `body` when `value` is given.
fn put_some(body: &mut Map<String, Value>, key: &str, value: Option<impl Into<Value>>) {
    if let Some(value) = value {
        body.insert(key.to_owned(), value.into());
    }
}

pub(super) async fn login(api: &ApiClient, out: Output, args: LoginArgs) -> anyhow::Result<()> {
    let password = secrets::read("password", args.password_stdin)?;
    let body = json!({
        "username": args.username,
        "password": password,
        "totp_code": args.totp,
        "expires_in_seconds": args.expires_in,
    });
    let created = api.post("/api/v1/auth/login", body).await?;
    if out.json {
        out.json(&created);
    } else {
        println!(
            "{}",
            created["secret"]
                .as_str()
                .context("the core sent no token")?
        );
    }
    Ok(())
}

pub(super) async fn dispatch(
    api: &ApiClient,
    out: Output,
    command: AdminCommand,
) -> anyhow::Result<()> {
    match command {
        AdminCommand::Login(_) => bail!("login is handled before authentication"),
        AdminCommand::Info => out.object(&api.get("/api/v1/info").await?),
        AdminCommand::Users(c) => users(api, out, c).await?,
        AdminCommand::Groups(c) => groups(api, out, c).await?,
        AdminCommand::Apps(c) => apps(api, out, c).await?,
        AdminCommand::Providers(c) => providers(api, out, c).await?,
        AdminCommand::Outposts(c) => outposts(api, out, c).await?,
        AdminCommand::Tokens(c) => tokens(api, out, c).await?,
        AdminCommand::Events(c) => events(api, out, c).await?,
    }
    Ok(())
}

async fn users(api: &ApiClient, out: Output, command: UsersCommand) -> anyhow::Result<()> {
    match command {
        UsersCommand::List(args) => out.list(
            &api.get(&format!("/api/v1/users{}", list_query(&args)))
                .await?,
            USER_COLUMNS,
        ),
        UsersCommand::Show { id } => out.object(&api.get(&format!("/api/v1/users/{id}")).await?),
        UsersCommand::Create {
            username,
            name,
            email,
            inactive,
            password_stdin,
            attributes,
        } => {
            let mut attrs = Map::new();
            for pair in attributes {
                let (key, value) = pair
                    .split_once('=')
                    .with_context(|| format!("--attribute `{pair}` is not KEY=VALUE"))?;
                attrs.insert(key.to_owned(), Value::String(value.to_owned()));
            }
            let password = if password_stdin {
                Some(secrets::from_stdin("password")?)
            } else {
                None
            };
            let body = json!({
                "username": username, "name": name, "email": email, "is_active": !inactive,
                "attributes": attrs, "password": password,
            });
            out.object(&api.post("/api/v1/users", body).await?);
        }
        UsersCommand::Update {
            id,
            username,
            name,
            email,
            active,
        } => {
            let mut body = Map::new();
            put_some(&mut body, "username", username);
            put_some(&mut body, "name", name);
            put_some(&mut body, "email", email);
            put_some(&mut body, "is_active", active);
            out.object(
                &api.patch(&format!("/api/v1/users/{id}"), Value::Object(body))
                    .await?,
            );
        }
        UsersCommand::Delete { id } => {
            api.delete(&format!("/api/v1/users/{id}")).await?;
            out.done(&format!("deleted user {id}"));
        }
        UsersCommand::SetPassword { id, password_stdin } => {
            let password = secrets::read("new password", password_stdin)?;
            api.put(
                &format!("/api/v1/users/{id}/password"),
                json!({ "password": password }),
            )
            .await?;
            out.done(&format!("password of user {id} set"));
        }
        UsersCommand::Totp(TotpCommand::List { user_id }) => {
            let devices = api.get(&format!("/api/v1/users/{user_id}/totp")).await?;
            out.list(
                &devices,
                &[("ID", "id"), ("NAME", "name"), ("CREATED", "created_at")],
            );
        }
        UsersCommand::Totp(TotpCommand::Add { user_id, name }) => {
            let enrolled = api
                .post(
                    &format!("/api/v1/users/{user_id}/totp"),
                    json!({ "name": name }),
                )
                .await?;
            if out.json {
                out.json(&enrolled);
            } else {
                println!(
                    "TOTP device {} enrolled. Shown once; scan or type it now:",
                    cell(&enrolled["device"]["id"])
                );
                println!("  otpauth URI: {}", cell(&enrolled["otpauth_uri"]));
                println!("  secret:      {}", cell(&enrolled["secret"]));
            }
        }
        UsersCommand::Totp(TotpCommand::Remove { user_id, device_id }) => {
            api.delete(&format!("/api/v1/users/{user_id}/totp/{device_id}"))
                .await?;
            out.done(&format!(
                "removed TOTP device {device_id} of user {user_id}"
            ));
        }
    }
    Ok(())
}

async fn groups(api: &ApiClient, out: Output, command: GroupsCommand) -> anyhow::Result<()> {
    match command {
        GroupsCommand::List(args) => out.list(
            &api.get(&format!("/api/v1/groups{}", list_query(&args)))
                .await?,
            GROUP_COLUMNS,
        ),
        GroupsCommand::Show { id } => out.object(&api.get(&format!("/api/v1/groups/{id}")).await?),
        GroupsCommand::Create {
            name,
            parent,
            superuser,
        } => {
            let body = json!({ "name": name, "parent_id": parent, "is_superuser": superuser });
            out.object(&api.post("/api/v1/groups", body).await?);
        }
        GroupsCommand::Update {
            id,
            name,
            parent,
            no_parent,
            superuser,
        } => {
            let mut body = Map::new();
            put_some(&mut body, "name", name);
            put_some(&mut body, "is_superuser", superuser);
            if no_parent {
                body.insert("parent_id".into(), Value::Null);
            } else {
                put_some(&mut body, "parent_id", parent);
            }
            out.object(
                &api.patch(&format!("/api/v1/groups/{id}"), Value::Object(body))
                    .await?,
            );
        }
        GroupsCommand::Delete { id } => {
            api.delete(&format!("/api/v1/groups/{id}")).await?;
            out.done(&format!("deleted group {id}"));
        }
        GroupsCommand::Members { id } => {
            out.list(
                &api.get(&format!("/api/v1/groups/{id}/members")).await?,
                USER_COLUMNS,
            );
        }
        GroupsCommand::AddMember { group_id, user_id } => {
            api.post(
                &format!("/api/v1/groups/{group_id}/members"),
                json!({ "user_id": user_id }),
            )
            .await?;
            out.done(&format!("user {user_id} is a member of group {group_id}"));
        }
        GroupsCommand::RemoveMember { group_id, user_id } => {
            api.delete(&format!("/api/v1/groups/{group_id}/members/{user_id}"))
                .await?;
            out.done(&format!("user {user_id} left group {group_id}"));
        }
    }
    Ok(())
}

async fn apps(api: &ApiClient, out: Output, command: AppsCommand) -> anyhow::Result<()> {
    match command {
        AppsCommand::List(args) => out.list(
            &api.get(&format!("/api/v1/applications{}", list_query(&args)))
                .await?,
            APP_COLUMNS,
        ),
        AppsCommand::Show { id } => {
            out.object(&api.get(&format!("/api/v1/applications/{id}")).await?)
        }
        AppsCommand::Create {
            slug,
            name,
            launch_url,
            provider,
        } => {
            let body = json!({ "slug": slug, "name": name, "launch_url": launch_url, "provider_id": provider });
            out.object(&api.post("/api/v1/applications", body).await?);
        }
        AppsCommand::Update {
            id,
            slug,
            name,
            launch_url,
            provider,
            no_provider,
        } => {
            let mut body = Map::new();
            put_some(&mut body, "slug", slug);
            put_some(&mut body, "name", name);
            put_some(&mut body, "launch_url", launch_url);
            if no_provider {
                body.insert("provider_id".into(), Value::Null);
            } else {
                put_some(&mut body, "provider_id", provider);
            }
            out.object(
                &api.patch(&format!("/api/v1/applications/{id}"), Value::Object(body))
                    .await?,
            );
        }
        AppsCommand::Delete { id } => {
            api.delete(&format!("/api/v1/applications/{id}")).await?;
            out.done(&format!("deleted application {id}"));
        }
        AppsCommand::Bind { app_id, group_id } => {
            api.post(
                &format!("/api/v1/applications/{app_id}/groups"),
                json!({ "group_id": group_id }),
            )
            .await?;
            out.done(&format!("group {group_id} may use application {app_id}"));
        }
        AppsCommand::Unbind { app_id, group_id } => {
            api.delete(&format!("/api/v1/applications/{app_id}/groups/{group_id}"))
                .await?;
            out.done(&format!(
                "group {group_id} unbound from application {app_id}"
            ));
        }
    }
    Ok(())
}

async fn providers(api: &ApiClient, out: Output, command: ProvidersCommand) -> anyhow::Result<()> {
    match command {
        ProvidersCommand::List(args) => out.list(
            &api.get(&format!("/api/v1/providers{}", list_query(&args)))
                .await?,
            PROVIDER_COLUMNS,
        ),
        ProvidersCommand::Show { id } => {
            out.object(&api.get(&format!("/api/v1/providers/{id}")).await?)
        }
        ProvidersCommand::Create {
            name,
            kind,
            settings,
            settings_file,
            base_dn,
            search_group,
            shared_secret_stdin,
            client_networks,
        } => {
            let mut settings = match (settings, settings_file) {
                (Some(text), _) => parse_settings(&text)?,
                (None, Some(path)) => parse_settings(
                    &std::fs::read_to_string(&path)
                        .with_context(|| format!("cannot read {}", path.display()))?,
                )?,
                (None, None) => Map::new(),
            };
            put_some(&mut settings, "base_dn", base_dn);
            put_some(&mut settings, "search_group_id", search_group);
            if shared_secret_stdin {
                settings.insert(
                    "shared_secret".into(),
                    secrets::from_stdin("shared secret")?.into(),
                );
            }
            if !client_networks.is_empty() {
                settings.insert("client_networks".into(), json!(client_networks));
            }
            let body = json!({ "name": name, "kind": kind, "settings": settings });
            out.object(&api.post("/api/v1/providers", body).await?);
        }
        ProvidersCommand::Update { id, name, settings } => {
            let mut body = Map::new();
            put_some(&mut body, "name", name);
            if let Some(text) = settings {
                body.insert("settings".into(), Value::Object(parse_settings(&text)?));
            }
            out.object(
                &api.patch(&format!("/api/v1/providers/{id}"), Value::Object(body))
                    .await?,
            );
        }
        ProvidersCommand::Delete { id } => {
            api.delete(&format!("/api/v1/providers/{id}")).await?;
            out.done(&format!("deleted provider {id}"));
        }
    }
    Ok(())
}

fn parse_settings(text: &str) -> anyhow::Result<Map<String, Value>> {
    match serde_json::from_str(text).context("--settings is not valid JSON")? {
        Value::Object(map) => Ok(map),
        _ => bail!("--settings must be a JSON object"),
    }
}

async fn outposts(api: &ApiClient, out: Output, command: OutpostsCommand) -> anyhow::Result<()> {
    match command {
        OutpostsCommand::List(args) => out.list(
            &api.get(&format!("/api/v1/outposts{}", list_query(&args)))
                .await?,
            OUTPOST_COLUMNS,
        ),
        OutpostsCommand::Show { id } => {
            out.object(&api.get(&format!("/api/v1/outposts/{id}")).await?)
        }
        OutpostsCommand::Create {
            name,
            kind,
            providers,
        } => {
            let body = json!({ "name": name, "kind": kind, "provider_ids": providers });
            let created = api.post("/api/v1/outposts", body).await?;
            if out.json {
                out.json(&created);
            } else {
                let token = created["token"]
                    .as_str()
                    .context("the core sent no token")?;
                let name = cell(&created["outpost"]["name"]);
                let kind = cell(&created["outpost"]["kind"]);
                println!(
                    "Created {kind} outpost `{name}` (id {}).",
                    cell(&created["outpost"]["id"])
                );
                print_run_instructions(api.base(), &name, &kind, token);
            }
        }
        OutpostsCommand::Update {
            id,
            name,
            providers,
        } => {
            let mut body = Map::new();
            put_some(&mut body, "name", name);
            put_some(&mut body, "provider_ids", providers);
            out.object(
                &api.patch(&format!("/api/v1/outposts/{id}"), Value::Object(body))
                    .await?,
            );
        }
        OutpostsCommand::Delete { id } => {
            api.delete(&format!("/api/v1/outposts/{id}")).await?;
            out.done(&format!("deleted outpost {id}"));
        }
        OutpostsCommand::RotateToken { id } => {
            let outpost = api.get(&format!("/api/v1/outposts/{id}")).await?;
            let rotated = api
                .post(&format!("/api/v1/outposts/{id}/rotate-token"), json!({}))
                .await?;
            if out.json {
                out.json(&rotated);
            } else {
                let token = rotated["token"]
                    .as_str()
                    .context("the core sent no token")?;
                println!(
                    "The old token of outpost `{}` no longer works.",
                    cell(&outpost["name"])
                );
                print_run_instructions(
                    api.base(),
                    &cell(&outpost["name"]),
                    &cell(&outpost["kind"]),
                    token,
                );
            }
        }
        OutpostsCommand::Instances { id } => {
            out.list(
                &api.get(&format!("/api/v1/outposts/{id}/instances")).await?,
                INSTANCE_COLUMNS,
            );
        }
    }
    Ok(())
}

/// The token, shown once, and three ways to run the outpost with it.
fn print_run_instructions(url: &str, name: &str, kind: &str, token: &str) {
    let ports = match kind {
        "ldap" => "-p 3389:3389 -p 6636:6636",
        "radius" => "-p 1812:1812/udp -p 1813:1813/udp",
        _ => "-p 9000:9000 -p 9443:9443",
    };
    println!(
        "\nIts token is shown this once; only a hash is kept:\n\n  {token}\n\n\
         Environment:\n  REDOUBT_URL={url}\n  REDOUBT_TOKEN={token}\n\n\
         systemd (units in systemd/ of the Redoubt sources):\n  \
         printf 'REDOUBT_URL={url}\\nREDOUBT_TOKEN={token}\\n' | sudo install -m 0600 /dev/stdin /etc/redoubt/outpost-{name}.env\n  \
         sudo systemctl enable --now redoubt-outpost@{name}\n\n\
         Container:\n  podman run -d --name redoubt-outpost-{name} -e REDOUBT_URL={url} -e REDOUBT_TOKEN={token} \\\n    \
         {ports} -p 9300:9300 ghcr.io/redoubt-id/redoubt:latest redoubt-outpost run\n"
    );
}

async fn tokens(api: &ApiClient, out: Output, command: TokensCommand) -> anyhow::Result<()> {
    match command {
        TokensCommand::List => out.list(&api.get("/api/v1/tokens").await?, TOKEN_COLUMNS),
        TokensCommand::Create {
            description,
            expires_in,
            user,
        } => {
            let body = json!({ "description": description, "expires_in_seconds": expires_in, "user_id": user });
            let created = api.post("/api/v1/tokens", body).await?;
            if out.json {
                out.json(&created);
            } else {
                println!(
                    "Token {} created. Its secret is shown this once:\n\n  {}\n",
                    cell(&created["token"]["id"]),
                    cell(&created["secret"])
                );
            }
        }
        TokensCommand::Delete { id } => {
            api.delete(&format!("/api/v1/tokens/{id}")).await?;
            out.done(&format!("revoked token {id}"));
        }
    }
    Ok(())
}

async fn events(api: &ApiClient, out: Output, command: EventsCommand) -> anyhow::Result<()> {
    let EventsCommand::List {
        action,
        actor,
        target,
        outcome,
        source,
        since,
        until,
        page,
        page_size,
    } = command;
    let mut query = format!("?page={page}&page_size={page_size}");
    for (key, value) in [
        ("action", action),
        ("actor", actor),
        ("target", target),
        ("outcome", outcome),
        ("source_address", source),
        ("since", since),
        ("until", until),
    ] {
        if let Some(value) = value {
            query.push_str(&format!("&{key}={}", encode(&value)));
        }
    }
    out.list(
        &api.get(&format!("/api/v1/events{query}")).await?,
        EVENT_COLUMNS,
    );
    Ok(())
}
