//! The TOML config file: reading it, refusing unknown keys (naming the closest known one) and
//! values of the wrong type (naming the key and the form it takes). The keys, their forms and
//! the `[auth]` section are declared in `settings::options`; this module only reads them.

use std::collections::BTreeMap;
use std::path::Path;

pub use crate::settings::options::{AuthConfig, FileConfig, AUTH_KEYS};
use crate::settings::options::{Form, AUTH_FORMS, CONFIG_KEYS, OPTION_FORMS};
use crate::settings::ConfigError;

/// The `[auth]` key itself.
const AUTH_SECTION: (&str, Form, &str) = ("auth", Form::Table, "[auth]");

impl Form {
    fn accepts(self, value: &toml::Value) -> bool {
        match (self, value) {
            (Form::Text, toml::Value::String(_))
            | (Form::Boolean, toml::Value::Boolean(_))
            | (Form::Table, toml::Value::Table(_)) => true,
            (Form::Count, toml::Value::Integer(i)) => u32::try_from(*i).is_ok(),
            _ => false,
        }
    }

    fn expected(self, example: &str) -> String {
        match self {
            Form::Text => format!("a string such as \"{example}\""),
            Form::Count => format!("an integer such as {example}"),
            Form::Boolean => format!("a boolean such as {example}"),
            Form::Table => format!("a table (an {example} section)"),
        }
    }
}

/// How a wrong value is named in a type error: `the integer 5`, `the string "8"`.
fn describe(value: &toml::Value) -> String {
    match value {
        // TOML's own quoting escapes quotes and control characters.
        toml::Value::String(_) => format!("the string {value}"),
        toml::Value::Integer(i) if *i < 0 => format!("the negative integer {i}"),
        toml::Value::Integer(i) => format!("the integer {i}"),
        toml::Value::Float(f) => format!("the float {f}"),
        toml::Value::Boolean(b) => format!("the boolean {b}"),
        toml::Value::Datetime(d) => format!("the date-time {d}"),
        toml::Value::Array(_) => "an array".into(),
        toml::Value::Table(_) => "a table".into(),
    }
}

/// Every key of `table` (under `prefix`) whose value has the wrong type, one message each.
fn type_errors(table: &toml::Table, prefix: &str) -> Vec<String> {
    let mut errors = Vec::new();
    for (key, value) in table {
        let name = format!("{prefix}{key}");
        let Some((_, form, example)) = OPTION_FORMS
            .iter()
            .chain(AUTH_FORMS)
            .chain([&AUTH_SECTION])
            .find(|(k, _, _)| *k == name)
        else {
            continue; // unknown keys are reported before this check
        };
        if !form.accepts(value) {
            errors.push(format!(
                "{name}: expected {}, found {}",
                form.expected(example),
                describe(value)
            ));
        } else if let toml::Value::Table(inner) = value {
            errors.extend(type_errors(inner, &format!("{name}.")));
        }
    }
    errors
}

/// A TOML syntax error with the line and column where it is, so the user can find it.
fn syntax(path: &Path, text: &str, e: &toml::de::Error) -> ConfigError {
    let at = e.span().map(|span| {
        let before = text.get(..span.start).unwrap_or(text);
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
        format!("line {line}, column {column}: ")
    });
    ConfigError::Syntax {
        path: path.to_owned(),
        message: format!("{}{}", at.unwrap_or_default(), e.message().trim_end()),
    }
}

