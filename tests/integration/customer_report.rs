//! The reports' per-customer table (rows, updated, problems and 429s per customer) and the
//! summary's customer counts.

use std::collections::HashMap;

use bulkpatch::simulator::{Fault, SimConfig};

use crate::support::*;

const SCRIPT: &str = "<script>alert(1)</script>";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_count_rows_problems_and_429s_per_customer() {
    let sim = simulator(SimConfig {
        unknown_users: [user(3)].into(),
        script: HashMap::from([(user(4), vec![Fault::Throttle { retry_after: 1 }])]),
        ..SimConfig::default()
    })
    .await;
    let dir = tempdir();
    let (c1, c2, c3) = (
        customer(1).to_string(),
        customer(2).to_string(),
        customer(3).to_string(),
    );
    let input = Csv::new(&["customer_id", "user_id", "usage_location"])
        .row(&[&c1, &user(1).to_string(), "DE"])
        .row(&[&c2, &user(3).to_string(), "DE"]) // failed: 404
        .row(&[&c1, &user(2).to_string(), "DE"])
        .row(&[&c2, &user(4).to_string(), "DE"]) // one 429, then updated
        .row(&[&c3, &user(5).to_string(), "DE"])
        .row(&[SCRIPT, &user(6).to_string(), "DE"]) // invalid
        .write(dir.path(), "in.csv");
    let out = dir.path().join("out.csv");
    let json = dir.path().join("summary.json");
    let args = [
        "--rate",
        "unlimited",
        "--summary-json",
        json.to_str().unwrap(),
    ];
    let ran = run_bin(run_against(&sim, &input, &out, &args)).await;
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    // The summary counts customers, and those with a problem row (c2's 404, the invalid id).
    assert!(
        ran.stderr.contains("customers: 4, 2 with problem rows"),
        "{}",
        ran.stderr
    );
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(summary["customers"], 4);
    assert_eq!(summary["customers_with_problems"], 2);
    let (html, md) = (dir.path().join("r.html"), dir.path().join("r.md"));
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
    let section = &markdown[markdown.find("## Per customer").expect("the section")..];
    assert!(
        section.contains("4 customers, 2 with problem rows"),
        "{section}"
    );
    // Most problem rows first, then most rows; columns: rows, updated, failed, other
    // problems, 429s, pace.
    let lines: Vec<&str> = section.lines().filter(|l| l.starts_with("| ")).collect();
    let escaped = bulkpatch::report::markdown::escape(SCRIPT);
    let expected = [
        format!("| {c2} | 2 | 1 | 1 | 0 | 1 | "),
        format!("| {escaped} | 1 | 0 | 0 | 1 | 0 | - |"),
        format!("| {c1} | 2 | 2 | 0 | 0 | 0 | "),
        format!("| {c3} | 1 | 1 | 0 | 0 | 0 | - |"),
    ];
    assert_eq!(lines.len(), 5, "a header and four customers:\n{section}");
    for (line, want) in lines[1..].iter().zip(&expected) {
        assert!(
            line.starts_with(want.as_str()),
            "{line:?} should start {want:?}"
        );
    }

    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("<h2>Per customer</h2>"));
    let row = format!(
        "<tr><td>{c2}</td><td class=\"num\">2</td><td class=\"num\">1</td><td class=\"num\">1</td><td class=\"num\">0</td><td class=\"num\">1</td>"
    );
    assert!(page.contains(&row), "{page}");
    assert!(
        !page.contains(SCRIPT),
        "a customer id never renders as markup"
    );
}
