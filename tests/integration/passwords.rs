//! Password rotation: generated passwords, the secrets file, supplied passwords, and no secret in any output.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use bulkpatch::simulator::{Fault, SimConfig, SimOAuth};

use crate::support::*;

/// The secrets file as (line -> password).
fn secrets(path: &std::path::Path) -> HashMap<String, String> {
    let results = Results::read(path);
    // Seven columns while a run writes it; `applied` is added when the run ends.
    let columns = [
        "line",
        "customer_id",
        "user_id",
        "user_principal_name",
        "password",
        "customer_domain",
        "context",
        "applied",
    ];
    assert!(
        results.header == columns[..7] || results.header == columns,
        "{:?}",
        results.header
    );
    results
        .rows
        .into_iter()
        .map(|r| (r["line"].clone(), r["password"].clone()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generated_password_meets_the_rules_and_is_the_same_on_every_retry_and_in_the_secrets_file(
) {
    let sim = simulator(SimConfig {
        script: HashMap::from([
            (
                user(1),
                vec![Fault::Slow(Duration::from_secs(5)), Fault::Normal],
            ),
            (
                user(2),
                vec![Fault::Drop, Fault::Status(503), Fault::Normal],
            ),
        ]),
        ..SimConfig::default()
    })
    .await;
    let dir = tempdir();
    let input = Csv::new(&["customer_id", "user_id", "upn"])
        .row(&[
            &customer(1).to_string(),
            &user(1).to_string(),
            "anna@contoso.com",
        ])
        .row(&[&customer(1).to_string(), &user(2).to_string(), ""])
        .row(&[&customer(1).to_string(), &user(3).to_string(), ""])
        .write(dir.path(), "rotate.csv");
    let out = dir.path().join("o.csv");
    let secrets_path = dir.path().join("secrets.csv");
    let config = dir.path().join("fast.toml");
    std::fs::write(
        &config,
        "backoff_base = \"20ms\"\nbackoff_cap = \"100ms\"\n",
    )
    .unwrap();
    let ran = run_bin(run_against(
        &sim,
        &input,
        &out,
        &[
            "--generate-passwords",
            "--password-length",
            "20",
            "--secrets-out",
            secrets_path.to_str().unwrap(),
            "--timeout",
            "300ms",
            "--config",
            config.to_str().unwrap(),
        ],
    ))
    .await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    #[cfg(unix)]
    assert_eq!(mode(&secrets_path), 0o600);
    let kept = secrets(&secrets_path);
    assert_eq!(kept.len(), 3);
    let requests = sim.requests();
    for (line, u, tries) in [("2", user(1), 2), ("3", user(2), 3), ("4", user(3), 1)] {
        let seen = requests_for(&requests, u);
        assert_eq!(seen.len(), tries);
        let sent: HashSet<String> = seen.iter().map(|r| sent_password(r).unwrap()).collect();
        assert_eq!(sent.len(), 1, "every retry sends the same password");
        let password = sent.into_iter().next().unwrap();
        assert_eq!(kept[line], password, "the secrets file holds what was sent");
        assert_eq!(password.len(), 20);
        assert_eq!(bulkpatch::input::passwords::check(&password), Ok(()));
        assert_eq!(
            seen[0].body_json().unwrap()["passwordProfile"]["forceChangePassword"],
            true
        );
    }
    let distinct: HashSet<_> = kept.values().collect();
    assert_eq!(distinct.len(), 3);
    let upn_row = Results::read(&secrets_path);
    assert_eq!(upn_row.line(2)["user_principal_name"], "anna@contoso.com");
    let results = std::fs::read_to_string(&out).unwrap();
    for p in kept.values() {
        assert!(
            !results.contains(p.as_str())
                && !ran.stderr.contains(p.as_str())
                && !ran.stdout.contains(p.as_str())
        );
    }
    // The secrets file is never overwritten.
    let again = run_bin(run_against(
        &sim,
        &input,
        &dir.path().join("o2.csv"),
        &[
            "--generate-passwords",
            "--secrets-out",
            secrets_path.to_str().unwrap(),
        ],
    ))
    .await;
    assert_eq!(again.code, 2);
    assert!(again.stderr.contains("already exists"), "{}", again.stderr);
    assert_eq!(secrets(&secrets_path), kept);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_password_is_in_the_secrets_file_before_its_request_arrives() {
    let sim = simulator(SimConfig {
        script: HashMap::from([(user(1), vec![Fault::Slow(Duration::from_secs(2))])]),
        ..SimConfig::default()
    })
    .await;
    let dir = tempdir();
    let input = Csv::usage_locations(1).write(dir.path(), "in.csv");
    let secrets_path = dir.path().join("secrets.csv");
    let child = run_against(
        &sim,
        &input,
        &dir.path().join("o.csv"),
        &[
            "--generate-passwords",
            "--secrets-out",
            secrets_path.to_str().unwrap(),
        ],
    )
    .spawn()
    .unwrap();
    // While the server holds the request, the password it carries is already on disk.
    let deadline = Instant::now() + Duration::from_secs(20);
    while sim.stats().received == 0 {
        assert!(Instant::now() < deadline, "no request arrived");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let in_flight = sent_password(&sim.requests()[0]).unwrap();
    assert_eq!(secrets(&secrets_path)["2"], in_flight);
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn supplied_passwords_are_checked_sent_in_a_password_profile_and_redacted_in_plans() {
    let sim = simulator(SimConfig::default()).await;
    let dir = tempdir();
    let c = customer(1).to_string();
    let input = Csv::new(&[
        "customer_id",
        "user_id",
        "password",
        "ForceChangePasswordNextLogin",
    ])
    .row(&[&c, &user(1).to_string(), "Renew456*", "no"])
    .row(&[&c, &user(2).to_string(), "weakweakweak", ""])
    .row(&[&c, &user(3).to_string(), "Sh0rt!", ""])
    .write(dir.path(), "pw.csv");
    let out = dir.path().join("o.csv");
    let ran = run_bin(run_against(&sim, &input, &out, &[])).await;
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    let requests = sim.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(
        String::from_utf8(requests[0].body.clone()).unwrap(),
        r#"{"passwordProfile":{"password":"Renew456*","forceChangePassword":false},"attributes":{"objectType":"CustomerUser"}}"#
    );
    let results = Results::read(&out);
    assert!(
        results.line(3)["message"].contains("at least 3 of"),
        "{:?}",
        results.line(3)
    );
    assert!(
        results.line(4)["message"].contains("shorter than 8"),
        "{:?}",
        results.line(4)
    );
    let text = std::fs::read_to_string(&out).unwrap();
    for p in ["Renew456*", "weakweakweak", "Sh0rt!"] {
        assert!(!text.contains(p) && !ran.stderr.contains(p), "{p} leaked");
    }

    let plan = dir.path().join("plan.csv");
    let ran = run_bin(bulkpatch(&[
        "run",
        input.to_str().unwrap(),
        "--dry-run",
        "--out",
        plan.to_str().unwrap(),
    ]))
    .await;
    assert_eq!(ran.code, 1);
    let results = Results::read(&plan);
    assert_eq!(
        results.line(2)["body"],
        r#"{"passwordProfile":{"password":"<redacted>","forceChangePassword":false},"attributes":{"objectType":"CustomerUser"}}"#
    );
    assert!(!std::fs::read_to_string(&plan)
        .unwrap()
        .contains("Renew456*"));

    // A dry run with generated passwords keeps no secrets file: nothing is set.
    let gen = Csv::usage_locations(2).write(dir.path(), "gen.csv");
    let secrets_path = dir.path().join("never.csv");
    let ran = run_bin(bulkpatch(&[
        "run",
        gen.to_str().unwrap(),
        "--dry-run",
        "--generate-passwords",
        "--secrets-out",
        secrets_path.to_str().unwrap(),
    ]))
    .await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert!(!secrets_path.exists());
    assert!(std::fs::read_to_string(dir.path().join("gen.results.csv"))
        .unwrap()
        .contains("<redacted>"));
}

/// Every password and token the run touched, searched for in every output at trace level.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_rotation_at_trace_level_leaks_no_password_or_token() {
    let dir = tempdir();
    for (name, generate) in [("generated", true), ("supplied", false)] {
        let sim = simulator(SimConfig {
            oauth: Some(SimOAuth {
                client_secret: Some("client-secret-LEAKCHECK".into()),
                access_token_lifetime: Duration::from_secs(1),
                ..SimOAuth::default()
            }),
            script: HashMap::from([
                (user(2), vec![Fault::Status(503)]),
                (user(3), vec![Fault::Drop]),
                (user(4), vec![Fault::Echo(400)]),
                (user(5), vec![Fault::Unauthorized]),
                (user(6), vec![Fault::Echo(503), Fault::Echo(409)]),
            ]),
            ..SimConfig::default()
        })
        .await;
        let refresh = sim.valid_refresh_tokens().pop().unwrap();
        let sub = dir.path().join(name);
        std::fs::create_dir_all(&sub).unwrap();
        let (config, refresh_file) =
            auth_config(&sub, &sim, &refresh, &SimOAuth::default().client_id);
        let mut supplied = Vec::new();
        let input = if generate {
            Csv::usage_locations(12).write(&sub, "in.csv")
        } else {
            let mut csv = Csv::new(&["customer_id", "user_id", "password"]);
            for i in 1..=12 {
                let p = format!("Supplied-{i}-Pw!x");
                csv = csv.row(&[&customer(1).to_string(), &user(i).to_string(), &p]);
                supplied.push(p);
            }
            csv.write(&sub, "in.csv")
        };
        let out = sub.join("out.csv");
        let summary = sub.join("summary.json");
        let secrets_path = sub.join("secrets.csv");
        let mut args = vec![
            "-vv",
            "--rate",
            "15/s",
            "--summary-json",
            summary.to_str().unwrap(),
        ];
        if generate {
            args.extend([
                "--generate-passwords",
                "--secrets-out",
                secrets_path.to_str().unwrap(),
            ]);
        }
        let mut cmd = run_with_config(&sim, &input, &out, &config, &args);
        cmd.env("RUST_LOG", "trace")
            .env("BULKPATCH_CLIENT_SECRET", "client-secret-LEAKCHECK");
        let ran = run_bin(cmd).await;
        assert_eq!(
            ran.code, 1,
            "{name}: the echoed 409 fails one row: {}",
            ran.stderr
        );
        assert!(ran.stderr.len() > 10_000, "trace logging was on");
        assert!(
            sim.token_requests().len() >= 2,
            "tokens were refreshed during the run"
        );

        let passwords: Vec<String> = if generate {
            secrets(&secrets_path).into_values().collect()
        } else {
            supplied
        };
        assert_eq!(passwords.len(), 12);
        let mut secrets_to_find: Vec<String> = passwords.clone();
        secrets_to_find.extend(sim.issued_tokens());
        secrets_to_find.push("client-secret-LEAKCHECK".into());
        let outputs = [
            ("stdout", ran.stdout.clone()),
            ("stderr", ran.stderr.clone()),
            ("results", std::fs::read_to_string(&out).unwrap()),
            ("summary", std::fs::read_to_string(&summary).unwrap()),
        ];
        for secret in &secrets_to_find {
            for (where_, text) in &outputs {
                assert!(
                    !text.contains(secret.as_str()),
                    "{name}: a secret leaked into {where_}"
                );
            }
        }
        // The echoed error bodies did reach the results, redacted.
        let results = Results::read(&out);
        assert!(
            results.line(5)["message"].contains("<redacted>"),
            "{:?}",
            results.line(5)
        );
        assert!(!std::fs::read_to_string(&refresh_file)
            .unwrap()
            .trim()
            .is_empty());
    }
}