impl FileConfig {
    /// Reads and checks a config file: unknown keys are errors that name the closest known key.
    pub fn load(path: &Path) -> Result<FileConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        FileConfig::parse(&text, path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<FileConfig, ConfigError> {
        let table: toml::Table = toml::from_str(text).map_err(|e| syntax(path, text, &e))?;
        for key in table.keys() {
            if !CONFIG_KEYS.contains(&key.as_str()) {
                return Err(ConfigError::UnknownKey {
                    path: path.to_owned(),
                    key: key.clone(),
                    suggestion: closest(key, CONFIG_KEYS)
                        .or_else(|| closest(key, AUTH_KEYS).map(|_| "[auth] section")),
                });
            }
        }
        if let Some(toml::Value::Table(auth)) = table.get("auth") {
            for key in auth.keys() {
                if !AUTH_KEYS.contains(&key.as_str()) {
                    return Err(ConfigError::UnknownKey {
                        path: path.to_owned(),
                        key: format!("auth.{key}"),
                        suggestion: closest(key, AUTH_KEYS),
                    });
                }
            }
        }
        let problems = type_errors(&table, "");
        if !problems.is_empty() {
            return Err(ConfigError::WrongType {
                path: path.to_owned(),
                problems,
            });
        }
        toml::from_str(text).map_err(|e| syntax(path, text, &e))
    }
}

/// The closest of `candidates` to `word`, if any is close enough to be a likely typo.
pub fn closest(word: &str, candidates: &[&'static str]) -> Option<&'static str> {
    let w = word.to_ascii_lowercase();
    candidates
        .iter()
        .map(|c| (strsim::normalized_damerau_levenshtein(&w, c), *c))
        .filter(|(score, _)| *score >= 0.6)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// Key/value view used by tests to check that `config.example.toml` documents every key.
pub fn documented_keys(text: &str) -> BTreeMap<String, String> {
    let mut keys = BTreeMap::new();
    for line in text.lines() {
        let l = line.trim_start_matches('#').trim();
        if l == "[auth]" {
            keys.insert("auth".to_string(), String::new());
        }
        if let Some((k, v)) = l.split_once('=') {
            let k = k.trim();
            if CONFIG_KEYS.contains(&k) || AUTH_KEYS.contains(&k) {
                keys.insert(k.to_string(), v.trim().to_string());
            }
        }
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_key_suggests_the_intended_one() {
        let err = FileConfig::parse("concurency = 4\n", Path::new("c.toml")).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("`concurency`"), "{msg}");
        assert!(msg.contains("did you mean `concurrency`"), "{msg}");
    }

    #[test]
    fn type_errors_name_the_key_and_the_expected_form() {
        let err = |text: &str| {
            FileConfig::parse(text, Path::new("c.toml"))
                .unwrap_err()
                .to_string()
        };
        let cases = [
            ("rate = 5", r#"rate: expected a string such as "8/s", found the integer 5"#),
            (
                r#"concurrency = "8""#,
                r#"concurrency: expected an integer such as 8, found the string "8""#,
            ),
            ("concurrency = 8.5", "concurrency: expected an integer such as 8, found the float 8.5"),
            ("max_attempts = -1", "max_attempts: expected an integer such as 6, found the negative integer -1"),
            ("dry_run = \"yes\"", r#"dry_run: expected a boolean such as true, found the string "yes""#),
            ("timeout = 30", r#"timeout: expected a string such as "30s", found the integer 30"#),
            ("backoff_cap = [1]", r#"backoff_cap: expected a string such as "60s", found an array"#),
            ("auth = 5", "auth: expected a table (an [auth] section), found the integer 5"),
            (
                "[auth]\nclient_id = 42",
                "auth.client_id: expected a string such as \"00000000-0000-0000-0000-000000000000\", found the integer 42",
            ),
            ("[auth]\ntoken_url = true", "auth.token_url: expected a string such as"),
        ];
        for (text, expected) in cases {
            let msg = err(text);
            assert!(msg.contains(expected), "{text}:\n{msg}");
            assert!(msg.contains("c.toml"), "{msg}");
        }
        // Every wrong key at once.
        let msg = err("rate = 5\nconcurrency = \"8\"\n");
        assert!(
            msg.contains("rate: expected") && msg.contains("concurrency: expected"),
            "{msg}"
        );
        // Every key has a form.
        for key in CONFIG_KEYS
            .iter()
            .map(|k| k.to_string())
            .chain(AUTH_KEYS.iter().map(|k| format!("auth.{k}")))
        {
            let forms = OPTION_FORMS.iter().chain(AUTH_FORMS);
            assert!(
                key == "auth" || forms.clone().any(|(k, _, _)| *k == key),
                "{key}"
            );
        }
    }
}
