//! The `demo` and `simulate` commands, and progress output when stderr is not a terminal.

use std::io::{BufRead, BufReader};
use std::time::Duration;

use bulkpatch::simulator::SimConfig;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_runs_the_sample_against_the_simulator() {
    let dir = tempdir();
    let out = dir.path().join("demo.csv");
    let ran = run_bin(bulkpatch(&["demo", "--out", out.to_str().unwrap()])).await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let results = Results::read(&out);
    let data_rows = bulkpatch::demo::SAMPLE_CSV.lines().count() - 1;
    assert_eq!(results.rows.len(), data_rows);
    // The sample's deliberate problems, and everything else updated.
    assert_eq!(results.count("invalid"), 5);
    assert_eq!(results.count("failed"), 2);
    assert_eq!(results.count("updated"), data_rows - 7);
    assert!(
        results.line(12)["message"].contains("GB"),
        "{:?}",
        results.line(12)
    );
    assert!(ran.stderr.contains("deliberate"), "{}", ran.stderr);
    // Then export -> edit -> run --fields usage_location, next to the results file.
    assert!(ran.stderr.contains("Exported 30 users"), "{}", ran.stderr);
    let exported = std::fs::read_to_string(dir.path().join("contoso-users.csv")).unwrap();
    assert!(exported.starts_with("customer_id,customer_domain,user_id,user_principal_name"));
    let edited = Results::read(&dir.path().join("contoso-users.results.csv"));
    assert_eq!(edited.count("updated"), 30);
    assert!(edited
        .rows
        .iter()
        .all(|r| r["user_principal_name"].contains('@')));
    // Last, three tenants through Graph in batches: the one without GDAP fails only its rows.
    let graph = Results::read(&dir.path().join("graph-job-titles.results.csv"));
    assert_eq!(graph.count("updated"), 80);
    assert_eq!(graph.count("failed"), 40);
    assert!(graph
        .rows
        .iter()
        .filter(|r| r["outcome"] == "failed")
        .all(|r| r["error_code"] == "AADSTS50020" && r["attempts"] == "0"));
    assert!(ran.stderr.contains(" batches ("), "{}", ran.stderr);
}

#[test]
fn simulate_prints_its_url_and_token_and_serves_the_api() {
    let mut child = bulkpatch(&[
        "simulate",
        "--port",
        "0",
        "--token",
        "tok-123",
        "--unknown-user",
        &user(2).to_string(),
    ])
    .spawn()
    .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let mut base = None;
    let mut token = None;
    for line in lines.by_ref().take(4) {
        let line = line.unwrap();
        if let Some(v) = line.trim().strip_prefix("base URL:") {
            base = Some(v.trim().to_string());
        }
        if let Some(v) = line.trim().strip_prefix("token:") {
            token = Some(v.trim().to_string());
        }
    }
    let (base, token) = (base.expect("a base URL line"), token.expect("a token line"));
    assert_eq!(token, "tok-123");
    assert!(base.starts_with("http://127.0.0.1:"), "{base}");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let statuses = rt.block_on(async {
        let http = reqwest::Client::new();
        let mut statuses = Vec::new();
        for u in [user(1), user(2)] {
            let r = http
                .patch(format!("{base}/v1/customers/{}/users/{u}", customer(1)))
                .bearer_auth(&token)
                .json(&serde_json::json!({"usageLocation": "DE", "attributes": {"objectType": "CustomerUser"}}))
                .send()
                .await
                .unwrap();
            statuses.push(r.status().as_u16());
        }
        statuses
    });
    child.kill().unwrap();
    let _ = child.wait();
    assert_eq!(statuses, [200, 404]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_terminal_progress_is_a_periodic_log_line() {
    let sim = simulator(SimConfig {
        latency: Duration::from_millis(50),
        ..SimConfig::default()
    })
    .await;
    let dir = tempdir();
    let input = Csv::usage_locations(30).write(dir.path(), "in.csv");
    let config = dir.path().join("c.toml");
    std::fs::write(&config, "progress_interval = \"100ms\"\n").unwrap();
    let ran = run_bin(run_against(
        &sim,
        &input,
        &dir.path().join("out.csv"),
        &["--rate", "50/s", "--config", config.to_str().unwrap()],
    ))
    .await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let progress: Vec<&str> = ran
        .stderr
        .lines()
        .filter(|l| l.contains("progress:"))
        .collect();
    assert!(progress.len() >= 3, "{}", ran.stderr);
    assert!(
        progress[0].contains("/30 rows")
            && progress[0].contains("rows/s")
            && progress[0].contains("ETA"),
        "{}",
        progress[0]
    );
    assert!(
        !ran.stderr.contains('\u{1b}'),
        "no terminal escapes when stderr is not a terminal"
    );

    // -q: nothing at all on success (cron mails only failures); the summary JSON is written.
    let summary = dir.path().join("summary.json");
    let ran = run_bin(run_against(
        &sim,
        &input,
        &dir.path().join("out2.csv"),
        &[
            "--rate",
            "50/s",
            "-q",
            "--config",
            config.to_str().unwrap(),
            "--summary-json",
            summary.to_str().unwrap(),
        ],
    ))
    .await;
    assert_eq!(ran.code, 0);
    assert_eq!(ran.stderr, "", "-q prints nothing on success");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    assert_eq!(json["outcomes"]["updated"], 30);
}
