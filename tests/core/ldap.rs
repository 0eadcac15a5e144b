//! The LDAP outpost against real clients: OpenLDAP's `ldapsearch`, `ldapwhoami`, `ldappasswd`,
//! `ldapcompare`, `ldapdelete` and Python `ldap3`, with the outpost started in-process.

use redoubt_core::auth::totp;
use redoubt_core::clock::Clock;
use redoubt_tests::ldap::{
    BASE, LdapSetup, SYSTEM_PYTHON, dns, group_dn, ldap_tool, ldap_utils_available,
    python_ldap3_available, setup, user_dn,
};
use redoubt_tests::{TestCore, promtool_check};
use serde_json::{Value, json};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn url(s: &LdapSetup) -> String {
    format!("ldap://{}", s.ldap)
}

async fn whoami(s: &LdapSetup, dn: &str, password: &str) -> redoubt_tests::ldap::ToolOutput {
    ldap_tool(
        "ldapwhoami",
        &["-x", "-H", &url(s), "-D", dn, "-w", password],
        &s.ca.ca_file,
    )
    .await
}

/// Runs `program` bound as `who` (with `<who>-password`) against the plain LDAP port, with
/// `args` after the bind options.
async fn tool_as(
    s: &LdapSetup,
    program: &str,
    who: &str,
    args: &[&str],
) -> redoubt_tests::ldap::ToolOutput {
    let (url, dn, password) = (url(s), user_dn(who), format!("{who}-password"));
    let mut all = vec!["-x", "-H", &url, "-D", &dn, "-w", &password];
    all.extend_from_slice(args);
    ldap_tool(program, &all, &s.ca.ca_file).await
}

/// `ldapsearch -LLL` bound as `who`, returning the LDIF (panics on a non-zero exit).
async fn search(s: &LdapSetup, who: &str, base: &str, filter: &str, attrs: &[&str]) -> String {
    let dn = user_dn(who);
    let password = format!("{who}-password");
    let url = url(s);
    let mut args = vec![
        "-x", "-LLL", "-H", &url, "-D", &dn, "-w", &password, "-b", base, filter,
    ];
    args.extend_from_slice(attrs);
    let out = ldap_tool("ldapsearch", &args, &s.ca.ca_file).await;
    assert_eq!(
        out.code, 0,
        "ldapsearch {filter}: {}{}",
        out.stdout, out.stderr
    );
    out.stdout
}

#[tokio::test]
async fn binds_by_dn_and_name_and_failures_look_the_same() {
    if !ldap_utils_available() {
        return;
    }
    let core = TestCore::start().await;
    let s = setup(&core, 0, json!({})).await;
    let ok = whoami(&s, &user_dn("alice"), "alice-password").await;
    assert_eq!(ok.code, 0, "{ok:?}");
    assert_eq!(ok.stdout.trim(), format!("dn:{}", user_dn("alice")));
    let upper = whoami(&s, "CN=Alice,OU=Users,DC=Example,DC=Com", "alice-password").await;
    assert_eq!(upper.code, 0, "DN matching ignores case: {upper:?}");
    let by_uid = whoami(&s, &format!("uid=bob,ou=users,{BASE}"), "bob-password").await;
    assert_eq!(by_uid.stdout.trim(), format!("dn:{}", user_dn("bob")));
    let bare = whoami(&s, "carol", "carol-password").await;
    assert_eq!(bare.stdout.trim(), format!("dn:{}", user_dn("carol")));

    let wrong = whoami(&s, &user_dn("alice"), "not-her-password").await;
    let unknown = whoami(&s, &user_dn("mallory"), "whatever-password").await;
    assert_eq!(wrong.code, 49, "{wrong:?}");
    assert_eq!(unknown.code, 49, "{unknown:?}");
    assert_eq!(
        wrong.stderr, unknown.stderr,
        "no difference between unknown user and wrong password"
    );
    let outside = whoami(&s, "cn=alice,ou=users,dc=elsewhere", "alice-password").await;
    assert_eq!(outside.code, 49);

    // Anonymous: the root DSE only.
    let root = ldap_tool(
        "ldapsearch",
        &["-x", "-LLL", "-H", &url(&s), "-b", "", "-s", "base", "+"],
        &s.ca.ca_file,
    )
    .await;
    assert_eq!(root.code, 0, "{root:?}");
    for expected in [
        &format!("namingContexts: {BASE}") as &str,
        "supportedControl: 1.2.840.113556.1.4.319",
        "supportedExtension: 1.3.6.1.4.1.1466.20037",
        "supportedExtension: 1.3.6.1.4.1.4203.1.11.3",
        "supportedExtension: 1.3.6.1.4.1.4203.1.11.1",
        "supportedLDAPVersion: 3",
    ] {
        assert!(
            root.stdout.contains(expected),
            "{expected} in {}",
            root.stdout
        );
    }
    let anonymous = ldap_tool(
        "ldapsearch",
        &["-x", "-LLL", "-H", &url(&s), "-b", BASE, "(uid=alice)"],
        &s.ca.ca_file,
    )
    .await;
    assert_eq!(
        anonymous.code, 50,
        "anonymous users read only the root DSE: {anonymous:?}"
    );

    // Events in the core carry the client's address.
    let events = core
        .api
        .get("/api/v1/events?action=credential_check")
        .await
        .expect(200);
    let text = events.to_string();
    assert!(text.contains("127.0.0.1"), "{text}");
    s.outpost.stop().await;
}

