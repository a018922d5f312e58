//! App+User credentials: refresh ahead of expiry, one refresh at a time, rotation written back, and clean stops when refresh fails.

use std::collections::HashMap;
use std::time::Duration;

use bulkpatch::simulator::{Fault, SimConfig, SimOAuth};

use crate::support::*;

fn oauth(lifetime: Duration) -> SimOAuth {
    SimOAuth {
        access_token_lifetime: lifetime,
        ..SimOAuth::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_refreshed_across_several_expiries_once_each_with_no_row_failing() {
    let sim = simulator(SimConfig {
        oauth: Some(SimOAuth {
            client_secret: Some("client-secret-s3cr3t".into()),
            ..oauth(Duration::from_secs(1))
        }),
        ..SimConfig::default()
    })
    .await;
    let o = SimOAuth::default();
    let dir = tempdir();
    let refresh = sim.valid_refresh_tokens().pop().unwrap();
    let (config, _) = auth_config(dir.path(), &sim, &refresh, &o.client_id);
    let input = Csv::usage_locations(100).write(dir.path(), "in.csv");
    let out = dir.path().join("out.csv");
    let mut cmd = run_with_config(
        &sim,
        &input,
        &out,
        &config,
        &["--rate", "30/s", "--concurrency", "16"],
    );
    cmd.env("BULKPATCH_CLIENT_SECRET", "client-secret-s3cr3t");
    let ran = run_bin(cmd).await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert_eq!(Results::read(&out).count("updated"), 100);

    let api = sim.requests();
    assert!(
        api.iter().all(|r| r.status == Some(200)),
        "no request was refused: the token was refreshed ahead of expiry"
    );
    let refreshes = sim.token_requests();
    assert!(
        refreshes.len() >= 3,
        "a run of ~3 s with 1 s tokens crosses several expiries: {}",
        refreshes.len()
    );
    assert!(refreshes.iter().all(|r| r.status == 200));
    // Sixteen workers, yet one refresh per expiry: refreshes are a token lifetime apart, not a burst.
    for pair in refreshes.windows(2) {
        let gap = pair[1].received_at - pair[0].received_at;
        assert!(
            gap >= Duration::from_millis(600),
            "two refreshes {gap:?} apart"
        );
    }
    let form = &refreshes[0].form;
    assert_eq!(form["grant_type"], "refresh_token");
    assert_eq!(form["client_id"], o.client_id);
    assert_eq!(form["client_secret"], "client-secret-s3cr3t");
    assert_eq!(
        form["scope"],
        "https://api.partnercenter.microsoft.com/user_impersonation offline_access"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_refresh_token_is_written_back_privately_and_the_next_run_uses_it() {
    let sim = simulator(SimConfig {
        oauth: Some(SimOAuth {
            rotate_refresh_tokens: true,
            ..oauth(Duration::from_secs(3600))
        }),
        ..SimConfig::default()
    })
    .await;
    let dir = tempdir();
    let first = sim.valid_refresh_tokens().pop().unwrap();
    let (config, refresh_file) =
        auth_config(dir.path(), &sim, &first, &SimOAuth::default().client_id);
    let input = Csv::usage_locations(3).write(dir.path(), "in.csv");
    let ran = run_bin(run_with_config(
        &sim,
        &input,
        &dir.path().join("a.csv"),
        &config,
        &[],
    ))
    .await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let saved = std::fs::read_to_string(&refresh_file).unwrap();
    let valid = sim.valid_refresh_tokens();
    assert_eq!(valid.len(), 1);
    assert_ne!(
        saved.trim(),
        first,
        "the used refresh token no longer works"
    );
    assert_eq!(saved.trim(), valid[0]);
    #[cfg(unix)]
    assert_eq!(mode(&refresh_file), 0o600);
    // The next scheduled run works with what was written back.
    let ran = run_bin(run_with_config(
        &sim,
        &input,
        &dir.path().join("b.csv"),
        &config,
        &["--force"],
    ))
    .await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_refresh_token_stops_before_any_update_with_what_to_do() {
    let sim = simulator(SimConfig {
        oauth: Some(oauth(Duration::from_secs(3600))),
        ..SimConfig::default()
    })
    .await;
    let dir = tempdir();
    let (config, refresh_file) = auth_config(
        dir.path(),
        &sim,
        "stale-refresh-token-123",
        &SimOAuth::default().client_id,
    );
    let input = Csv::usage_locations(3).write(dir.path(), "in.csv");
    let ran = run_bin(run_with_config(
        &sim,
        &input,
        &dir.path().join("o.csv"),
        &config,
        &[],
    ))
    .await;
    assert_eq!(ran.code, 2, "{}", ran.stderr);
    for needle in [
        "invalid_grant",
        "AADSTS700082",
        "sign in again",
        &refresh_file.display().to_string(),
    ] {
        assert!(
            ran.stderr.contains(needle),
            "missing {needle:?}: {}",
            ran.stderr
        );
    }
    assert!(!ran.stderr.contains("stale-refresh-token-123"));
    assert!(sim.requests().is_empty(), "no PATCH was sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_failing_mid_run_stops_the_run_cleanly() {
    let sim = simulator(SimConfig {
        oauth: Some(SimOAuth {
            fail_after: Some(1),
            ..oauth(Duration::from_secs(1))
        }),
        ..SimConfig::default()
    })
    .await;
    let dir = tempdir();
    let refresh = sim.valid_refresh_tokens().pop().unwrap();
    let (config, _) = auth_config(dir.path(), &sim, &refresh, &SimOAuth::default().client_id);
    let input = Csv::usage_locations(60).write(dir.path(), "in.csv");
    let out = dir.path().join("o.csv");
    let ran = run_bin(run_with_config(
        &sim,
        &input,
        &out,
        &config,
        &["--rate", "20/s"],
    ))
    .await;
    assert_eq!(ran.code, 2, "{}", ran.stderr);
    assert!(
        ran.stderr.contains("invalid_grant") && ran.stderr.contains("STOPPED"),
        "{}",
        ran.stderr
    );
    let results = Results::read(&out);
    let sent = sim.requests();
    assert!(!sent.is_empty() && sent.len() < 60);
    assert_eq!(
        results.count("updated"),
        sent.len(),
        "every request sent is recorded"
    );
    assert_eq!(
        results.count("failed"),
        0,
        "rows that could not get a token were not attempted, not failed"
    );
    assert!(
        ran.stderr
            .contains(&format!("{} rows not attempted", 60 - sent.len())),
        "{}",
        ran.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_401_refreshes_once_and_retries_the_row_and_a_second_401_stops() {
    let sim = simulator(SimConfig {
        oauth: Some(oauth(Duration::from_secs(3600))),
        script: HashMap::from([
            (user(3), vec![Fault::Unauthorized]),
            (user(6), vec![Fault::Unauthorized, Fault::Unauthorized]),
        ]),
        ..SimConfig::default()
    })
    .await;
    let dir = tempdir();
    let refresh = sim.valid_refresh_tokens().pop().unwrap();
    let (config, _) = auth_config(dir.path(), &sim, &refresh, &SimOAuth::default().client_id);
    let input = Csv::usage_locations(8).write(dir.path(), "in.csv");
    let out = dir.path().join("o.csv");
    let ran = run_bin(run_with_config(
        &sim,
        &input,
        &out,
        &config,
        &["--concurrency", "1"],
    ))
    .await;
    assert_eq!(ran.code, 2, "{}", ran.stderr);
    let results = Results::read(&out);
    let r3 = results.line(4);
    assert_eq!(
        (r3["outcome"].as_str(), r3["attempts"].as_str()),
        ("updated", "2"),
        "refreshed and retried"
    );
    let r6 = results.line(7);
    assert_eq!(
        (r6["outcome"].as_str(), r6["http_status"].as_str()),
        ("failed", "401")
    );
    assert!(
        ran.stderr.contains("refused the access token (401)"),
        "{}",
        ran.stderr
    );
    // Initial token, one refresh after each 401.
    assert_eq!(sim.token_requests().len(), 3);
    assert_eq!(results.rows.len(), 6, "nothing after the second 401");
    let seen3 = requests_for(&sim.requests(), user(3));
    assert_ne!(
        seen3[0].header("authorization"),
        seen3[1].header("authorization"),
        "the retry used the new token"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_config_mistakes_fail_before_anything_with_the_key() {
    let dir = tempdir();
    let input = Csv::usage_locations(1).write(dir.path(), "in.csv");
    for (text, message) in [
        (
            "[auth]\ntenant = \"t\"\nclientid = \"x\"\n",
            "unknown key `auth.clientid` (did you mean `client_id`?)",
        ),
        (
            "[auth]\ntenant = \"t\"\nclient_id = \"x\"\n",
            "needs a refresh token: set BULKPATCH_REFRESH_TOKEN or `refresh_token_file`",
        ),
        ("[auth]\nclient_id = \"x\"\n", "needs `tenant`"),
        ("token_file = \"t\"\n[auth]\ntenant = \"t\"\n", "both set"),
    ] {
        let config = dir.path().join("c.toml");
        std::fs::write(&config, text).unwrap();
        let ran = run_bin(bulkpatch(&[
            "run",
            input.to_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
            "--force",
        ]))
        .await;
        assert_eq!(ran.code, 2, "{text}");
        assert!(ran.stderr.contains(message), "{text}: {}", ran.stderr);
    }
}
