//! Issue 11's rough edges and report escaping: Markdown injection, -q, the summary JSON on
//! every way out, JSON logs, the SIGTERM message, a run where nothing connects, audit order
//! and progress, and elapsed_ms measured from the first request.

use std::time::{Duration, Instant};

use bulkpatch::output::reader::{AUDIT_COLUMNS, COLUMNS};
use bulkpatch::simulator::{Fault, SimConfig, SimOAuth};

use crate::support::*;

/// Values that would render as HTML, an image, a link, emphasis, code, a heading or extra
/// table cells if a Markdown report printed them as they are.
const PAYLOADS: [&str; 7] = [
    "<img src=x onerror=alert(1)>",
    "![t](http://evil/x.png)",
    "[link](http://evil.example/)",
    "a|b|c",
    "`code` *em* _em_",
    "# heading\nsecond line",
    "<script>alert(1)</script>",
];

/// Counts the `|` of a table row that are not backslash-escaped.
fn cell_separators(row: &str) -> usize {
    let mut count = 0;
    let mut escaped = false;
    for c in row.chars() {
        match c {
            '\\' if !escaped => escaped = true,
            '|' if !escaped => count += 1,
            _ => escaped = false,
        }
        if c != '\\' {
            escaped = false;
        }
    }
    count
}

/// `]( ` or `![` or `<` anywhere not escaped, and tables whose rows differ from their header.
fn markdown_problems(md: &str) -> Vec<String> {
    let mut problems = Vec::new();
    for bad in [
        "<img", "<script", "![", "](", "http://", "`code`", "*em*", "_em_",
    ] {
        if md.contains(bad) {
            problems.push(format!("the report holds {bad:?}"));
        }
    }
    let mut header: Option<usize> = None;
    for line in md.lines() {
        if line.starts_with('#') && !line.starts_with("# bulkpatch") && !line.starts_with("##") {
            problems.push(format!("a data line became a heading: {line:?}"));
        }
        if !line.starts_with('|') {
            header = None;
            continue;
        }
        let n = cell_separators(line);
        match header {
            None => header = Some(n),
            Some(h) if h != n => problems.push(format!("{n} cells instead of {h}: {line:?}")),
            Some(_) => {}
        }
    }
    problems
}

fn write_csv(path: &std::path::Path, header: &[&str], rows: &[Vec<String>]) {
    let mut w = csv::Writer::from_path(path).unwrap();
    w.write_record(header).unwrap();
    for r in rows {
        w.write_record(r).unwrap();
    }
    w.flush().unwrap();
}

#[tokio::test]
async fn a_markdown_report_shows_hostile_values_as_text() {
    let dir = tempdir();
    // A run's results file: each payload as the line, the ids, the status, the code and the message.
    let results = dir.path().join("run.csv");
    let rows: Vec<Vec<String>> = PAYLOADS
        .iter()
        .enumerate()
        .map(|(i, p)| {
            COLUMNS
                .iter()
                .map(|c| match *c {
                    "line" => format!("{} {p}", i + 2),
                    "customer_id" | "user_id" | "message" | "http_status" | "error_code" => {
                        p.to_string()
                    }
                    "outcome" => "failed".into(),
                    "attempts" | "elapsed_ms" | "throttled" => "1".into(),
                    "finished_at" => "2026-01-01T00:00:00.000Z".into(),
                    _ => String::new(),
                })
                .collect()
        })
        .collect();
    write_csv(&results, &COLUMNS, &rows);
    let md_path = dir.path().join("run.md");
    let ran = run_bin(bulkpatch(&[
        "report",
        results.to_str().unwrap(),
        "--markdown",
        md_path.to_str().unwrap(),
    ]))
    .await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let md = std::fs::read_to_string(&md_path).unwrap();
    let problems = markdown_problems(&md);
    assert!(problems.is_empty(), "{problems:#?}\n{md}");
    assert!(
        md.contains("a\\|b\\|c"),
        "the value is still shown, escaped:\n{md}"
    );

    // An audit file: the payloads as field values (current and desired).
    let audit = dir.path().join("audit.csv");
    let rows: Vec<Vec<String>> = PAYLOADS
        .iter()
        .enumerate()
        .map(|(i, p)| {
            AUDIT_COLUMNS
                .iter()
                .map(|c| match *c {
                    "line" => (i + 2).to_string(),
                    "outcome" => "would_change".into(),
                    "field" => "display_name".into(),
                    "current" | "desired" => p.to_string(),
                    "attempts" => "1".into(),
                    _ => String::new(),
                })
                .collect()
        })
        .collect();
    write_csv(&audit, &AUDIT_COLUMNS, &rows);
    let ran = run_bin(bulkpatch(&["report", audit.to_str().unwrap()])).await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let problems = markdown_problems(&ran.stdout);
    assert!(problems.is_empty(), "{problems:#?}\n{}", ran.stdout);
}

