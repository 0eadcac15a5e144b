//! Layered configuration: built-in defaults, then an optional TOML file, then `REDOUBT_`
//! environment variables (`__` separates nesting levels, a `_FILE` suffix reads the value from a
//! file), then command-line flags. Unknown `REDOUBT_` variables are warned about, unless one is a
//! near-miss of a known setting (edit distance, e.g. `REDOUBT_LISTEN__HTPP`), which is an error
//! naming the setting meant; an unknown key in the file is an error, since it is most likely a
//! typo. [`checks`] holds the value checks both binaries run after loading.
//!
//! Values from the environment and flags are strings; each is given the type its default has
//! (number, boolean, list), so `REDOUBT_LOCKOUT__WINDOW_SECONDS=soon` is refused with a message
//! naming the variable.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::path::{Path, PathBuf};

pub mod checks;

/// The environment prefix of every setting.
pub const ENV_PREFIX: &str = "REDOUBT_";

/// Why configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    ReadFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid TOML: {message}")]
    ParseFile { path: PathBuf, message: String },
    #[error("cannot read {variable} from {path}: {source}")]
    ReadSecretFile {
        variable: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{origin} sets `{key}` to `{value}`, which is not a {expected}")]
    BadValue {
        origin: String,
        key: String,
        value: String,
        expected: &'static str,
    },
    #[error("invalid configuration: {0}")]
    Invalid(String),
    #[error("{variable} is not a setting: did you mean {suggestion}? Rename it or remove it")]
    NearMiss {
        variable: String,
        suggestion: String,
    },
}

/// Where a layered value comes from; used in messages.
#[derive(Debug, Clone)]
pub struct Override {
    /// Dotted path, e.g. `listen.http`.
    pub key: String,
    pub value: String,
    /// `REDOUBT_LISTEN__HTTP` or `--listen-http`, for error messages.
    pub origin: String,
}

/// The outcome of loading: the settings and warnings to log once logging is up.
#[derive(Debug)]
pub struct Loaded<T> {
    pub settings: T,
    pub warnings: Vec<String>,
}

/// Loads `T` from its defaults, `file`, the `REDOUBT_` variables in `env` and `flags`.
/// `also_known` lists variable names (without prefix, lowercase) that other parts of the program
/// read, so they are not warned about.
pub fn load<T>(
    file: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
    flags: Vec<Override>,
    also_known: &[&str],
) -> Result<Loaded<T>, ConfigError>
where
    T: Serialize + DeserializeOwned + Default,
{
    let defaults =
        serde_json::to_value(T::default()).map_err(|e| ConfigError::Invalid(e.to_string()))?;
    let mut merged = defaults.clone();
    let mut warnings = Vec::new();
    if let Some(path) = file {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::ReadFile {
            path: path.to_owned(),
            source,
        })?;
        let table: Value = toml::from_str(&text).map_err(|e| ConfigError::ParseFile {
            path: path.to_owned(),
            message: e.message().to_owned(),
        })?;
        merge(&mut merged, table);
    }
    let mut env_overrides = Vec::new();
    let mut env: Vec<(String, String)> = env.into_iter().collect();
    env.sort();
    for (name, value) in env {
        let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        let key = rest.to_lowercase().replace("__", ".");
        if lookup(&defaults, &key).is_some() {
            env_overrides.push(Override {
                key,
                value,
                origin: name,
            });
        } else if let Some(base) = key
            .strip_suffix("_file")
            .filter(|b| lookup(&defaults, b).is_some())
        {
            let path = PathBuf::from(&value);
            let secret =
                std::fs::read_to_string(&path).map_err(|source| ConfigError::ReadSecretFile {
                    variable: name.clone(),
                    path,
                    source,
                })?;
            env_overrides.push(Override {
                key: base.to_owned(),
                value: secret.trim_end_matches(['\n', '\r']).to_owned(),
                origin: name,
            });
        } else if !also_known.contains(&key.as_str())
            && !also_known.contains(&key.trim_end_matches("_file"))
        {
            let mut known = Vec::new();
            leaf_keys(&defaults, String::new(), &mut known);
            known.extend(also_known.iter().map(|k| (*k).to_owned()));
            if let Some(meant) = checks::near_miss(&key, known.iter().map(String::as_str)) {
                return Err(ConfigError::NearMiss {
                    variable: name,
                    suggestion: format!("{ENV_PREFIX}{}", meant.to_uppercase().replace('.', "__")),
                });
            }
            warnings.push(format!("ignoring unknown environment variable {name}"));
        }
    }
    for o in env_overrides.into_iter().chain(flags) {
        let typed = coerce(&defaults, &o)?;
        set(&mut merged, &o.key, typed);
    }
    let settings =
        serde_json::from_value(merged).map_err(|e| ConfigError::Invalid(e.to_string()))?;
    Ok(Loaded { settings, warnings })
}

/// The dotted paths of every setting that is not a table.
fn leaf_keys(value: &Value, prefix: String, out: &mut Vec<String>) {
    match value.as_object() {
        Some(map) => {
            for (k, v) in map {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                leaf_keys(v, path, out);
            }
        }
        None => out.push(prefix),
    }
}

fn lookup<'a>(value: &'a Value, dotted: &str) -> Option<&'a Value> {
    dotted
        .split('.')
        .try_fold(value, |v, part| v.as_object()?.get(part))
}

fn set(value: &mut Value, dotted: &str, new: Value) {
    let mut current = value;
    let parts: Vec<&str> = dotted.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        let Some(map) = current.as_object_mut() else {
            return;
        };
        if i + 1 == parts.len() {
            map.insert((*part).to_owned(), new);
            return;
        }
        current = map
            .entry((*part).to_owned())
            .or_insert_with(|| Value::Object(Default::default()));
    }
}