#[tokio::test]
async fn entries_filters_scopes_and_access() {
    if !ldap_utils_available() {
        return;
    }
    let core = TestCore::start().await;
    let s = setup(&core, 0, json!({})).await;
    let bob = search(&s, "alice", BASE, "(uid=bob)", &[]).await;
    assert_eq!(dns(&bob), vec![user_dn("bob")]);
    let uid_number = 2000 + s.users["bob"];
    for line in [
        "objectClass: inetOrgPerson",
        "objectClass: posixAccount",
        "objectClass: user",
        "cn: bob",
        "uid: bob",
        "sAMAccountName: bob",
        "displayName: Bob Builder",
        "givenName: Bob",
        "sn: Builder",
        "mail: bob@example.com",
        &format!("memberOf: {}", group_dn("staff")),
        &format!("uidNumber: {uid_number}"),
        &format!("gidNumber: {uid_number}"),
        "homeDirectory: /home/bob",
        "loginShell: /bin/zsh",
        "department: R&D",
    ] {
        assert!(bob.contains(line), "{line} in\n{bob}");
    }
    assert!(bob.contains("entryUUID: "), "{bob}");
    assert!(
        !bob.contains("entryDN"),
        "operational attributes only on request"
    );
    let operational = search(&s, "alice", &user_dn("bob"), "(objectClass=*)", &["+"]).await;
    for attr in [
        "entryDN: ",
        "createTimestamp: ",
        "modifyTimestamp: ",
        "hasSubordinates: FALSE",
    ] {
        assert!(operational.contains(attr), "{attr} in {operational}");
    }
    let none = search(&s, "alice", &user_dn("bob"), "(objectClass=*)", &["1.1"]).await;
    assert_eq!(none.trim(), format!("dn: {}", user_dn("bob")));
    let staff = search(&s, "alice", &group_dn("staff"), "(objectClass=*)", &[]).await;
    for line in [
        "objectClass: groupOfNames",
        "objectClass: groupOfUniqueNames",
        "objectClass: posixGroup",
        &format!("member: {}", user_dn("alice")),
        &format!("uniqueMember: {}", user_dn("bob")),
        "memberUid: alice",
        &format!("gidNumber: {}", 4000 + s.groups["staff"]),
        &format!("memberOf: {}", group_dn("everyone")),
    ] {
        assert!(staff.contains(line), "{line} in\n{staff}");
    }

    // Scopes.
    let one = search(&s, "alice", BASE, "(objectClass=*)", &["1.1"]).await;
    assert!(dns(&one).contains(&format!("ou=users,{BASE}")));
    let one_level = ldap_tool(
        "ldapsearch",
        &[
            "-x",
            "-LLL",
            "-H",
            &url(&s),
            "-D",
            &user_dn("alice"),
            "-w",
            "alice-password",
            "-b",
            BASE,
            "-s",
            "one",
            "(objectClass=*)",
            "1.1",
        ],
        &s.ca.ca_file,
    )
    .await;
    assert_eq!(
        dns(&one_level.stdout),
        vec![format!("ou=users,{BASE}"), format!("ou=groups,{BASE}")]
    );
    let base_scope = ldap_tool(
        "ldapsearch",
        &[
            "-x",
            "-LLL",
            "-H",
            &url(&s),
            "-D",
            &user_dn("alice"),
            "-w",
            "alice-password",
            "-b",
            BASE,
            "-s",
            "base",
            "(objectClass=*)",
        ],
        &s.ca.ca_file,
    )
    .await;
    assert!(base_scope.stdout.contains("dc: example"), "{base_scope:?}");
    let missing = ldap_tool(
        "ldapsearch",
        &[
            "-x",
            "-LLL",
            "-H",
            &url(&s),
            "-D",
            &user_dn("alice"),
            "-w",
            "alice-password",
            "-b",
            &user_dn("nobody"),
            "(objectClass=*)",
        ],
        &s.ca.ca_file,
    )
    .await;
    assert_eq!(missing.code, 32, "noSuchObject: {missing:?}");

    // Filters applications send.
    let everyone_chain = format!(
        "(memberOf:1.2.840.113556.1.4.1941:={})",
        group_dn("everyone")
    );
    let cases: Vec<(String, Vec<String>)> = vec![
        // SSSD
        ("(&(uid=alice)(objectclass=posixAccount)(uid=*)(&(uidNumber=*)(!(uidNumber=0))))".into(), vec![user_dn("alice")]),
        ("(&(memberuid=bob)(objectclass=posixGroup)(cn=*)(&(gidNumber=*)(!(gidNumber=0))))".into(), vec![group_dn("staff")]),
        // Nextcloud
        ("(&(|(objectclass=inetOrgPerson))(|(uid=carol)(mail=carol)))".into(), vec![user_dn("carol")]),
        ("(&(objectclass=inetOrgPerson)(memberOf=cn=ldap-search,ou=groups,dc=example,dc=com))".into(), vec![user_dn("alice")]),
        // Gitea
        ("(&(objectClass=user)(|(uid=bob@example.com)(mail=bob@example.com)))".into(), vec![user_dn("bob")]),
        // Grafana
        ("(cn=carol)".into(), vec![user_dn("carol")]),
        ("(&(objectClass=posixGroup)(memberUid=alice))".into(), vec![group_dn("staff"), group_dn("ldap-search")]),
        // Nested groups, substrings, ordering, AD bits, negation.
        // In chain, as Active Directory answers it: nested groups match too.
        (everyone_chain, vec![user_dn("alice"), user_dn("bob"), group_dn("staff")]),
        ("(&(objectClass=person)(cn=al*))".into(), vec![user_dn("alice")]),
        ("(&(objectClass=person)(displayName=*Build*))".into(), vec![user_dn("bob")]),
        (format!("(&(objectClass=person)(uidNumber>={}))", 2000 + s.users["carol"]), vec![user_dn("carol")]),
        ("(&(objectClass=user)(!(userAccountControl:1.2.840.113556.1.4.803:=2))(sAMAccountName=carol))".into(), vec![user_dn("carol")]),
        ("(&(objectClass=groupOfNames)(!(cn=staff))(!(cn=ldap-search))(!(cn=admins)))".into(), vec![group_dn("everyone")]),
        ("(|(uid=alice)(uid=bob)(uid=nobody))".into(), vec![user_dn("alice"), user_dn("bob")]),
    ];
    for (filter, mut expected) in cases {
        let mut found = dns(&search(&s, "alice", BASE, &filter, &["1.1"]).await);
        found.sort();
        expected.sort();
        assert_eq!(found, expected, "{filter}");
    }

    // Outside the search group: itself and its groups only.
    let mut seen = dns(&search(
        &s,
        "bob",
        BASE,
        "(|(objectClass=person)(objectClass=groupOfNames))",
        &["1.1"],
    )
    .await);
    seen.sort();
    let mut expected = vec![user_dn("bob"), group_dn("staff"), group_dn("everyone")];
    expected.sort();
    assert_eq!(seen, expected);

    // Compare, read-only writes, and a filter too large to evaluate.
    let compare = tool_as(
        &s,
        "ldapcompare",
        "alice",
        &[&user_dn("bob"), "mail:BOB@example.com"],
    )
    .await;
    assert_eq!(compare.code, 6, "compareTrue: {compare:?}");
    let compare = tool_as(
        &s,
        "ldapcompare",
        "alice",
        &[&user_dn("bob"), "mail:eve@example.com"],
    )
    .await;
    assert_eq!(compare.code, 5, "compareFalse: {compare:?}");
    let delete = tool_as(&s, "ldapdelete", "alice", &[&user_dn("bob")]).await;
    assert_eq!(delete.code, 53, "unwillingToPerform: {delete:?}");
    assert!(delete.stderr.contains("read-only"), "{delete:?}");
    let huge = format!(
        "(|{})",
        (0..1500).map(|i| format!("(uid=u{i})")).collect::<String>()
    );
    let refused = ldap_tool(
        "ldapsearch",
        &[
            "-x",
            "-LLL",
            "-H",
            &url(&s),
            "-D",
            &user_dn("alice"),
            "-w",
            "alice-password",
            "-b",
            BASE,
            &huge,
        ],
        &s.ca.ca_file,
    )
    .await;
    assert_eq!(refused.code, 11, "adminLimitExceeded: {refused:?}");
    s.outpost.stop().await;
}

