//! `--target graph` writes in `$batch` requests (`--batch N`) against the simulator: each row
//! answered by its own sub-response (a 429 sent again alone after its `Retry-After`, a 4xx
//! final), the batch's own 503 and a dropped batch sent again whole, one record per row with
//! its own attempts and ids (the same shape as single requests), fewer than 0.1 requests per
//! row, a resume, and `--batch` refused where it cannot apply.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use bulkpatch::simulator::{Fault, RecordedRequest, SimConfig, SimGraph, Simulator, Throttle};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::support::*;

const BATCH_PATH: &str = "/graph/v1.0/$batch";

/// `bulkpatch run INPUT` through Graph, unpaced, plus `extra`.
fn graph_run(sim: &Simulator, input: &Path, out: &Path, extra: &[&str]) -> Command {
    let mut args = vec!["--rate", "unlimited"];
    if !extra.contains(&"--per-customer-rate") {
        // Not Graph's documented 20/s per tenant either: these tests are about batches.
        args.extend_from_slice(&["--per-customer-rate", "unlimited"]);
    }
    args.extend_from_slice(extra);
    graph_command(sim, "run", input, out, &args)
}

/// The `$batch` requests received, in order.
fn batches(sim: &Simulator) -> Vec<RecordedRequest> {
    let all = sim.requests();
    assert!(
        all.iter().all(|r| r.path == BATCH_PATH),
        "only $batch requests: {:?}",
        all.iter().map(|r| &r.path).collect::<Vec<_>>()
    );
    all
}

/// The sub-requests of a `$batch` request: (user id, client-request-id, request-id).
fn subs(batch: &RecordedRequest) -> Vec<(Uuid, String, String)> {
    let body = batch.body_json().expect("a JSON batch");
    body["requests"]
        .as_array()
        .expect("requests[]")
        .iter()
        .map(|s| {
            let url = s["url"].as_str().unwrap();
            let id = url.strip_prefix("/users/").unwrap().parse().unwrap();
            let h = &s["headers"];
            let text = |v: &Value| v.as_str().unwrap().to_string();
            (id, text(&h["client-request-id"]), text(&h["request-id"]))
        })
        .collect()
}