#[tokio::test]
async fn quiet_is_silent_on_success_and_not_on_failure() {
    let dir = tempdir();
    let good = Csv::usage_locations(3).write(dir.path(), "good.csv");
    let ran = run_bin(bulkpatch(&[
        "run",
        good.to_str().unwrap(),
        "--dry-run",
        "-q",
        "--out",
        dir.path().join("good.results.csv").to_str().unwrap(),
    ]))
    .await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert_eq!(ran.stderr, "");
    let bad = Csv::usage_locations(2)
        .row(&[&customer(1).to_string(), &user(9).to_string(), "XX"])
        .write(dir.path(), "bad.csv");
    let ran = run_bin(bulkpatch(&[
        "run",
        bad.to_str().unwrap(),
        "--dry-run",
        "-q",
        "--out",
        dir.path().join("bad.results.csv").to_str().unwrap(),
    ]))
    .await;
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    assert!(ran.stderr.contains("invalid 1"), "{}", ran.stderr);
}

fn read_json(path: &std::path::Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("no summary JSON at {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_summary_json_is_written_when_the_token_is_refused() {
    let sim = simulator(SimConfig {
        oauth: Some(SimOAuth::default()),
        ..SimConfig::default()
    })
    .await;
    let dir = tempdir();
    let (config, _) = auth_config(
        dir.path(),
        &sim,
        "stale-refresh-token-123",
        &SimOAuth::default().client_id,
    );
    let input = Csv::usage_locations(3).write(dir.path(), "in.csv");
    let summary = dir.path().join("summary.json");
    let ran = run_bin(run_with_config(
        &sim,
        &input,
        &dir.path().join("o.csv"),
        &config,
        &["--summary-json", summary.to_str().unwrap()],
    ))
    .await;
    assert_eq!(ran.code, 2, "{}", ran.stderr);
    let json = read_json(&summary);
    assert_eq!(json["exit_code"], 2);
    let stopped = json["stopped"].as_str().unwrap_or_default();
    assert!(stopped.contains("invalid_grant"), "{json}");
    assert!(!json.to_string().contains("stale-refresh-token-123"));
}

/// A results file that cannot grow (as on a full disk): the run stops, and its summary JSON
/// (another file) says why.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_summary_json_is_written_when_a_write_error_stops_the_run() {
    let sim = simulator(SimConfig::default()).await;
    let dir = tempdir();
    let input = Csv::usage_locations(200).write(dir.path(), "in.csv");
    let out = dir.path().join("out.csv");
    let summary = dir.path().join("summary.json");
    let summary_arg = summary.display().to_string();
    let ran = run_with_full_disk(&sim, &input, &out, &["--summary-json", &summary_arg]).await;
    assert_eq!(ran.code, 2, "{}", ran.stderr);
    let json = read_json(&summary);
    assert_eq!(json["exit_code"], 2);
    assert!(
        json["stopped"]
            .as_str()
            .is_some_and(|s| s.contains("could not be written")),
        "{json}"
    );

    // A report that cannot be written ends the run with an error: the summary JSON says so.
    std::fs::remove_file(&summary).unwrap();
    // (a directory where the report should go: its parent exists, so only writing it fails)
    let report = dir.path().join("report.html");
    std::fs::create_dir(&report).unwrap();
    let ran = run_bin(run_against(
        &sim,
        &Csv::usage_locations(2).write(dir.path(), "two.csv"),
        &dir.path().join("two.results.csv"),
        &[
            "--report",
            report.to_str().unwrap(),
            "--summary-json",
            summary.to_str().unwrap(),
        ],
    ))
    .await;
    assert_eq!(ran.code, 2, "{}", ran.stderr);
    let json = read_json(&summary);
    assert_eq!(json["exit_code"], 2, "{json}");
    assert!(
        json["stopped"]
            .as_str()
            .is_some_and(|s| s.contains("cannot write the report")),
        "{json}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_put_every_line_summary_and_errors_included_in_json() {
    let sim = simulator(SimConfig::default()).await;
    let dir = tempdir();
    let input = Csv::usage_locations(5)
        .row(&[&customer(1).to_string(), &user(9).to_string(), "XX"])
        .write(dir.path(), "in.csv");
    let config = dir.path().join("c.toml");
    std::fs::write(&config, "progress_interval = \"100ms\"\n").unwrap();
    let ran = run_bin(run_against(
        &sim,
        &input,
        &dir.path().join("o.csv"),
        &[
            "--log-format",
            "json",
            "--rate",
            "50/s",
            "--config",
            config.to_str().unwrap(),
        ],
    ))
    .await;
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    let mut summary = None;
    for line in ran.stderr.lines() {
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}\n{}", ran.stderr));
        if v["fields"]["message"] == "summary" {
            summary = Some(v);
        }
    }
    let summary = summary.unwrap_or_else(|| panic!("no summary event:\n{}", ran.stderr));
    assert_eq!(summary["fields"]["rows"], 6, "{summary}");
    assert_eq!(summary["fields"]["exit_code"], 1, "{summary}");
    assert!(
        summary["fields"]["outcomes"]
            .as_str()
            .is_some_and(|o| o.contains("\"updated\":5")),
        "{summary}"
    );

    // A fatal error is JSON too.
    let bad = Csv::new(&["customer_id", "user_id", "usage_locaton"]).write(dir.path(), "bad.csv");
    let ran = run_bin(run_against(
        &sim,
        &bad,
        &dir.path().join("o2.csv"),
        &["--log-format", "json"],
    ))
    .await;
    assert_eq!(ran.code, 2, "{}", ran.stderr);
    let lines: Vec<&str> = ran.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{}", ran.stderr);
    let v: serde_json::Value = serde_json::from_str(lines[0]).expect("a JSON error line");
    assert_eq!(v["level"], "ERROR");
    assert!(v["fields"]["error"]
        .as_str()
        .is_some_and(|e| e.contains("usage_locaton")));

    // So is a command line the parser refuses.
    let ran = run_bin(bulkpatch(&[
        "run",
        bad.to_str().unwrap(),
        "--log-format",
        "json",
        "--no-such-flag",
    ]))
    .await;
    assert_eq!(ran.code, 2, "{}", ran.stderr);
    let lines: Vec<&str> = ran.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{}", ran.stderr);
    let v: serde_json::Value = serde_json::from_str(lines[0]).expect("a JSON error line");
    assert!(v["fields"]["error"]
        .as_str()
        .is_some_and(|e| e.contains("--no-such-flag")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_where_nothing_connects_stops_after_a_few_attempts() {
    // A port nothing listens on: every connection is refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempdir();
    let input = Csv::usage_locations(50).write(dir.path(), "in.csv");
    let out = dir.path().join("out.csv");
    let summary = dir.path().join("summary.json");
    let base = format!("http://127.0.0.1:{port}/v1");
    let mut cmd = bulkpatch(&[
        "run",
        input.to_str().unwrap(),
        "--base-url",
        &base,
        "--out",
        out.to_str().unwrap(),
        "--concurrency",
        "2",
        "--max-attempts",
        "6",
        "--summary-json",
        summary.to_str().unwrap(),
    ]);
    cmd.env("BULKPATCH_TOKEN", "token-for-a-closed-port");
    let started = Instant::now();
    let ran = run_bin(cmd).await;
    assert_eq!(ran.code, 2, "{}", ran.stderr);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "it took {:?}",
        started.elapsed()
    );
    assert!(
        ran.stderr.contains("nothing connects") && ran.stderr.contains("127.0.0.1"),
        "{}",
        ran.stderr
    );
    assert!(
        ran.stderr.to_lowercase().contains("refused"),
        "{}",
        ran.stderr
    );
    let json = read_json(&summary);
    let attempts = json["attempts"].as_u64().unwrap();
    assert!(attempts <= 4, "{attempts} attempts: {json}");
    // Rows not sent have no record; those tried failed with no response: a resume sends both.
    let results = Results::read(&out);
    assert!(results.rows.len() <= 2, "{} records", results.rows.len());
    assert!(results
        .rows
        .iter()
        .all(|r| r["outcome"] == "failed" && r["http_status"].is_empty()));
    // Once the API can be reached, a resume sends every row.
    let sim = simulator(SimConfig::default()).await;
    let ran = run_bin(run_against(&sim, &input, &out, &["--resume"])).await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert_eq!(Results::read(&out).count("updated"), 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_audit_file_is_in_line_order_and_its_progress_shows_audit_outcomes() {
    // The first row's GET is slow, so its records are written after the others'.
    let mut script = std::collections::HashMap::new();
    script.insert(user(1), vec![Fault::Slow(Duration::from_millis(400))]);
    let sim = simulator(SimConfig {
        script,
        ..SimConfig::default()
    })
    .await;
    let dir = tempdir();
    let mut csv = Csv::new(&["customer_id", "user_id", "usage_location", "display_name"]);
    for i in 1..=8 {
        csv = csv.row(&[
            &customer(1).to_string(),
            &user(i).to_string(),
            "DE",
            &format!("User {i}"),
        ]);
    }
    let input = csv.write(dir.path(), "in.csv");
    let out = dir.path().join("in.audit.csv");
    let config = dir.path().join("c.toml");
    std::fs::write(&config, "progress_interval = \"100ms\"\n").unwrap();
    let mut args = vec![
        "audit".to_string(),
        input.display().to_string(),
        "--base-url".into(),
        sim.base_url(),
        "--out".into(),
        out.display().to_string(),
        "--concurrency".into(),
        "4".into(),
        "--rate".into(),
        "unlimited".into(),
        "--config".into(),
        config.display().to_string(),
    ];
    args.retain(|a| !a.is_empty());
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut cmd = bulkpatch(&refs);
    cmd.env("BULKPATCH_TOKEN", sim.token());
    let ran = run_bin(cmd).await;
    assert!(ran.code <= 1, "{}", ran.stderr);
    // Run again on the same audit file: audit has no --resume, so the message does not offer it.
    let mut again = bulkpatch(&refs);
    again.env("BULKPATCH_TOKEN", sim.token());
    let refused = run_bin(again).await;
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("--force") && !refused.stderr.contains("--resume"),
        "{}",
        refused.stderr
    );
    let records = Results::read(&out).rows;
    let order: Vec<(u64, String)> = records
        .iter()
        .map(|r| (r["line"].parse().unwrap(), r["field"].clone()))
        .collect();
    let mut sorted = order.clone();
    sorted.sort_by_key(|(line, _)| *line);
    assert_eq!(order, sorted, "records in line order");
    for pair in order.chunks(2) {
        assert_eq!(pair[0].0, pair[1].0, "a row's fields together: {order:?}");
        assert_eq!(
            (pair[0].1.as_str(), pair[1].1.as_str()),
            ("usageLocation", "displayName"),
            "in field order: {order:?}"
        );
    }
    let progress: Vec<&str> = ran
        .stderr
        .lines()
        .filter(|l| l.contains("progress:"))
        .collect();
    assert!(!progress.is_empty(), "{}", ran.stderr);
    assert!(
        progress
            .iter()
            .all(|l| l.contains("would change") && !l.contains("updated")),
        "{progress:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn elapsed_ms_does_not_count_the_wait_behind_the_rate_limit() {
    let sim = simulator(SimConfig::default()).await;
    let dir = tempdir();
    let input = Csv::usage_locations(4).write(dir.path(), "in.csv");
    let out = dir.path().join("out.csv");
    let started = Instant::now();
    let ran = run_bin(run_against(
        &sim,
        &input,
        &out,
        &["--rate", "4/s", "--concurrency", "4"],
    ))
    .await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    // The fourth row waited ~0.75 s for its turn, yet each request took a few ms.
    assert!(started.elapsed() >= Duration::from_millis(700));
    let results = Results::read(&out);
    for r in &results.rows {
        let ms: u64 = r["elapsed_ms"].parse().unwrap();
        assert!(ms < 250, "line {}: elapsed_ms {ms}", r["line"]);
    }
}