#[tokio::test]
async fn paged_results_walk_more_entries_than_a_page() {
    if !ldap_utils_available() {
        return;
    }
    let core = TestCore::start().await;
    let s = setup(&core, 250, json!({})).await;
    let out = ldap_tool(
        "ldapsearch",
        &[
            "-x",
            "-LLL",
            "-H",
            &url(&s),
            "-D",
            &user_dn("alice"),
            "-w",
            "alice-password",
            "-b",
            &format!("ou=users,{BASE}"),
            "-E",
            "pr=100/noprompt",
            "(objectClass=person)",
            "uid",
        ],
        &s.ca.ca_file,
    )
    .await;
    assert_eq!(out.code, 0, "{out:?}");
    let mut found = dns(&out.stdout);
    // 250 extra users, alice, bob, carol and the bootstrap administrator.
    assert_eq!(found.len(), 254, "every user exactly once");
    found.sort();
    found.dedup();
    assert_eq!(found.len(), 254);
    let cookies = out.stdout.matches("pagedresults: cookie=").count();
    assert!(cookies >= 3, "three pages at least: {cookies}");
    // A size limit without paging.
    let limited = ldap_tool(
        "ldapsearch",
        &[
            "-x",
            "-LLL",
            "-H",
            &url(&s),
            "-D",
            &user_dn("alice"),
            "-w",
            "alice-password",
            "-b",
            BASE,
            "-z",
            "10",
            "(objectClass=person)",
            "1.1",
        ],
        &s.ca.ca_file,
    )
    .await;
    assert_eq!(limited.code, 4, "sizeLimitExceeded: {limited:?}");
    assert_eq!(dns(&limited.stdout).len(), 10);
    s.outpost.stop().await;
}

