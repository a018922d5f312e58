//! A customer that refuses the partner as a whole (403 20002, 404 60003): after a few refusals
//! in a row its other rows are recorded without a request, other customers go on, and
//! `--resume --retry-failed` sends the held rows once the customer accepts.

use bulkpatch::simulator::{RecordedRequest, SimConfig};
use uuid::Uuid;

use crate::support::*;

/// The refusals in a row after which a customer is held back (`send::tenants::THRESHOLD`).
const THRESHOLD: usize = 3;
const CONCURRENCY: usize = 2;

/// `rows` rows alternating between customer 1 (users 1, 3, ...) and customer 2 (users 2, 4, ...).
fn two_customers(rows: u32) -> Csv {
    let mut csv = Csv::new(&["customer_id", "user_id", "usage_location"]);
    for i in 1..=rows {
        let c = customer(2 - i % 2);
        csv = csv.row(&[&c.to_string(), &user(i).to_string(), "DE"]);
    }
    csv
}

fn to_customer(requests: &[RecordedRequest], c: Uuid) -> usize {
    let needle = format!("/customers/{c}/");
    requests.iter().filter(|r| r.path.contains(&needle)).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_without_a_relationship_is_not_sent_its_other_rows_until_retried() {
    let refusing = simulator(SimConfig {
        forbidden_customers: [customer(2)].into(),
        ..SimConfig::default()
    })
    .await;
    let dir = tempdir();
    let input = two_customers(40).write(dir.path(), "in.csv");
    let out = dir.path().join("out.csv");
    let args = ["--rate", "unlimited", "--concurrency", "2"];
    let ran = run_bin(run_against(&refusing, &input, &out, &args)).await;
    assert_eq!(ran.code, 1, "{}", ran.stderr);

    let requests = refusing.requests();
    let sent = to_customer(&requests, customer(2));
    println!("requests to the refusing customer: {sent} of its 20 rows");
    assert!(
        (THRESHOLD..THRESHOLD + CONCURRENCY).contains(&sent),
        "the refusing customer got {sent} requests"
    );
    assert_eq!(to_customer(&requests, customer(1)), 20);
    let results = Results::read(&out);
    assert_eq!(results.count("updated"), 20);
    let c2 = customer(2).to_string();
    let refused: Vec<_> = results
        .rows
        .iter()
        .filter(|r| r["customer_id"] == c2)
        .collect();
    assert_eq!(refused.len(), 20);
    for r in &refused {
        assert_eq!(
            (
                r["outcome"].as_str(),
                r["http_status"].as_str(),
                r["error_code"].as_str()
            ),
            ("failed", "403", "20002"),
            "{r:?}"
        );
    }
    let held: Vec<_> = refused.iter().filter(|r| r["attempts"] == "0").collect();
    assert_eq!(held.len(), 20 - sent, "every other row is held, unsent");
    // "refused 3 rows in a row", or more when requests in flight were refused meanwhile.
    let (start, end) = (
        format!("not sent: customer {c2} refused "),
        " rows in a row (403, code 20002: no relationship); \
         once it accepts requests, run again with --resume --retry-failed",
    );
    for r in &held {
        let count = r["message"]
            .strip_prefix(&start)
            .and_then(|m| m.strip_suffix(end))
            .and_then(|n| n.parse::<usize>().ok());
        assert!(
            count.is_some_and(|n| (THRESHOLD..=sent).contains(&n)),
            "{r:?}"
        );
    }

    // The customer accepts now. A plain --resume leaves the held rows alone...
    let accepting = simulator(SimConfig::default()).await;
    let mut resume = args.to_vec();
    resume.push("--resume");
    let ran = run_bin(run_against(&accepting, &input, &out, &resume)).await;
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    assert_eq!(accepting.requests().len(), 0, "a plain resume sent rows");

    // ... and --retry-failed sends every row of the customer, once.
    resume.push("--retry-failed");
    let ran = run_bin(run_against(&accepting, &input, &out, &resume)).await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let requests = accepting.requests();
    assert_eq!(to_customer(&requests, customer(1)), 0);
    for i in (2..=40).step_by(2) {
        assert_eq!(requests_for(&requests, user(i)).len(), 1, "user {i}");
    }
    let results = Results::read(&out);
    assert_eq!((results.rows.len(), results.count("updated")), (40, 40));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_audit_stops_reading_a_customer_whose_tenant_is_not_found() {
    let sim = simulator(SimConfig {
        unknown_customers: [customer(2)].into(),
        ..SimConfig::default()
    })
    .await;
    let dir = tempdir();
    let input = two_customers(20).write(dir.path(), "in.csv");
    let out = dir.path().join("audit.csv");
    let mut cmd = bulkpatch(&[
        "audit",
        input.to_str().unwrap(),
        "--base-url",
        &sim.base_url(),
        "--out",
        out.to_str().unwrap(),
        "--rate",
        "unlimited",
        "--concurrency",
        "2",
    ]);
    cmd.env("BULKPATCH_TOKEN", sim.token());
    let ran = run_bin(cmd).await;
    assert_eq!(ran.code, 1, "{}", ran.stderr);

    let requests = sim.requests();
    let sent = to_customer(&requests, customer(2));
    assert!(
        (THRESHOLD..THRESHOLD + CONCURRENCY).contains(&sent),
        "the unknown customer got {sent} requests"
    );
    assert_eq!(to_customer(&requests, customer(1)), 10);
    let results = Results::read(&out);
    let c2 = customer(2).to_string();
    let rows: Vec<_> = results
        .rows
        .iter()
        .filter(|r| r["customer_id"] == c2)
        .collect();
    assert_eq!(rows.len(), 10);
    assert!(
        rows.iter()
            .all(|r| (r["outcome"].as_str(), r["error_code"].as_str()) == ("not_found", "60003")),
        "{rows:?}"
    );
    let held = rows
        .iter()
        .filter(|r| r["message"].starts_with("not read: customer"))
        .count();
    assert_eq!(held, 10 - sent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_waiting_for_the_pacer_when_their_customer_is_refused_are_not_sent() {
    let sim = simulator(SimConfig {
        forbidden_customers: [customer(2)].into(),
        ..SimConfig::default()
    })
    .await;
    let dir = tempdir();
    let input = two_customers(40).write(dir.path(), "in.csv");
    let out = dir.path().join("out.csv");
    // Customer 2's requests 100 ms apart: most of the 8 workers soon wait for its next turn,
    // each holding one of its rows, while the first refusals come back within a few ms.
    let args = [
        "--rate",
        "unlimited",
        "--per-customer-rate",
        "10/s",
        "--concurrency",
        "8",
    ];
    let ran = run_bin(run_against(&sim, &input, &out, &args)).await;
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    let sent = to_customer(&sim.requests(), customer(2));
    // One more than the threshold for an answer slower than the 100 ms between requests.
    assert!(
        (THRESHOLD..=THRESHOLD + 1).contains(&sent),
        "the refusing customer got {sent} requests"
    );
    let results = Results::read(&out);
    assert_eq!(results.count("updated"), 20);
    assert_eq!(results.count("failed"), 20);
}