/// The results record of `user`.
fn record_of(results: &Results, user: Uuid) -> &HashMap<String, String> {
    let id = user.to_string();
    let mut found = results.rows.iter().filter(|r| r["user_id"] == id);
    let record = found.next().unwrap_or_else(|| panic!("no record for {id}"));
    assert!(found.next().is_none(), "two records for {id}");
    record
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_row_of_a_batch_gets_its_own_answer_and_only_a_throttled_row_goes_again() {
    let sim = graph_simulator(SimConfig {
        unknown_users: [user(4)].into(),
        script: HashMap::from([
            (user(2), vec![Fault::Status(400)]),
            (user(3), vec![Fault::Throttle { retry_after: 1 }]),
        ]),
        ..SimConfig::default()
    })
    .await;
    let dir = tempdir();
    let input = job_titles(dir.path(), 5);
    let out = dir.path().join("out.csv");
    let ran = run_bin(graph_run(&sim, &input, &out, &["--batch", "20"])).await;
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    let sent = batches(&sim);
    assert_eq!(sent.len(), 2, "one batch, then the throttled row again");
    let first = subs(&sent[0]);
    let users: Vec<Uuid> = first.iter().map(|s| s.0).collect();
    assert_eq!(users, (1..=5).map(user).collect::<Vec<_>>());
    let again = subs(&sent[1]);
    assert_eq!(again.len(), 1, "only the throttled row is sent again");
    assert_eq!(again[0].0, user(3));
    // Its own Retry-After (1 s) was waited for.
    let waited = sent[1].received_at - sent[0].responded_at.unwrap();
    assert!(waited >= Duration::from_secs(1), "{waited:?}");
    // The same correlation id for the row's life, a new request id for the new attempt.
    assert_eq!(again[0].1, first[2].1);
    assert_ne!(again[0].2, first[2].2);

    let results = Results::read(&out);
    assert_eq!(results.rows.len(), 5);
    let row = |n| record_of(&results, user(n));
    for n in [1, 5] {
        assert_eq!(
            (row(n)["outcome"].as_str(), row(n)["http_status"].as_str()),
            ("updated", "204")
        );
        assert_eq!(row(n)["attempts"], "1");
        assert_eq!(
            sim.graph_user(customer(1), user(n)).unwrap()["jobTitle"],
            format!("Title {n}")
        );
    }
    assert_eq!(row(2)["outcome"], "failed", "a 4xx is final");
    assert_eq!(
        (row(2)["http_status"].as_str(), row(2)["attempts"].as_str()),
        ("400", "1")
    );
    assert_eq!(row(4)["error_code"], "Request_ResourceNotFound");
    assert_eq!(row(4)["attempts"], "1");
    assert_eq!(row(3)["outcome"], "updated");
    assert_eq!(
        (row(3)["attempts"].as_str(), row(3)["throttled"].as_str()),
        ("2", "1")
    );
    // Each record carries its own row's ids, as sent in its sub-request.
    for (i, n) in (1..=5).enumerate() {
        assert_eq!(row(n)["correlation_id"], first[i].1);
    }
    assert_eq!(row(3)["request_id"], again[0].2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttled_sub_requests_wait_their_fractional_retry_after_and_all_land() {
    let sim = graph_simulator(SimConfig {
        graph: SimGraph {
            throttle: Some(Throttle {
                per_second: 10,
                burst: 10,
            }),
            ..SimGraph::default()
        },
        ..SimConfig::default()
    })
    .await;
    let dir = tempdir();
    let input = job_titles(dir.path(), 40);
    let out = dir.path().join("out.csv");
    let ran = run_bin(graph_run(&sim, &input, &out, &["--max-attempts", "20"])).await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let results = Results::read(&out);
    assert_eq!(results.count("updated"), 40);
    let stats = sim.stats();
    assert!(stats.sub_throttled > 0, "{stats:?}");
    let throttled: u64 = results
        .rows
        .iter()
        .map(|r| r["throttled"].parse::<u64>().unwrap())
        .sum();
    assert_eq!(
        throttled, stats.sub_throttled,
        "each row counts its own 429s"
    );
    let attempts: u64 = results
        .rows
        .iter()
        .map(|r| r["attempts"].parse::<u64>().unwrap())
        .sum();
    assert_eq!(
        attempts, stats.sub_requests,
        "each row counts its own attempts"
    );
    for n in 1..=40 {
        let u = sim.graph_user(customer(1), user(n)).unwrap();
        assert_eq!(u["jobTitle"], format!("Title {n}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_batchs_own_503_sends_every_row_again() {
    let sim = graph_simulator(SimConfig {
        graph: SimGraph {
            batch_faults: vec![Fault::Status(503)],
            ..SimGraph::default()
        },
        ..SimConfig::default()
    })
    .await;
    let dir = tempdir();
    let input = job_titles(dir.path(), 3);
    let out = dir.path().join("out.csv");
    let ran = run_bin(graph_run(&sim, &input, &out, &[])).await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let sent = batches(&sim);
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0].status, Some(503));
    let (first, again) = (subs(&sent[0]), subs(&sent[1]));
    assert_eq!(again.len(), 3, "the whole batch again");
    for (a, b) in first.iter().zip(&again) {
        assert_eq!((a.0, &a.1), (b.0, &b.1), "same rows, same correlation ids");
    }
    let results = Results::read(&out);
    for n in 1..=3 {
        let r = record_of(&results, user(n));
        assert_eq!(
            (r["outcome"].as_str(), r["attempts"].as_str()),
            ("updated", "2")
        );
        assert_eq!(r["throttled"], "0");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_batch_is_sent_again_and_each_row_gets_one_record() {
    // The connection drops at the third row: rows 1 and 2 were applied, nobody was told.
    let sim = graph_simulator(SimConfig {
        script: HashMap::from([(user(3), vec![Fault::Drop])]),
        ..SimConfig::default()
    })
    .await;
    let dir = tempdir();
    let input = job_titles(dir.path(), 4);
    let out = dir.path().join("out.csv");
    let ran = run_bin(graph_run(&sim, &input, &out, &[])).await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let sent = batches(&sim);
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0].status, None, "dropped");
    assert_eq!(subs(&sent[1]).len(), 4, "no answer: every row again");
    let results = Results::read(&out);
    assert_eq!(results.rows.len(), 4, "one record per row");
    for n in 1..=4 {
        let r = record_of(&results, user(n));
        assert_eq!(
            (r["outcome"].as_str(), r["attempts"].as_str()),
            ("updated", "2")
        );
        let u = sim.graph_user(customer(1), user(n)).unwrap();
        assert_eq!(u["jobTitle"], format!("Title {n}"));
    }
    // A batch dropped before any row was handled is sent again the same way.
    let sim = graph_simulator(SimConfig {
        graph: SimGraph {
            batch_faults: vec![Fault::Drop],
            ..SimGraph::default()
        },
        ..SimConfig::default()
    })
    .await;
    let out = dir.path().join("out2.csv");
    let ran = run_bin(graph_run(&sim, &input, &out, &[])).await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert_eq!(batches(&sim).len(), 2);
    let results = Results::read(&out);
    assert_eq!(results.rows.len(), 4);
    assert_eq!(results.count("updated"), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_rows_of_one_tenant_take_fewer_than_a_tenth_of_a_request_each() {
    let sim = graph_simulator(SimConfig::default()).await;
    let dir = tempdir();
    let input = job_titles(dir.path(), 200);
    let out = dir.path().join("out.csv");
    let summary = dir.path().join("summary.json");
    let summary_arg = summary.to_str().unwrap();
    let extra = ["--batch", "20", "--summary-json", summary_arg];
    let ran = run_bin(graph_run(&sim, &input, &out, &extra)).await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let sent = batches(&sim);
    // The summary counts the `$batch` requests apart from the rows' attempts.
    let json: Value = serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    assert_eq!(json["batches"], sent.len() as u64);
    assert_eq!(json["attempts"], 200);
    let line = format!("200 sent in {} batches", sent.len());
    assert!(ran.stderr.contains(&line), "{line} in {}", ran.stderr);
    let per_row = sent.len() as f64 / 200.0;
    assert!(per_row < 0.1, "{} requests for 200 rows", sent.len());
    assert!(sent.iter().all(|b| subs(b).len() <= 20));
    let mut users: Vec<Uuid> = sent.iter().flat_map(subs).map(|s| s.0).collect();
    users.sort();
    users.dedup();
    assert_eq!(users.len(), 200, "every row sent once");
    assert_eq!(Results::read(&out).count("updated"), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batched_results_have_the_shape_of_single_requests() {
    let config = || SimConfig {
        unknown_users: [user(2)].into(),
        script: HashMap::from([(user(3), vec![Fault::Status(503)])]),
        ..SimConfig::default()
    };
    let dir = tempdir();
    let input = job_titles(dir.path(), 4);
    let mut files = Vec::new();
    for batch in ["1", "20"] {
        let sim = graph_simulator(config()).await;
        let out = dir.path().join(format!("out-{batch}.csv"));
        let ran = run_bin(graph_run(&sim, &input, &out, &["--batch", batch])).await;
        assert_eq!(ran.code, 1, "{}", ran.stderr);
        files.push(Results::read(&out));
    }
    let (single, batched) = (&files[0], &files[1]);
    assert_eq!(single.header, batched.header);
    assert_eq!(single.rows.len(), batched.rows.len());
    let varying = ["elapsed_ms", "request_id", "correlation_id", "finished_at"];
    for (a, b) in single.rows.iter().zip(&batched.rows) {
        for column in &single.header {
            if !varying.contains(&column.as_str()) {
                assert_eq!(a[column], b[column], "{column} of line {}", a["line"]);
            }
        }
    }
    assert_eq!(record_of(batched, user(3))["attempts"], "2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batched_run_resumes_sending_only_the_rows_not_done() {
    let sim = graph_simulator(SimConfig {
        script: HashMap::from([(user(2), vec![Fault::Status(503)])]),
        ..SimConfig::default()
    })
    .await;
    let dir = tempdir();
    let input = job_titles(dir.path(), 3);
    let out = dir.path().join("out.csv");
    let ran = run_bin(graph_run(&sim, &input, &out, &["--max-attempts", "1"])).await;
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    assert_eq!(Results::read(&out).count("updated"), 2);
    let before = batches(&sim).len();
    let ran = run_bin(graph_run(&sim, &input, &out, &["--resume"])).await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let again = &batches(&sim)[before..];
    assert_eq!(again.len(), 1);
    let users: Vec<Uuid> = subs(&again[0]).iter().map(|s| s.0).collect();
    assert_eq!(users, [user(2)], "only the failed row is sent again");
    let results = Results::read(&out);
    let updated = results.rows.iter().filter(|r| r["outcome"] == "updated");
    assert_eq!(updated.count(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_is_refused_where_it_cannot_apply() {
    let sim = graph_simulator(SimConfig::default()).await;
    let dir = tempdir();
    let input = job_titles(dir.path(), 1);
    let out = dir.path().join("out.csv");
    let pc = ["--batch", "5", "--ignore-unknown-columns"];
    let ran = run_bin(run_against(&sim, &input, &out, &pc)).await;
    assert_eq!(ran.code, 2, "{}", ran.stderr);
    assert!(ran.stderr.contains("`batch`"), "{}", ran.stderr);
    assert!(
        ran.stderr.contains("Partner Center") || ran.stderr.contains("partner"),
        "{}",
        ran.stderr
    );
    let ran = run_bin(graph_run(&sim, &input, &out, &["--batch", "21"])).await;
    assert_eq!(ran.code, 2, "{}", ran.stderr);
    assert!(ran.stderr.contains("between 1 and 20"), "{}", ran.stderr);
    assert!(sim.requests().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulator_batches_like_graph() {
    let sim = graph_simulator(SimConfig {
        graph: SimGraph {
            throttle: Some(Throttle {
                per_second: 1,
                burst: 5,
            }),
            ..SimGraph::default()
        },
        ..SimConfig::default()
    })
    .await;
    let http = reqwest::Client::new();
    let url = format!("{}/$batch", sim.graph_url());
    let requests = |n: u32| {
        let subs: Vec<Value> = (1..=n)
            .map(|i| {
                json!({"id": i.to_string(), "method": "PATCH", "url": format!("/users/{}", user(i)),
                    "headers": {"content-type": "application/json"}, "body": {"city": "Berlin"}})
            })
            .collect();
        json!({ "requests": subs })
    };
    let post = |body: Value| http.post(&url).bearer_auth(sim.token()).json(&body).send();
    let too_many = post(requests(21)).await.unwrap();
    assert_eq!(too_many.status(), 400);
    let answer = post(requests(20)).await.unwrap();
    assert_eq!(answer.status(), 200);
    let body: Value = answer.json().await.unwrap();
    let responses = body["responses"].as_array().unwrap();
    let ids: Vec<&str> = responses
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    let mut sorted: Vec<u32> = ids.iter().map(|i| i.parse().unwrap()).collect();
    assert_ne!(sorted, (1..=20).collect::<Vec<_>>(), "answers are shuffled");
    sorted.sort();
    assert_eq!(sorted, (1..=20).collect::<Vec<_>>());
    let statuses: Vec<u64> = responses
        .iter()
        .map(|r| r["status"].as_u64().unwrap())
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 204).count(),
        5,
        "the burst"
    );
    let throttled: Vec<&Value> = responses.iter().filter(|r| r["status"] == 429).collect();
    assert_eq!(throttled.len(), 15);
    let retry_after = throttled[0]["headers"]["retry-after"].as_str().unwrap();
    assert!(retry_after.contains('.'), "fractional: {retry_after}");
    let scope = throttled[0]["headers"]["x-ms-throttle-scope"]
        .as_str()
        .unwrap();
    let tenant = customer(1).to_string();
    assert!(
        scope.starts_with("Tenant_Application/") && scope.ends_with(&tenant),
        "{scope}"
    );
    assert_eq!(throttled[0]["body"]["error"]["code"], "TooManyRequests");
    let stats = sim.stats();
    assert_eq!(
        (stats.received, stats.sub_requests, stats.sub_throttled),
        (2, 20, 15)
    );
    let unauthorized = http.post(&url).json(&requests(1)).send().await.unwrap();
    assert_eq!(unauthorized.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_answered_429_go_again_without_new_rows_beside_them() {
    let sim = graph_simulator(SimConfig {
        script: HashMap::from([(user(3), vec![Fault::Throttle { retry_after: 1 }])]),
        ..SimConfig::default()
    })
    .await;
    let dir = tempdir();
    let input = job_titles(dir.path(), 25);
    let out = dir.path().join("out.csv");
    let ran = run_bin(graph_run(&sim, &input, &out, &["--batch", "20"])).await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let sent: Vec<Vec<Uuid>> = batches(&sim)
        .iter()
        .map(|b| subs(b).iter().map(|s| s.0).collect())
        .collect();
    assert_eq!(sent[0], (1..=20).map(user).collect::<Vec<_>>());
    assert_eq!(sent[1], [user(3)], "the throttled row alone: {sent:?}");
    assert_eq!(sent[2], (21..=25).map(user).collect::<Vec<_>>());
    assert_eq!(sent.len(), 3);
    assert_eq!(Results::read(&out).count("updated"), 25);
}

/// A tenant that takes only 5 sub-requests at once (burst 5, at a fast rate): after the first
/// batch of 20 is answered 15 times 429, later batches carry what it took, growing back by
/// one after 8 clean ones, and the rows land with few 429s more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_shrink_to_what_the_tenant_takes_at_once() {
    let sim = graph_simulator(SimConfig {
        graph: SimGraph {
            throttle: Some(Throttle {
                per_second: 200,
                burst: 5,
            }),
            ..SimGraph::default()
        },
        ..SimConfig::default()
    })
    .await;
    let dir = tempdir();
    let input = job_titles(dir.path(), 80);
    let out = dir.path().join("out.csv");
    let extra = ["--per-customer-rate", "100/s", "--max-attempts", "20"];
    let ran = run_bin(graph_run(&sim, &input, &out, &extra)).await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert_eq!(Results::read(&out).count("updated"), 80);
    let sizes: Vec<usize> = batches(&sim).iter().map(|b| subs(b).len()).collect();
    assert_eq!(sizes[0], 20, "{sizes:?}");
    assert!(sizes[1..].iter().all(|n| *n <= 6), "{sizes:?}");
    assert!(
        sizes.iter().filter(|n| **n == 6).count() >= 1,
        "grown back: {sizes:?}"
    );
    let stats = sim.stats();
    assert!(
        stats.sub_throttled <= 15 + 5,
        "{} of {} sub-requests answered 429: {sizes:?}",
        stats.sub_throttled,
        stats.sub_requests
    );
}