#[tokio::test]
async fn starttls_ldaps_and_tls_required_binds() {
    if !ldap_utils_available() {
        return;
    }
    let core = TestCore::start().await;
    let s = setup(&core, 0, json!({"require_tls_for_bind": true})).await;
    let plain = whoami(&s, &user_dn("alice"), "alice-password").await;
    assert_eq!(plain.code, 13, "confidentialityRequired: {plain:?}");
    let starttls = ldap_tool(
        "ldapwhoami",
        &[
            "-x",
            "-ZZ",
            "-H",
            &format!("ldap://localhost:{}", s.ldap.port()),
            "-D",
            &user_dn("alice"),
            "-w",
            "alice-password",
        ],
        &s.ca.ca_file,
    )
    .await;
    assert_eq!(starttls.code, 0, "{starttls:?}");
    assert_eq!(starttls.stdout.trim(), format!("dn:{}", user_dn("alice")));
    let ldaps = ldap_tool(
        "ldapwhoami",
        &[
            "-x",
            "-H",
            &format!("ldaps://localhost:{}", s.ldaps.port()),
            "-D",
            &user_dn("bob"),
            "-w",
            "bob-password",
        ],
        &s.ca.ca_file,
    )
    .await;
    assert_eq!(ldaps.code, 0, "{ldaps:?}");
    // A client that does not trust the CA refuses the certificate.
    let untrusted = tokio::process::Command::new("ldapwhoami")
        .args([
            "-x",
            "-H",
            &format!("ldaps://localhost:{}", s.ldaps.port()),
            "-D",
            &user_dn("bob"),
            "-w",
            "bob-password",
        ])
        .env("LDAPNOINIT", "1")
        .env("LDAPTLS_REQCERT", "demand")
        .env("LDAPTLS_CACERT", "/dev/null")
        .output()
        .await
        .expect("ldapwhoami");
    assert!(!untrusted.status.success());
    s.outpost.stop().await;
}

