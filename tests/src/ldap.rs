//! Helpers for LDAP tests: a directory set up through the core's API, an LDAP outpost with a
//! test CA's certificate, and runners for OpenLDAP's command-line clients and Python `ldap3`.

use crate::{TestCore, peers_required, start_outpost_with};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The base DN the test directory uses.
pub const BASE: &str = "dc=example,dc=com";

/// A user's DN in the test directory.
pub fn user_dn(name: &str) -> String {
    format!("cn={name},ou=users,{BASE}")
}

/// A group's DN in the test directory.
pub fn group_dn(name: &str) -> String {
    format!("cn={name},ou=groups,{BASE}")
}

/// A CA and a certificate for `localhost`/`127.0.0.1` signed by it, as PEM files.
#[derive(Debug)]
pub struct TestCa {
    pub ca_file: PathBuf,
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

impl TestCa {
    /// Generates the CA and the server certificate into `dir`.
    pub fn generate(dir: &Path) -> Self {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Redoubt test CA");
        let ca = ca_params.self_signed(&ca_key).expect("CA cert");
        let key = KeyPair::generate().expect("server key");
        // libldap checks `ldap://localhost` URLs against the machine's own name, so that
        // name is in the certificate too.
        let mut names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
        names.extend(machine_names());
        let params = CertificateParams::new(names).expect("server params");
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let cert = params.signed_by(&key, &issuer).expect("server cert");
        let write = |name: &str, text: String| {
            let path = dir.join(name);
            std::fs::write(&path, text).expect("write PEM");
            path
        };
        Self {
            ca_file: write("ca.pem", ca.pem()),
            cert_file: write("server.pem", cert.pem()),
            key_file: write("server.key", key.serialize_pem()),
        }
    }
}

/// This machine's host name and fully qualified name, as libldap finds them.
fn machine_names() -> Vec<String> {
    let mut names = Vec::new();
    if let Ok(name) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
        names.push(name.trim().to_owned());
    }
    if let Ok(out) = std::process::Command::new("hostname")
        .arg("--fqdn")
        .output()
        && out.status.success()
    {
        names.push(String::from_utf8_lossy(&out.stdout).trim().to_owned());
    }
    names.retain(|n| !n.is_empty() && n != "localhost");
    names.dedup();
    names
}

/// The test directory in the core and an LDAP outpost serving it.
pub struct LdapSetup {
    pub outpost: redoubt_outpost::RunningOutpost,
    pub ldap: SocketAddr,
    pub ldaps: SocketAddr,
    pub ca: TestCa,
    pub provider_id: i64,
    /// User ids by name.
    pub users: std::collections::BTreeMap<String, i64>,
    /// Group ids by name.
    pub groups: std::collections::BTreeMap<String, i64>,
    pub outpost_token: String,
    pub state: tempfile::TempDir,
}

/// Creates the test directory and starts an LDAP outpost for it:
/// - `alice` (in `ldap-search` and `staff`), `bob` (in `staff`), `carol` (no groups), each with
///   the password `<name>-password`; `extra_users` more users without passwords (`user0001`...);
/// - `staff` nested in `everyone`; `ldap-search` is the provider's search group;
/// - the application is open to everyone (no bound groups).
pub async fn setup(core: &TestCore, extra_users: usize, provider_settings: Value) -> LdapSetup {
    setup_with(core, extra_users, provider_settings, |_| {}).await
}

