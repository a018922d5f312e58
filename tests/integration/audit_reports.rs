//! Audits that read live state, `run --skip-unchanged`, and the HTML and Markdown reports.

use std::collections::HashMap;

use bulkpatch::simulator::{Fault, SimConfig, Simulator};
use serde_json::json;

use crate::support::*;

const SCRIPT: &str = "<script>alert(1)</script>";

/// A simulator and an input with one row of each audit outcome.
async fn audit_fixture(dir: &std::path::Path) -> (Simulator, std::path::PathBuf) {
    let sim = simulator(SimConfig {
        unknown_users: [user(3)].into(),
        forbidden_customers: [customer(2)].into(),
        script: HashMap::from([(user(6), vec![Fault::Status(500); 10])]),
        ..SimConfig::default()
    })
    .await;
    sim.seed_user(customer(1), user(1), json!({"usageLocation": "DE"}));
    sim.seed_user(customer(1), user(2), json!({"usageLocation": "US"}));
    sim.seed_user(
        customer(1),
        user(7),
        json!({"usageLocation": "DE", "displayName": "Old Name"}),
    );
    let c1 = customer(1).to_string();
    let input = Csv::new(&[
        "customer_id",
        "user_id",
        "usage_location",
        "display_name",
        "password",
    ])
    .row(&[&c1, &user(1).to_string(), "de", "", ""]) // 2 unchanged
    .row(&[&c1, &user(2).to_string(), "DE", "", ""]) // 3 would_change US -> DE
    .row(&[&c1, &user(3).to_string(), "DE", "", ""]) // 4 not_found
    .row(&[&customer(2).to_string(), &user(4).to_string(), "DE", "", ""]) // 5 forbidden
    .row(&[&c1, &user(5).to_string(), "XX", "", ""]) // 6 invalid
    .row(&[&c1, &user(6).to_string(), "DE", "", ""]) // 7 failed (500s)
    .row(&[&c1, &user(7).to_string(), "DE", SCRIPT, "Renew456*"]) // 8 would_change name and password
    .write(dir, "audit.csv");
    (sim, input)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_audit_reads_compares_and_never_writes() {
    let dir = tempdir();
    let (sim, input) = audit_fixture(dir.path()).await;
    let out = dir.path().join("audit.out.csv");
    let report = dir.path().join("audit.html");
    let mut cmd = bulkpatch(&[
        "audit",
        input.to_str().unwrap(),
        "--base-url",
        &sim.base_url(),
        "--out",
        out.to_str().unwrap(),
        "--max-attempts",
        "2",
        "--report",
        report.to_str().unwrap(),
    ]);
    cmd.env("BULKPATCH_TOKEN", sim.token());
    let ran = run_bin(cmd).await;
    assert_eq!(
        ran.code, 1,
        "not found, forbidden, invalid and failed rows: {}",
        ran.stderr
    );
    let requests = sim.requests();
    assert!(
        requests.iter().all(|r| r.method == "GET"),
        "an audit never writes"
    );
    assert_eq!(
        requests.len(),
        7,
        "one GET per valid row, two for the failing one"
    );

    let lines = Results::read(&out);
    assert_eq!(
        lines.header,
        [
            "line",
            "customer_id",
            "user_id",
            "outcome",
            "field",
            "current",
            "desired",
            "http_status",
            "error_code",
            "message",
            "attempts",
            "elapsed_ms",
            "request_id",
            "correlation_id",
            "finished_at",
            "user_principal_name",
            "customer_domain",
            "context"
        ]
    );
    let got: Vec<(String, String, String, String, String)> = lines
        .rows
        .iter()
        .map(|r| {
            (
                r["line"].clone(),
                r["outcome"].clone(),
                r["field"].clone(),
                r["current"].clone(),
                r["desired"].clone(),
            )
        })
        .collect();
    let want: Vec<(&str, &str, &str, &str, &str)> = vec![
        ("2", "unchanged", "usageLocation", "DE", "DE"),
        ("3", "would_change", "usageLocation", "US", "DE"),
        ("4", "not_found", "", "", ""),
        ("5", "forbidden", "", "", ""),
        ("6", "invalid", "", "", ""),
        ("7", "failed", "", "", ""),
        ("8", "would_change", "displayName", "Old Name", SCRIPT),
        ("8", "would_change", "password", "", ""),
    ];
    let mut got_sorted = got.clone();
    got_sorted.sort();
    let mut want: Vec<(String, String, String, String, String)> = want
        .into_iter()
        .map(|(a, b, c, d, e)| (a.into(), b.into(), c.into(), d.into(), e.into()))
        .collect();
    want.sort();
    assert_eq!(got_sorted, want);
    assert_eq!(
        lines.rows.iter().find(|r| r["line"] == "4").unwrap()["error_code"],
        "60002"
    );
    assert_eq!(
        lines.rows.iter().find(|r| r["line"] == "5").unwrap()["error_code"],
        "20002"
    );
    assert!(!std::fs::read_to_string(&out).unwrap().contains("Renew456*"));

    // The HTML report: numbers, per-field table, escaping.
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(html.contains("Audit plan: audit.csv"), "title");
    assert!(
        html.contains("usageLocation: 1 would change, 1 already as desired"),
        "{html}"
    );
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;")
            || html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "escaped"
    );
    assert!(
        !html.contains(SCRIPT),
        "a value from the input must show as text"
    );
    assert!(
        html.contains("User not found") && html.contains("No relationship"),
        "codes explained"
    );
    for fetch in ["<script", "src=", "href=\"http", "url(", "@import", "<link"] {
        assert!(!html.contains(fetch), "self-contained: found {fetch}");
    }
    assert!(html.contains("<svg"), "an inline chart");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skip_unchanged_sends_no_patch_for_rows_already_as_desired() {
    let sim = simulator(SimConfig::default()).await;
    sim.seed_user(customer(1), user(1), json!({"usageLocation": "DE"}));
    sim.seed_user(customer(1), user(2), json!({"usageLocation": "US"}));
    let dir = tempdir();
    let input = Csv::usage_locations(2).write(dir.path(), "in.csv");
    let out = dir.path().join("out.csv");
    let ran = run_bin(run_against(&sim, &input, &out, &["--skip-unchanged"])).await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let patches: Vec<_> = sim
        .requests()
        .into_iter()
        .filter(|r| r.method == "PATCH")
        .collect();
    assert_eq!(patches.len(), 1);
    assert!(patches[0].path.ends_with(&user(2).to_string()));
    let results = Results::read(&out);
    assert_eq!(
        (
            results.line(2)["outcome"].as_str(),
            results.line(2)["attempts"].as_str()
        ),
        ("unchanged", "1")
    );
    assert_eq!(
        (
            results.line(3)["outcome"].as_str(),
            results.line(3)["attempts"].as_str()
        ),
        ("updated", "2")
    );
    assert_eq!(
        sim.user(customer(1), user(2)).unwrap()["usageLocation"],
        "DE"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_reports_have_the_numbers_and_render_in_a_browser() {
    let sim = simulator(SimConfig {
        unknown_users: [user(2)].into(),
        script: HashMap::from([(user(3), vec![Fault::Throttle { retry_after: 1 }])]),
        ..SimConfig::default()
    })
    .await;
    let dir = tempdir();
    let input = Csv::usage_locations(5)
        .row(&["bad", &user(9).to_string(), "DE"])
        .write(dir.path(), "in.csv");
    let out = dir.path().join("out.csv");
    assert_eq!(
        run_bin(run_against(&sim, &input, &out, &["--rate", "unlimited"]))
            .await
            .code,
        1
    );
    let html = dir.path().join("r.html");
    let md = dir.path().join("r.md");
    let ran = run_bin(bulkpatch(&[
        "report",
        out.to_str().unwrap(),
        "--html",
        html.to_str().unwrap(),
        "--markdown",
        md.to_str().unwrap(),
    ]))
    .await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let markdown = std::fs::read_to_string(&md).unwrap();
    for needle in [
        "| rows | 6 |",
        "| updated | 4 |",
        "| failed | 1 |",
        "| invalid | 1 |",
        "6 sent, 1 answered 429",
        "| failed | 404 | 60002 | 1 | User not found",
    ] {
        assert!(
            markdown.contains(needle),
            "missing {needle:?} in\n{markdown}"
        );
    }
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(
        page.contains("Run report: in.csv")
            && page.contains("Throughput over time")
            && page.contains("Latency per row")
    );
    assert_eq!(
        page.matches("<svg").count(),
        3,
        "outcomes, throughput and latency charts"
    );

    // A real browser renders it, offline.
    let Some(chromium) = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find_map(which)
    else {
        println!("SKIPPED the browser check: no chromium on PATH (apt-get install chromium)");
        return;
    };
    let profile = tempdir();
    let out = std::process::Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-quic",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", html.display()))
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        dom.contains("Run report: in.csv") && dom.contains("<svg"),
        "the browser rendered the page: {}",
        &dom[..dom.len().min(500)]
    );
}

fn which(name: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    })
}