#[tokio::test]
async fn mfa_password_modify_and_changes_from_the_core_apply_at_once() {
    if !ldap_utils_available() {
        return;
    }
    let core = TestCore::start().await;
    let s = setup(&core, 0, json!({})).await;
    // TOTP: `password;123456`.
    let enrolled = core
        .api
        .post(
            &format!("/api/v1/users/{}/totp", s.users["carol"]),
            json!({"name": "phone"}),
        )
        .await
        .expect(201);
    let secret = data_encoding::BASE32_NOPAD
        .decode(enrolled["secret"].as_str().expect("secret").as_bytes())
        .expect("base32");
    let code = totp::hotp(
        &secret,
        u64::try_from(totp::step_at(core.clock.now())).expect("step"),
    );
    let without = whoami(&s, &user_dn("carol"), "carol-password").await;
    assert_eq!(without.code, 49, "a TOTP user needs a code: {without:?}");
    let with = whoami(&s, &user_dn("carol"), &format!("carol-password;{code}")).await;
    assert_eq!(with.code, 0, "{with:?}");
    let replayed = whoami(&s, &user_dn("carol"), &format!("carol-password;{code}")).await;
    assert_eq!(
        replayed.code, 49,
        "codes are single-use, never cached: {replayed:?}"
    );

    // Password Modify (RFC 3062).
    let warm = whoami(&s, &user_dn("bob"), "bob-password").await;
    assert_eq!(warm.code, 0);
    let short = tool_as(
        &s,
        "ldappasswd",
        "bob",
        &["-a", "bob-password", "-s", "short"],
    )
    .await;
    assert_eq!(
        short.result_code(),
        Some(19),
        "constraintViolation: {short:?}"
    );
    assert!(
        format!("{}{}", short.stdout, short.stderr).contains("at least"),
        "{short:?}"
    );
    let wrong_old = ldap_tool(
        "ldappasswd",
        &[
            "-x",
            "-H",
            &url(&s),
            "-a",
            "not-bobs",
            "-s",
            "bob-new-password",
            &user_dn("bob"),
        ],
        &s.ca.ca_file,
    )
    .await;
    assert_eq!(wrong_old.result_code(), Some(49), "{wrong_old:?}");
    let changed = tool_as(
        &s,
        "ldappasswd",
        "bob",
        &["-a", "bob-password", "-s", "bob-new-password"],
    )
    .await;
    assert_eq!(changed.code, 0, "{changed:?}");
    let old = whoami(&s, &user_dn("bob"), "bob-password").await;
    assert_eq!(
        old.code, 49,
        "the old password stops working at once: {old:?}"
    );
    assert_eq!(
        whoami(&s, &user_dn("bob"), "bob-new-password").await.code,
        0
    );

    // A password set in the core, then a disabled user: each fails on the next bind once the
    // change has reached the outpost (the core pushes it within milliseconds).
    assert_eq!(
        whoami(&s, &user_dn("alice"), "alice-password").await.code,
        0
    );
    core.api
        .put(
            &format!("/api/v1/users/{}/password", s.users["alice"]),
            json!({"password": "alice-rotated-password"}),
        )
        .await
        .expect(204);
    let revision = core.revision().await;
    tokio::time::timeout(
        Duration::from_secs(1),
        s.outpost.wait_for_revision(revision),
    )
    .await
    .expect("the change arrives within a second");
    assert_eq!(
        whoami(&s, &user_dn("alice"), "alice-password").await.code,
        49
    );
    assert_eq!(
        whoami(&s, &user_dn("alice"), "alice-rotated-password")
            .await
            .code,
        0
    );
    core.api
        .patch(
            &format!("/api/v1/users/{}", s.users["alice"]),
            json!({"is_active": false}),
        )
        .await
        .expect(200);
    let revision = core.revision().await;
    tokio::time::timeout(
        Duration::from_secs(1),
        s.outpost.wait_for_revision(revision),
    )
    .await
    .expect("the change arrives within a second");
    assert_eq!(
        whoami(&s, &user_dn("alice"), "alice-rotated-password")
            .await
            .code,
        49
    );
    s.outpost.stop().await;
}

