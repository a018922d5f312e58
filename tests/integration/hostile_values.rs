//! Hostile numbers from a server and from the user: rate-limit headers of 1e30, inf and 1e300,
//! token lifetimes of 2^64-1 and 0, absurd rates, durations and TOML types. Every one is clamped
//! or refused with a message naming the key: never a panic (exit 101), never a lost row.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::routing::post;
use axum::Router;

use crate::support::*;

/// Which answer (1-based, in arrival order) carries the hostile headers.
type Script = fn(u64) -> Vec<(&'static str, &'static str)>;

struct Hostile {
    api: AtomicU64,
    token: AtomicU64,
    script: Script,
    /// The raw JSON of the token answer's `expires_in`.
    expires_in: &'static str,
}

/// A server on 127.0.0.1:0 answering every API request 200 with the script's headers, and
/// `/token` with an access token of the given `expires_in` and a rotated refresh token.
async fn hostile(script: Script, expires_in: &'static str) -> (String, Arc<Hostile>) {
    let state = Arc::new(Hostile {
        api: AtomicU64::new(0),
        token: AtomicU64::new(0),
        script,
        expires_in,
    });
    let app = Router::new()
        .route("/token", post(token))
        .fallback(api)
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), state)
}

async fn api(State(s): State<Arc<Hostile>>) -> (HeaderMap, &'static str) {
    let n = s.api.fetch_add(1, Ordering::SeqCst) + 1;
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    for (name, value) in (s.script)(n) {
        headers.insert(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    (headers, "{}")
}

async fn token(State(s): State<Arc<Hostile>>) -> (HeaderMap, String) {
    let n = s.token.fetch_add(1, Ordering::SeqCst) + 1;
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    let body = format!(
        r#"{{"token_type":"Bearer","access_token":"access-{n}","expires_in":{},"refresh_token":"rotated-{n}"}}"#,
        s.expires_in
    );
    (headers, body)
}

/// Runs `rows` rows against the server with a fixed token; returns the exit and the records.
async fn run_rows(base: &str, rows: u32, extra: &[&str]) -> (Ran, Results) {
    let dir = tempdir();
    let input = Csv::usage_locations(rows).write(dir.path(), "in.csv");
    let out = dir.path().join("out.csv");
    let mut args = vec![
        "run",
        input.to_str().unwrap(),
        "--base-url",
        base,
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let mut cmd = bulkpatch(&args);
    cmd.env("BULKPATCH_TOKEN", "fixed-token");
    let ran = run_bin(cmd).await;
    let results = Results::read(&out);
    (ran, results)
}

fn assert_every_row_updated(ran: &Ran, results: &Results, rows: usize) {
    assert_ne!(ran.code, 101, "a panic:\n{}", ran.stderr);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert!(!ran.stderr.contains("panicked"), "{}", ran.stderr);
    assert_eq!(results.rows.len(), rows, "one record per row");
    assert_eq!(results.count("updated"), rows);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_infinite_and_absurd_rate_limit_headers_are_clamped_not_a_panic() {
    // Each script's clamped result is short: plenty remaining, or an announced policy fast
    // enough, so the run paces at its ceiling. Unclamped, each of these panics (exit 101).
    let scripts: [Script; 4] = [
        |_| {
            vec![
                ("ratelimit-remaining", "1000000"),
                ("ratelimit-reset", "1e30"),
            ]
        },
        |_| {
            vec![
                ("x-rate-limit-remaining", "1e300"),
                ("x-rate-limit-reset", "inf"),
            ]
        },
        |_| {
            vec![
                ("ratelimit", "\"default\";r=1;t=1e300"),
                ("ratelimit-policy", "\"default\";q=1e300;w=1e-300"),
            ]
        },
        |_| {
            vec![
                ("ratelimit-remaining", "NaN"),
                ("ratelimit-reset", "-1e300"),
                ("x-ms-throttle-limit-percentage", "inf"),
            ]
        },
    ];
    for script in scripts {
        let (base, server) = hostile(script, "3600").await;
        let (ran, results) = run_rows(&base, 6, &["--rate", "200/s", "--concurrency", "2"]).await;
        assert_every_row_updated(&ran, &results, 6);
        assert_eq!(server.api.load(Ordering::SeqCst), 6);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_left_until_a_reset_in_31_years_is_no_panic_and_no_lost_row() {
    // The last answer says nothing is left for 999999999 s: the pause is capped at 15 minutes
    // (proved on a paused clock in rate.rs); here the run ends with every row recorded.
    let (base, server) = hostile(
        |n| {
            if n == 4 {
                vec![
                    ("ratelimit-remaining", "0"),
                    ("ratelimit-reset", "999999999"),
                ]
            } else {
                vec![("ratelimit-remaining", "1e30"), ("ratelimit-reset", "1e30")]
            }
        },
        "3600",
    )
    .await;
    let (ran, results) = run_rows(&base, 4, &["--rate", "200/s", "--concurrency", "1"]).await;
    assert_every_row_updated(&ran, &results, 4);
    assert_eq!(server.api.load(Ordering::SeqCst), 4);
}

/// A config with `[auth]` for the server's `/token`, and a private refresh-token file.
fn auth_config(dir: &std::path::Path, base: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let refresh = dir.join("refresh-token");
    {
        use std::io::Write;
        let mut f = bulkpatch::core::files::create_private_file(&refresh).unwrap();
        writeln!(f, "original-refresh").unwrap();
    }
    let config = dir.join("auth.toml");
    std::fs::write(
        &config,
        format!(
            "[auth]\ntoken_url = \"{base}/token\"\nclient_id = \"app\"\nrefresh_token_file = \"{}\"\n",
            refresh.display()
        ),
    )
    .unwrap();
    (config, refresh)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_lifetimes_of_2_pow_64_and_0_are_clamped_and_the_rotated_token_is_saved() {
    const ROWS: u32 = 200;
    for expires_in in [
        "18446744073709551615",
        "0",
        "1e300",
        "-5",
        "\"NaN\"",
        "1e999",
    ] {
        let (base, server) = hostile(|_| Vec::new(), expires_in).await;
        let dir = tempdir();
        let (config, refresh) = auth_config(dir.path(), &base);
        let input = Csv::usage_locations(ROWS).write(dir.path(), "in.csv");
        let out = dir.path().join("out.csv");
        let cmd = bulkpatch(&[
            "run",
            input.to_str().unwrap(),
            "--base-url",
            &base,
            "--out",
            out.to_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
            "--rate",
            "unlimited",
            "--concurrency",
            "4",
        ]);
        let ran = run_bin(cmd).await;
        assert_every_row_updated(&ran, &Results::read(&out), ROWS as usize);
        let tokens = server.token.load(Ordering::SeqCst);
        assert_eq!(
            std::fs::read_to_string(&refresh).unwrap().trim(),
            format!("rotated-{tokens}"),
            "expires_in {expires_in}: the last rotated refresh token is saved"
        );
        // A lifetime of 0 (or less) is taken as the minimum, a second: a refresh every 0.8 s
        // at most, for this run of well under a second a token or two, not one per request.
        assert!(
            tokens * 20 <= u64::from(ROWS),
            "expires_in {expires_in}: {tokens} token requests for {ROWS} rows"
        );
        if !["0", "-5"].contains(&expires_in) {
            assert_eq!(tokens, 1, "expires_in {expires_in}");
        }
    }
}

/// `bulkpatch run` against the hostile server with `extra` and, when given, a config file.
async fn refused(extra: &[&str], config: Option<&str>) -> Ran {
    let (base, server) = hostile(|_| Vec::new(), "3600").await;
    let dir = tempdir();
    let input = Csv::usage_locations(2).write(dir.path(), "in.csv");
    let out = dir.path().join("out.csv");
    let config_path = dir.path().join("c.toml");
    let mut args = vec![
        "run".to_string(),
        input.display().to_string(),
        "--base-url".into(),
        base,
        "--out".into(),
        out.display().to_string(),
    ];
    if let Some(text) = config {
        std::fs::write(&config_path, text).unwrap();
        args.extend(["--config".into(), config_path.display().to_string()]);
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut cmd = bulkpatch(&refs);
    cmd.env("BULKPATCH_TOKEN", "fixed-token");
    let ran = run_bin(cmd).await;
    assert_eq!(server.api.load(Ordering::SeqCst), 0, "nothing is sent");
    assert!(!out.exists(), "no results file for a refused run");
    ran
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absurd_rates_and_durations_are_refused_naming_the_key() {
    let cli: &[(&[&str], &str)] = &[
        (
            &["--rate", "1e-20/s"],
            "`rate` is below the slowest rate, 1/h",
        ),
        (
            &["--rate", "1e-12/s"],
            "`rate` is below the slowest rate, 1/h",
        ),
        (&["--rate", "0/s"], "`rate` must be more than zero"),
        (&["--rate", "inf/s"], "`rate` must be a finite number"),
        (&["--rate", "NaN/s"], "`rate` must be a finite number"),
        (
            &["--per-customer-rate", "1e-300/min"],
            "`per_customer_rate`",
        ),
        (&["--timeout", "500000000000y"], "`timeout`"),
        (
            &["--grace-period", "100000y"],
            "`grace_period` must be between 1ms and 1h",
        ),
    ];
    for (args, expected) in cli {
        let ran = refused(args, None).await;
        assert_eq!(ran.code, 2, "{args:?}: {}", ran.stderr);
        assert!(ran.stderr.contains(expected), "{args:?}: {}", ran.stderr);
    }
    let files = [
        (
            "backoff_cap = \"500000000000y\"\n",
            "`backoff_cap` must be between 1ms and 1h",
        ),
        (
            "backoff_base = \"1ns\"\n",
            "`backoff_base` must be between 1ms and 1h",
        ),
        ("connect_timeout = \"100000y\"\n", "`connect_timeout`"),
        (
            "progress_interval = \"1ns\"\n",
            "`progress_interval` must be between 100ms and 1day",
        ),
        (
            "rate = \"1e-12/s\"\n",
            "`rate` is below the slowest rate, 1/h",
        ),
    ];
    for (text, expected) in files {
        let ran = refused(&[], Some(text)).await;
        assert_eq!(ran.code, 2, "{text}: {}", ran.stderr);
        assert!(ran.stderr.contains(expected), "{text}: {}", ran.stderr);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn toml_type_errors_name_every_key_and_its_expected_form() {
    let ran = refused(
        &[],
        Some("rate = 5\nconcurrency = \"8\"\ndry_run = \"no\"\n\n[auth]\nclient_id = 7\n"),
    )
    .await;
    assert_eq!(ran.code, 2, "{}", ran.stderr);
    for expected in [
        r#"rate: expected a string such as "8/s", found the integer 5"#,
        r#"concurrency: expected an integer such as 8, found the string "8""#,
        r#"dry_run: expected a boolean such as true, found the string "no""#,
        "auth.client_id: expected a string such as",
    ] {
        assert!(ran.stderr.contains(expected), "{expected}\n{}", ran.stderr);
    }
}

#[test]
fn the_simulators_durations_are_bounded_too() {
    use bulkpatch::cli::{Cli, Command};
    use clap::Parser;
    let config = |args: &[&str]| {
        let cli = Cli::try_parse_from([&["bulkpatch", "simulate"], args].concat()).unwrap();
        let Command::Simulate(cmd) = cli.command else {
            unreachable!()
        };
        cmd.to_config()
    };
    // A token lifetime of 500 billion years would overflow the simulator's clock at the first
    // token it issues.
    let e = config(&[
        "--oauth-client-id",
        "x",
        "--token-lifetime",
        "500000000000y",
    ])
    .unwrap_err();
    assert!(e.contains("--token-lifetime must be between"), "{e}");
    assert!(config(&["--latency", "100000y"]).is_err());
    assert!(config(&["--quota", "5/100000y"]).is_err());
    assert!(config(&["--oauth-client-id", "x", "--token-lifetime", "1h"]).is_ok());
}
