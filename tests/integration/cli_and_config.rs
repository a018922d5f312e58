//! The command line and the config file: help, precedence, unknown keys, the documented example.

use clap::CommandFactory;

use bulkpatch::cli::Cli;
use bulkpatch::settings::options::OPTION_DOCS;
use bulkpatch::settings::{documented_keys, FileConfig, CONFIG_KEYS};

use crate::support::*;

#[test]
fn the_cli_definition_is_consistent() {
    Cli::command().debug_assert();
}

#[test]
fn every_subcommand_has_help_with_examples() {
    for sub in ["run", "simulate", "demo"] {
        let out = bulkpatch(&[sub, "--help"]).output().unwrap();
        assert!(out.status.success());
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(help.contains("Examples:"), "{sub} --help has no examples");
    }
    let out = bulkpatch(&["run", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--base-url",
        "--out",
        "--force",
        "--rate",
        "--concurrency",
        "--max-attempts",
        "--timeout",
        "--customer-id",
        "--ignore-unknown-columns",
        "--dry-run",
        "--verbose",
        "--quiet",
        "--log-format",
        "--summary-json",
        "--token-file",
        "--config",
    ] {
        assert!(help.contains(flag), "run --help lacks {flag}");
    }
    assert!(
        !help.contains("--token "),
        "there must be no flag taking the token itself"
    );
}

#[test]
fn config_example_parses_and_documents_every_key() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config.example.toml"))
        .unwrap();
    FileConfig::parse(&text, std::path::Path::new("config.example.toml"))
        .expect("the example parses");
    let documented = documented_keys(&text);
    for key in CONFIG_KEYS {
        assert!(
            documented.contains_key(*key),
            "config.example.toml does not document `{key}`"
        );
    }
    // Uncommented, every documented value is itself valid.
    let uncommented: String = text
        .lines()
        .map(|l| {
            l.strip_prefix("# ")
                .filter(|l| l.contains(" = ") || l.starts_with('['))
                .unwrap_or(l)
        })
        .collect::<Vec<_>>()
        .join("\n");
    FileConfig::parse(&uncommented, std::path::Path::new("uncommented.toml"))
        .expect("uncommented example parses");
}

/// The rows of README's options table.
fn readme_option_rows() -> Vec<String> {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = readme
        .split("### Options and the config file")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("README has an options section");
    section
        .lines()
        .filter(|l| l.starts_with("| "))
        .map(str::to_string)
        .collect()
}

#[test]
fn the_readme_options_table_lists_every_flag_with_its_variable_and_key() {
    let rows = readme_option_rows();
    let command = Cli::command();
    for sub in ["run", "audit"] {
        let sub = command.find_subcommand(sub).unwrap();
        for long in sub.get_arguments().filter_map(|a| a.get_long()) {
            let flag = format!("`--{long}");
            assert!(
                rows.iter().any(|r| r.contains(&flag)),
                "README's options table lacks {flag}`"
            );
        }
    }
    // Each declared option's row names its flag, variable, config key and default, each in its
    // own column: option | environment | config key | default | meaning.
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let r = r.replace("\\|", "/");
            r.split('|').skip(1).map(|c| c.trim().to_string()).collect()
        })
        .collect();
    for option in OPTION_DOCS {
        let key = format!("`{}`", option.key);
        let row = match option.flag() {
            Some(flag) => cells.iter().find(|c| c[0].contains(&format!("`{flag}"))),
            None => cells.iter().find(|c| c[2].contains(&key)),
        };
        let row = row.unwrap_or_else(|| panic!("README's options table lacks `{}`", option.key));
        assert_eq!(row[2].contains(&key), option.toml, "{row:?}: config key");
        assert_eq!(
            row[1].trim_matches('`'),
            option.env.unwrap_or_default(),
            "{row:?}: environment"
        );
        if let Some(default) = option.default {
            assert!(
                row[3].contains(&format!("`{default}`")),
                "{row:?} lacks the default {default}"
            );
        }
    }
}