#[tokio::test]
async fn keeps_serving_with_the_core_stopped() {
    if !ldap_utils_available() {
        return;
    }
    let mut core = TestCore::start().await;
    let s = setup(&core, 0, json!({})).await;
    assert_eq!(
        whoami(&s, &user_dn("alice"), "alice-password").await.code,
        0
    );
    core.stop().await;
    s.outpost.wait_connected(false).await;
    for _ in 0..3 {
        let warm = whoami(&s, &user_dn("alice"), "alice-password").await;
        assert_eq!(
            warm.code, 0,
            "a cached bind works without the core: {warm:?}"
        );
    }
    let found = search(&s, "alice", BASE, "(uid=bob)", &["mail"]).await;
    assert!(found.contains("mail: bob@example.com"), "{found}");
    let wrong = whoami(&s, &user_dn("alice"), "not-her-password").await;
    assert_ne!(wrong.code, 0, "a wrong password never passes: {wrong:?}");
    let cold = whoami(&s, &user_dn("bob"), "bob-password").await;
    assert_eq!(
        cold.code, 52,
        "unavailable, not invalid, when the core cannot check: {cold:?}"
    );
    let metrics = reqwest::get(format!("http://{}/metrics", s.outpost.metrics_addr))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("body");
    assert!(
        metrics.contains("redoubt_ldap_bind_cache_total{result=\"hit\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("redoubt_ldap_requests_total{op=\"bind\",result=\"success\"}"));
    assert!(metrics.contains("redoubt_ldap_request_duration_seconds_bucket"));
    promtool_check(&metrics);
    s.outpost.stop().await;
}

#[tokio::test]
async fn garbage_and_oversized_input_close_only_that_connection() {
    if !ldap_utils_available() {
        return;
    }
    let core = TestCore::start().await;
    let s = setup(&core, 0, json!({})).await;
    let inputs: Vec<Vec<u8>> = vec![
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        vec![0x30, 0x84, 0x7f, 0xff, 0xff, 0xff], // a 2 GiB message header
        vec![0x30, 0x03, 0x02, 0x01],             // truncated
        std::iter::repeat_n(0x30u8, 64).chain([0x80]).collect(), // deep nesting
        vec![0xff; 4096],
    ];
    for bytes in inputs {
        let mut stream = tokio::net::TcpStream::connect(s.ldap)
            .await
            .expect("connect");
        let _ = stream.write_all(&bytes).await;
        let _ = stream.shutdown().await;
        let mut rest = Vec::new();
        let read =
            tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut rest)).await;
        assert!(read.is_ok(), "the server closes, never hangs: {bytes:?}");
    }
    // An oversized but well-formed message.
    let mut stream = tokio::net::TcpStream::connect(s.ldap)
        .await
        .expect("connect");
    let mut big = vec![0x30, 0x83, 0x10, 0x00, 0x00];
    big.extend(std::iter::repeat_n(0u8, 0x10_0000));
    let _ = stream.write_all(&big).await;
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut rest)).await;
    assert!(read.is_ok(), "an oversized message closes the connection");
    assert_eq!(
        whoami(&s, &user_dn("alice"), "alice-password").await.code,
        0,
        "others are unaffected"
    );
    s.outpost.stop().await;
}