/// [`setup`] with `tweak` applied to the outpost's settings.
pub async fn setup_with(
    core: &TestCore,
    extra_users: usize,
    provider_settings: Value,
    tweak: impl FnOnce(&mut redoubt_outpost::settings::OutpostSettings),
) -> LdapSetup {
    let mut users = std::collections::BTreeMap::new();
    let mut groups = std::collections::BTreeMap::new();
    for name in ["everyone", "staff", "ldap-search"] {
        groups.insert(name.to_owned(), core.create_group(name).await);
    }
    core.nest_group(groups["staff"], groups["everyone"]).await;
    for (name, full, member_of) in [
        ("alice", "Alice Liddell", vec!["ldap-search", "staff"]),
        ("bob", "Bob Builder", vec!["staff"]),
        ("carol", "Carol", vec![]),
    ] {
        let body = json!({"username": name, "name": full, "email": format!("{name}@example.com"),
                          "password": format!("{name}-password"),
                          "attributes": {"loginShell": "/bin/zsh", "department": "R&D"}});
        let member_of: Vec<i64> = member_of.iter().map(|g| groups[*g]).collect();
        users.insert(name.to_owned(), core.create_member(body, &member_of).await);
    }
    for i in 0..extra_users {
        let name = format!("user{i:04}");
        let id = core.create_member(json!({"username": name}), &[]).await;
        users.insert(name, id);
    }
    let mut settings = json!({"base_dn": BASE, "search_group_id": groups["ldap-search"]});
    if let (Some(target), Value::Object(extra)) = (settings.as_object_mut(), provider_settings) {
        target.extend(extra);
    }
    let (provider_id, token) = core
        .create_served_provider("ldap", "directory", settings)
        .await;
    let state = tempfile::tempdir().expect("state dir");
    let ca = TestCa::generate(state.path());
    let (cert, key) = (ca.cert_file.clone(), ca.key_file.clone());
    let outpost = start_outpost_with(&core.url, &token, state.path(), |s| {
        s.tls.cert_file = cert.display().to_string();
        s.tls.key_file = key.display().to_string();
        tweak(s);
    })
    .await;
    // Every change of the setup applied, so the first bind's verdict can be cached.
    outpost.wait_for_revision(core.revision().await).await;
    let ldap = outpost.listening("ldap").await;
    let ldaps = outpost.listening("ldaps").await;
    LdapSetup {
        outpost,
        ldap,
        ldaps,
        ca,
        provider_id,
        users,
        groups,
        outpost_token: token,
        state,
    }
}

/// What a client program printed and its exit code.
#[derive(Debug)]
pub struct ToolOutput {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl ToolOutput {
    /// The LDAP result code the tool reported: its exit code, or for tools that exit 1 on any
    /// failure (`ldappasswd`), the number in its `Result: <text> (<code>)` line.
    pub fn result_code(&self) -> Option<i32> {
        let printed = self
            .stdout
            .lines()
            .chain(self.stderr.lines())
            .find_map(|line| {
                let rest = line.trim().strip_prefix("Result: ")?;
                let open = rest.rfind('(')?;
                rest[open + 1..].strip_suffix(')')?.parse().ok()
            });
        printed.or(Some(self.code))
    }
}

/// Whether OpenLDAP's clients are installed; when not, says so (or panics under CI).
pub fn ldap_utils_available() -> bool {
    let found = std::process::Command::new("ldapsearch")
        .arg("-VV")
        .output()
        .is_ok();
    if !found {
        assert!(
            !peers_required(),
            "ldapsearch is not installed (apt-get install ldap-utils)"
        );
        eprintln!("SKIPPING: ldap-utils is not installed (apt-get install ldap-utils)");
    }
    found
}

/// Runs an OpenLDAP client (`ldapsearch`, `ldapwhoami`, ...) with `args`, trusting the test CA
/// and demanding a valid certificate whatever a local `ldap.conf` says.
pub async fn ldap_tool(program: &str, args: &[&str], ca_file: &Path) -> ToolOutput {
    let output = tokio::process::Command::new(program)
        .args(args)
        // Environment variables override any local ldap.conf (LDAPNOINIT would also turn
        // these off).
        .env("LDAPTLS_CACERT", ca_file)
        .env("LDAPTLS_REQCERT", "demand")
        .output()
        .await
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    ToolOutput {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// The Debian Python that has the `python3-ldap3` package.
pub const SYSTEM_PYTHON: &str = "/usr/bin/python3";

/// Whether Python `ldap3` is importable by [`SYSTEM_PYTHON`]; when not, says so (or panics
/// under CI).
pub fn python_ldap3_available() -> bool {
    let found = std::process::Command::new(SYSTEM_PYTHON)
        .args(["-c", "import ldap3"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            !peers_required(),
            "Python ldap3 is not installed (apt-get install python3-ldap3)"
        );
        eprintln!("SKIPPING: Python ldap3 is not installed (apt-get install python3-ldap3)");
    }
    found
}

/// The DNs in `ldapsearch -LLL` output.
pub fn dns(ldif: &str) -> Vec<String> {
    ldif.lines()
        .filter_map(|l| l.strip_prefix("dn: "))
        .map(str::to_owned)
        .collect()
}