#[test]
fn the_example_config_shows_each_declared_default() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config.example.toml"))
        .unwrap();
    let documented = documented_keys(&text);
    for option in OPTION_DOCS.iter().filter(|o| o.toml) {
        let shown = documented
            .get(option.key)
            .unwrap_or_else(|| panic!("config.example.toml does not document `{}`", option.key));
        if let Some(default) = option.default {
            assert_eq!(shown.trim_matches('"'), default, "`{}`", option.key);
        }
    }
}

/// The effective rate of a dry run, from its `starting` log line.
fn effective(args: &[&str], env: &[(&str, &str)], dir: &std::path::Path) -> String {
    let input = Csv::usage_locations(1).write(dir, "p.csv");
    let out = dir.join("p.out.csv");
    let mut all = vec![
        "run",
        input.to_str().unwrap(),
        "--dry-run",
        "--force",
        "--out",
        out.to_str().unwrap(),
    ];
    all.extend_from_slice(args);
    let mut cmd = bulkpatch(&all);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    let line = stderr
        .lines()
        .find(|l| l.contains("starting"))
        .unwrap_or_else(|| panic!("{stderr}"));
    let rate = line
        .split("rate=")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap();
    let conc = line
        .split("concurrency=")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap();
    format!("{rate} {conc}")
}

#[test]
fn command_line_beats_environment_beats_file_beats_defaults() {
    let dir = tempdir();
    let config = dir.path().join("c.toml");
    std::fs::write(&config, "rate = \"2/s\"\nconcurrency = 3\n").unwrap();
    let c = config.to_str().unwrap();
    assert_eq!(effective(&[], &[], dir.path()), "8/s 8");
    assert_eq!(effective(&["--config", c], &[], dir.path()), "2/s 3");
    assert_eq!(
        effective(&["--config", c], &[("BULKPATCH_RATE", "3/s")], dir.path()),
        "3/s 3"
    );
    assert_eq!(
        effective(
            &["--config", c, "--rate", "4/s"],
            &[("BULKPATCH_RATE", "3/s")],
            dir.path()
        ),
        "4/s 3"
    );
    assert_eq!(
        effective(&[], &[("BULKPATCH_CONFIG", c)], dir.path()),
        "2/s 3"
    );
}

#[test]
fn bad_config_fails_before_anything_naming_the_key() {
    let dir = tempdir();
    let input = Csv::usage_locations(1).write(dir.path(), "in.csv");
    for (text, message) in [
        (
            "concurency = 4\n",
            "unknown key `concurency` (did you mean `concurrency`?)",
        ),
        ("rate = \"fast\"\n", "`rate` must look like `8/s`"),
        ("timeout = \"soon\"\n", "`timeout` is not a duration"),
        ("rate = [\n", "not valid TOML"),
    ] {
        let config = dir.path().join("bad.toml");
        std::fs::write(&config, text).unwrap();
        let out = bulkpatch(&[
            "run",
            input.to_str().unwrap(),
            "--dry-run",
            "--config",
            config.to_str().unwrap(),
        ])
        .output()
        .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(message), "{text:?}: {stderr}");
    }
    let out = bulkpatch(&[
        "run",
        input.to_str().unwrap(),
        "--dry-run",
        "--rate",
        "8/fortnight",
    ])
    .output()
    .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("command line: `rate` has an unknown unit")
    );
}

#[test]
fn the_token_file_is_read_and_an_empty_one_refused() {
    let dir = tempdir();
    let input = Csv::usage_locations(1).write(dir.path(), "in.csv");
    let token = dir.path().join("token");
    std::fs::write(&token, "\n").unwrap();
    let out = bulkpatch(&[
        "run",
        input.to_str().unwrap(),
        "--token-file",
        token.to_str().unwrap(),
    ])
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is empty"));
}