#[tokio::test]
async fn python_ldap3_reads_schema_pages_and_changes_passwords() {
    if !python_ldap3_available() {
        return;
    }
    let core = TestCore::start().await;
    let s = setup(&core, 120, json!({})).await;
    let script = r#"
import json, os, ssl, sys
from ldap3 import Server, Connection, Tls, ALL, SUBTREE
host, port, ca = os.environ["HOST"], int(os.environ["PORT"]), os.environ["CA"]
base = os.environ["BASE"]
tls = Tls(ca_certs_file=ca, validate=ssl.CERT_REQUIRED)
server = Server(host, port=port, get_info=ALL, tls=tls)
out = {}
conn = Connection(server, user="cn=alice,ou=users," + base, password="alice-password")
conn.open()
out["naming_contexts"] = list(server.info.naming_contexts)
out["schema_has_uidnumber"] = server.schema is not None and "uidNumber" in server.schema.attribute_types
out["starttls"] = conn.start_tls()
out["bind"] = conn.bind()
out["whoami"] = conn.extend.standard.who_am_i()
entries = conn.extend.standard.paged_search(base, "(objectClass=person)", SUBTREE, attributes=["uid", "memberOf"], paged_size=50, generator=False)
out["paged"] = len([e for e in entries if e.get("type") == "searchResEntry"])
conn.search(base, "(uid=bob)", attributes=["*"])
out["bob_mail"] = str(conn.entries[0].mail) if conn.entries else None
out["modify"] = conn.extend.standard.modify_password(user="cn=alice,ou=users," + base, old_password="alice-password", new_password="alice-python-password")
conn.unbind()
again = Connection(server, user="cn=alice,ou=users," + base, password="alice-python-password")
out["new_password_binds"] = again.bind()
print(json.dumps(out))
"#;
    let output = tokio::process::Command::new(SYSTEM_PYTHON)
        .args(["-c", script])
        .env("HOST", "localhost")
        .env("PORT", s.ldap.port().to_string())
        .env("CA", &s.ca.ca_file)
        .env("BASE", BASE)
        .output()
        .await
        .expect("python");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let result: Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(result["naming_contexts"], json!([BASE]));
    assert_eq!(result["schema_has_uidnumber"], json!(true));
    assert_eq!(result["starttls"], json!(true));
    assert_eq!(result["bind"], json!(true));
    assert_eq!(result["whoami"], json!(format!("dn:{}", user_dn("alice"))));
    assert_eq!(
        result["paged"],
        json!(124),
        "120 extra users, alice, bob, carol, admin"
    );
    assert_eq!(result["bob_mail"], json!("bob@example.com"));
    assert_eq!(result["modify"], json!(true));
    assert_eq!(result["new_password_binds"], json!(true));
    s.outpost.stop().await;
}
