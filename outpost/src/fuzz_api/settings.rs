//! Settings validation. The first input byte picks what the rest is: provider settings JSON
//! for one of the five provider kinds (what the core checks on write and outposts read as-is),
//! an outpost settings file (TOML), or `NAME=value` lines (`REDOUBT_*` environment variables,
//! other names are dotted flag keys) layered by `redoubt-settings`.
//!
//! Invariants: no panic, only `Ok` or an error; provider settings that validate keep
//! validating, unchanged, after the core's normalisation (encode with defaults filled in, decode
//! again), since outposts read the stored form; loaded outpost settings validate or say why,
//! and their trusted proxies parse or say why.

use crate::proxy::trusted::TrustedProxies;
use crate::settings::OutpostSettings;
use redoubt_outpost_proto::provider::{
    LdapProviderSettings, OidcProviderSettings, ProxyProviderSettings, RacProviderSettings,
    RadiusProviderSettings, SettingsError,
};
use redoubt_settings::Override;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use std::path::PathBuf;

/// The settings target's fixed state: where a settings file is written for loading.
pub struct SettingsTarget {
    _dir: tempfile::TempDir,
    file: PathBuf,
}

impl Default for SettingsTarget {
    fn default() -> Self {
        let dir = tempfile::tempdir().expect("a temp dir");
        let file = dir.path().join("outpost.toml");
        Self { _dir: dir, file }
    }
}

impl SettingsTarget {
    /// Validates `input` (see the module documentation for its layout).
    pub fn run(&self, input: &[u8]) {
        let Some((&kind, rest)) = input.split_first() else {
            return;
        };
        match kind % 7 {
            0 => provider(rest, LdapProviderSettings::validate),
            1 => provider(rest, RadiusProviderSettings::validate),
            2 => provider(rest, ProxyProviderSettings::validate),
            3 => provider(rest, RacProviderSettings::validate),
            4 => provider(rest, OidcProviderSettings::validate),
            5 => {
                if std::fs::write(&self.file, rest).is_ok() {
                    outpost(Some(&self.file), Vec::new(), Vec::new());
                }
            }
            _ => {
                let (mut env, mut flags) = (Vec::new(), Vec::new());
                for line in String::from_utf8_lossy(rest).lines() {
                    let Some((name, value)) = line.split_once('=') else {
                        continue;
                    };
                    if name.starts_with(redoubt_settings::ENV_PREFIX) {
                        // `*_FILE` variables name files to read: not this target's business.
                        if !name.ends_with("_FILE") {
                            env.push((name.to_owned(), value.to_owned()));
                        }
                    } else {
                        flags.push(Override {
                            key: name.to_owned(),
                            value: value.to_owned(),
                            origin: format!("--{name}"),
                        });
                    }
                }
                outpost(None, env, flags);
            }
        }
    }
}

/// Provider settings of one kind, as the core checks them on write.
fn provider<T>(json: &[u8], validate: fn(&T) -> Result<(), SettingsError>)
where
    T: DeserializeOwned + Serialize + PartialEq + Debug,
{
    let Ok(parsed) = serde_json::from_slice::<T>(json) else {
        return;
    };
    if validate(&parsed).is_err() {
        return;
    }
    let stored = serde_json::to_value(&parsed).expect("valid settings encode");
    let read: T = match serde_json::from_value(stored.clone()) {
        Ok(read) => read,
        Err(error) => panic!("stored settings do not decode ({error}): {stored}"),
    };
    if let Err(error) = validate(&read) {
        panic!("stored settings no longer validate ({error}): {stored}");
    }
    assert_eq!(read, parsed, "settings survive being stored: {stored}");
}

/// Outpost settings layered from `file`, `env` and `flags`, then validated.
fn outpost(file: Option<&std::path::Path>, env: Vec<(String, String)>, flags: Vec<Override>) {
    let Ok(loaded) = redoubt_settings::load::<OutpostSettings>(file, env, flags, &[]) else {
        return;
    };
    let settings = loaded.settings;
    let _ = settings.validate();
    let _ = settings.core_urls();
    let _ = TrustedProxies::parse(&settings.proxy.trusted_proxies);
}