fn merge(base: &mut Value, overlay: Value) {
    match (base, overlay) {
        (Value::Object(base), Value::Object(overlay)) => {
            for (k, v) in overlay {
                match base.get_mut(&k) {
                    Some(existing) => merge(existing, v),
                    None => {
                        base.insert(k, v);
                    }
                }
            }
        }
        (base, overlay) => *base = overlay,
    }
}

/// Gives a string value the type its default has.
fn coerce(defaults: &Value, o: &Override) -> Result<Value, ConfigError> {
    let bad = |expected| ConfigError::BadValue {
        origin: o.origin.clone(),
        key: o.key.clone(),
        value: o.value.clone(),
        expected,
    };
    Ok(match lookup(defaults, &o.key) {
        Some(Value::Bool(_)) => match o.value.to_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => Value::Bool(true),
            "0" | "false" | "no" | "off" | "" => Value::Bool(false),
            _ => return Err(bad("boolean (true or false)")),
        },
        Some(Value::Number(_)) => {
            if let Ok(n) = o.value.trim().parse::<i64>() {
                Value::from(n)
            } else if let Ok(n) = o.value.trim().parse::<f64>() {
                Value::from(n)
            } else {
                return Err(bad("number"));
            }
        }
        Some(Value::Array(_)) => Value::Array(
            o.value
                .split(',')
                .map(|s| Value::String(s.trim().to_owned()))
                .collect(),
        ),
        _ => Value::String(o.value.clone()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Serialize, Deserialize)]
    #[serde(default, deny_unknown_fields)]
    struct Sample {
        log_level: String,
        secret_key: String,
        listen: Listen,
        lockout: Lockout,
    }

    #[derive(Debug, Serialize, Deserialize)]
    #[serde(default, deny_unknown_fields)]
    struct Listen {
        http: String,
        metrics: String,
    }

    #[derive(Debug, Default, Serialize, Deserialize)]
    #[serde(default, deny_unknown_fields)]
    struct Lockout {
        window_seconds: i64,
        max_failures_per_user: i64,
    }

    impl Default for Sample {
        fn default() -> Self {
            Self {
                log_level: "info".into(),
                secret_key: String::new(),
                listen: Listen::default(),
                lockout: Lockout::default(),
            }
        }
    }

    impl Default for Listen {
        fn default() -> Self {
            Self {
                http: "0.0.0.0:9000".into(),
                metrics: "0.0.0.0:9300".into(),
            }
        }
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn layers_apply_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("core.toml");
        std::fs::write(
            &file,
            "log_level = \"debug\"\n[listen]\nhttp = \"127.0.0.1:1\"\n",
        )
        .expect("write");
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "s3cret\n").expect("write");
        let loaded: Loaded<Sample> = load(
            Some(&file),
            env(&[
                ("REDOUBT_LISTEN__HTTP", "127.0.0.1:2"),
                ("REDOUBT_LOCKOUT__MAX_FAILURES_PER_USER", "9"),
                ("REDOUBT_SECRET_KEY_FILE", secret.to_str().expect("utf-8")),
                ("REDOUBT_NOPE", "x"),
                ("REDOUBT_URL", "http://core"),
                ("PATH", "/bin"),
            ]),
            vec![Override {
                key: "listen.metrics".into(),
                value: "127.0.0.1:3".into(),
                origin: "--listen-metrics".into(),
            }],
            &["url"],
        )
        .expect("load");
        let s = loaded.settings;
        assert_eq!(s.log_level, "debug");
        assert_eq!(s.listen.http, "127.0.0.1:2");
        assert_eq!(s.listen.metrics, "127.0.0.1:3");
        assert_eq!(s.lockout.max_failures_per_user, 9);
        assert_eq!(s.secret_key, "s3cret");
        assert_eq!(
            loaded.warnings,
            vec!["ignoring unknown environment variable REDOUBT_NOPE"]
        );
    }

    #[test]
    fn bad_values_name_their_origin() {
        let err = load::<Sample>(
            None,
            env(&[("REDOUBT_LOCKOUT__WINDOW_SECONDS", "soon")]),
            vec![],
            &[],
        )
        .expect_err("must fail");
        assert_eq!(
            err.to_string(),
            "REDOUBT_LOCKOUT__WINDOW_SECONDS sets `lockout.window_seconds` to `soon`, which is not a number"
        );
    }

    #[test]
    fn near_misses_of_known_variables_are_errors() {
        let err = load::<Sample>(None, env(&[("REDOUBT_LISTEN__HTPP", "x")]), vec![], &[])
            .expect_err("must fail");
        assert_eq!(
            err.to_string(),
            "REDOUBT_LISTEN__HTPP is not a setting: did you mean REDOUBT_LISTEN__HTTP? Rename it or remove it"
        );
        let err = load::<Sample>(None, env(&[("REDOUBT_UTL", "x")]), vec![], &["url"])
            .expect_err("must fail");
        assert!(
            err.to_string().contains("did you mean REDOUBT_URL?"),
            "{err}"
        );
        let loaded = load::<Sample>(None, env(&[("REDOUBT_SOMETHING_ELSE", "x")]), vec![], &[])
            .expect("far from every setting: a warning");
        assert_eq!(loaded.warnings.len(), 1);
    }

    #[test]
    fn unknown_file_keys_are_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("core.toml");
        std::fs::write(&file, "[listen]\nhtp = \"x\"\n").expect("write");
        let err = load::<Sample>(Some(&file), env(&[]), vec![], &[]).expect_err("must fail");
        assert!(err.to_string().contains("unknown field `htp`"), "{err}");
    }
}
