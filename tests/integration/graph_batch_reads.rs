//! `--target graph` reads in `$batch` requests (`--batch N`): an audit's GETs of one tenant go
//! up to N per request (`GET /users/{id}?$select=...`), with the same audit file as single
//! reads; a read answered 429 goes again alone after its `Retry-After`, a 404 is final for its
//! row; `--skip-unchanged` and `--undo-file` read a batch, then write only the rows that change
//! in a batch of PATCHes, with the same results and undo file as single requests.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use bulkpatch::simulator::{Fault, RecordedRequest, SimConfig, Simulator};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::support::*;

const BATCH_PATH: &str = "/graph/v1.0/$batch";

/// `graph_command` at an unlimited `--rate`.
fn graph_unpaced(
    sim: &Simulator,
    command: &str,
    input: &Path,
    out: &Path,
    extra: &[&str],
) -> Command {
    let mut all = vec!["--rate", "unlimited"];
    all.extend_from_slice(extra);
    graph_command(sim, command, input, out, &all)
}

/// Users 1..=rows of customer 1 but `missing`, every third one already holding its desired title.
fn seed_titles(sim: &Simulator, rows: u32, missing: &[u32]) {
    for n in (1..=rows).filter(|n| !missing.contains(n)) {
        let title = match n % 3 {
            0 => format!("Title {n}"),
            _ => format!("Old {n}"),
        };
        sim.seed_graph_user(customer(1), user(n), json!({ "jobTitle": title }));
    }
}

/// The sub-requests of a `$batch` request: (method, user id, url).
fn subs(batch: &RecordedRequest) -> Vec<(String, Uuid, String)> {
    let body = batch.body_json().expect("a JSON batch");
    body["requests"]
        .as_array()
        .expect("requests[]")
        .iter()
        .map(|s| {
            let url = s["url"].as_str().unwrap().to_string();
            let id = url.strip_prefix("/users/").unwrap();
            let id = id.split('?').next().unwrap().parse().unwrap();
            (s["method"].as_str().unwrap().to_string(), id, url)
        })
        .collect()
}

/// The requests received, each a `$batch`.
fn batches(sim: &Simulator) -> Vec<RecordedRequest> {
    let all = sim.requests();
    let paths: Vec<(&str, &str)> = all
        .iter()
        .map(|r| (r.method.as_str(), r.path.as_str()))
        .collect();
    assert!(
        all.iter().all(|r| r.path == BATCH_PATH),
        "only $batch requests: {paths:?}"
    );
    all
}

/// A results (or audit) file's rows without the columns that differ from run to run, sorted.
fn comparable(results: &Results) -> Vec<Vec<(String, String)>> {
    let varying = ["elapsed_ms", "request_id", "correlation_id", "finished_at"];
    let mut rows: Vec<Vec<(String, String)>> = results
        .rows
        .iter()
        .map(|r| {
            let mut cells: Vec<(String, String)> = r
                .iter()
                .filter(|(k, _)| !varying.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            cells.sort();
            cells
        })
        .collect();
    rows.sort();
    rows
}

/// The audit file's rows of `user`.
fn rows_of(results: &Results, user: Uuid) -> Vec<&HashMap<String, String>> {
    let id = user.to_string();
    results.rows.iter().filter(|r| r["user_id"] == id).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_audit_of_45_rows_reads_in_3_batches_with_the_audit_of_single_reads() {
    let config = || SimConfig {
        unknown_users: [user(7)].into(),
        ..SimConfig::default()
    };
    let dir = tempdir();
    let input = job_titles(dir.path(), 45);
    let mut files = Vec::new();
    for batch in ["1", "20"] {
        let sim = graph_simulator(config()).await;
        seed_titles(&sim, 45, &[7]);
        let out = dir.path().join(format!("audit-{batch}.csv"));
        let ran = run_bin(graph_unpaced(
            &sim,
            "audit",
            &input,
            &out,
            &["--batch", batch],
        ))
        .await;
        assert_eq!(ran.code, 1, "{}", ran.stderr);
        files.push((Results::read(&out), sim));
    }
    let ((single, single_sim), (batched, sim)) = (&files[0], &files[1]);
    assert_eq!(single_sim.requests().len(), 45, "one GET per row");
    let sent = batches(sim);
    let sizes: Vec<usize> = sent.iter().map(|b| subs(b).len()).collect();
    assert_eq!(sizes, [20, 20, 5]);
    let mut users = Vec::new();
    for (method, id, url) in sent.iter().flat_map(subs) {
        assert_eq!(method, "GET");
        assert!(
            url.contains("?$select=id,") && url.contains("jobTitle"),
            "{url}"
        );
        users.push(id);
    }
    users.sort();
    assert_eq!(
        users,
        (1..=45).map(user).collect::<Vec<_>>(),
        "each read once"
    );
    assert_eq!(sim.stats().sub_requests, 45);
    // The same audit: outcomes, fields, current and desired values, statuses, attempts.
    assert_eq!(single.header, batched.header);
    assert_eq!(comparable(single), comparable(batched));
    assert_eq!(batched.count("would_change"), 29);
    assert_eq!(batched.count("unchanged"), 15);
    assert_eq!(rows_of(batched, user(7))[0]["outcome"], "not_found");
    let unchanged = sim.graph_user(customer(1), user(1)).unwrap();
    assert_eq!(unchanged["jobTitle"], "Old 1", "an audit changes nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_read_goes_again_alone_after_its_retry_after() {
    let sim = graph_simulator(SimConfig {
        script: HashMap::from([(user(3), vec![Fault::Throttle { retry_after: 1 }])]),
        ..SimConfig::default()
    })
    .await;
    seed_titles(&sim, 5, &[]);
    let dir = tempdir();
    let input = job_titles(dir.path(), 5);
    let out = dir.path().join("audit.csv");
    let ran = run_bin(graph_unpaced(
        &sim,
        "audit",
        &input,
        &out,
        &["--batch", "20"],
    ))
    .await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let sent = batches(&sim);
    assert_eq!(sent.len(), 2, "one batch, then the throttled read again");
    assert_eq!(subs(&sent[0]).len(), 5);
    let again = subs(&sent[1]);
    assert_eq!((again.len(), again[0].1), (1, user(3)), "{again:?}");
    assert_eq!(again[0].0, "GET");
    let waited = sent[1].received_at - sent[0].responded_at.unwrap();
    assert!(waited >= Duration::from_secs(1), "{waited:?}");
    let results = Results::read(&out);
    let row = &rows_of(&results, user(3))[0];
    assert_eq!(
        (row["outcome"].as_str(), row["attempts"].as_str()),
        ("unchanged", "2")
    );
    for n in [1, 2, 4, 5] {
        let row = &rows_of(&results, user(n))[0];
        assert_eq!(
            (row["outcome"].as_str(), row["attempts"].as_str()),
            ("would_change", "1")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_answered_404_is_final_for_its_row() {
    let sim = graph_simulator(SimConfig {
        unknown_users: [user(2)].into(),
        script: HashMap::from([(user(4), vec![Fault::Status(403)])]),
        ..SimConfig::default()
    })
    .await;
    seed_titles(&sim, 4, &[2]);
    let dir = tempdir();
    let input = job_titles(dir.path(), 4);
    let out = dir.path().join("audit.csv");
    let ran = run_bin(graph_unpaced(&sim, "audit", &input, &out, &[])).await;
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    assert_eq!(batches(&sim).len(), 1, "nothing read again");
    let results = Results::read(&out);
    let row = &rows_of(&results, user(2))[0];
    assert_eq!(
        (
            row["outcome"].as_str(),
            row["http_status"].as_str(),
            row["error_code"].as_str(),
            row["attempts"].as_str()
        ),
        ("not_found", "404", "Request_ResourceNotFound", "1")
    );
    let row = &rows_of(&results, user(4))[0];
    assert_eq!(
        (row["outcome"].as_str(), row["attempts"].as_str()),
        ("forbidden", "1")
    );
    assert_eq!(rows_of(&results, user(1))[0]["outcome"], "would_change");
    assert_eq!(rows_of(&results, user(3))[0]["outcome"], "unchanged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skip_unchanged_reads_a_batch_then_patches_only_the_rows_that_change() {
    let dir = tempdir();
    let input = job_titles(dir.path(), 6);
    let mut runs = Vec::new();
    for batch in ["1", "20"] {
        let sim = graph_simulator(SimConfig::default()).await;
        seed_titles(&sim, 6, &[]);
        let out = dir.path().join(format!("out-{batch}.csv"));
        let undo = dir.path().join(format!("undo-{batch}.csv"));
        let extra = [
            "--skip-unchanged",
            "--undo-file",
            undo.to_str().unwrap(),
            "--batch",
            batch,
        ];
        let ran = run_bin(graph_unpaced(&sim, "run", &input, &out, &extra)).await;
        assert_eq!(ran.code, 0, "{}", ran.stderr);
        let undo = std::fs::read_to_string(&undo).unwrap();
        runs.push((Results::read(&out), undo, sim));
    }
    let ((single, single_undo, _), (batched, batched_undo, sim)) = (&runs[0], &runs[1]);
    let sent: Vec<Vec<(String, Uuid, String)>> = batches(sim).iter().map(subs).collect();
    assert_eq!(
        sent.len(),
        2,
        "a batch of reads, then one of writes: {sent:?}"
    );
    assert!(sent[0].iter().all(|s| s.0 == "GET"));
    assert_eq!(sent[0].len(), 6);
    let written: Vec<Uuid> = sent[1].iter().map(|s| s.1).collect();
    assert!(sent[1].iter().all(|s| s.0 == "PATCH"));
    assert_eq!(written, [1, 2, 4, 5].map(user), "only the rows that change");
    for n in 1..=6 {
        let u = sim.graph_user(customer(1), user(n)).unwrap();
        assert_eq!(u["jobTitle"], format!("Title {n}"));
    }
    // The same results (unchanged rows with their fields, the others read and written: 2
    // attempts) and the same undo file as single requests.
    assert_eq!(comparable(single), comparable(batched));
    assert_eq!(batched.count("unchanged"), 2);
    assert_eq!(batched.count("updated"), 4);
    assert!(batched
        .rows
        .iter()
        .all(|r| r["attempts"] == if r["outcome"] == "updated" { "2" } else { "1" }));
    let sorted = |text: &str| {
        let mut lines: Vec<String> = text.lines().map(String::from).collect();
        lines.sort();
        lines
    };
    // A header and the previous values of the 4 rows changed, the same in both.
    assert_eq!(batched_undo.lines().count(), 1 + 4, "{batched_undo}");
    assert_eq!(sorted(single_undo), sorted(batched_undo));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulator_answers_batched_gets_with_their_select() {
    let sim = graph_simulator(SimConfig {
        unknown_users: [user(9)].into(),
        ..SimConfig::default()
    })
    .await;
    sim.seed_graph_user(
        customer(1),
        user(1),
        json!({"department": "Sales", "jobTitle": "Clerk"}),
    );
    let http = reqwest::Client::new();
    let body = json!({"requests": [
        {"id": "1", "method": "GET", "url": format!("/users/{}?$select=id,department", user(1))},
        {"id": "2", "method": "GET", "url": format!("/users/{}?$select=id,department", user(9))},
    ]});
    let answer = http
        .post(format!("{}/$batch", sim.graph_url()))
        .bearer_auth(sim.token())
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let body: Value = answer.json().await.unwrap();
    let responses = body["responses"].as_array().unwrap();
    let by_id = |id: &str| responses.iter().find(|r| r["id"] == id).unwrap();
    assert_eq!(by_id("1")["status"], 200);
    let mut got: Vec<&String> = by_id("1")["body"].as_object().unwrap().keys().collect();
    got.retain(|k| !k.starts_with("@odata"));
    got.sort();
    assert_eq!(got, ["department", "id"], "only the selected properties");
    assert_eq!(by_id("1")["body"]["department"], "Sales");
    assert_eq!(by_id("2")["status"], 404);
    assert_eq!(
        by_id("2")["body"]["error"]["code"],
        "Request_ResourceNotFound"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_changes_reads_every_batch_before_the_first_write() {
    let dir = tempdir();
    // 25 rows: 8 already as desired (every third), 17 that change.
    let input = job_titles(dir.path(), 25);
    let sim = graph_simulator(SimConfig::default()).await;
    seed_titles(&sim, 25, &[]);
    let out = dir.path().join("out.csv");
    let extra = ["--skip-unchanged", "--max-changes", "17"];
    let ran = run_bin(graph_unpaced(&sim, "run", &input, &out, &extra)).await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let sent: Vec<Vec<(String, Uuid, String)>> = batches(&sim).iter().map(subs).collect();
    let shape: Vec<(&str, usize)> = sent.iter().map(|b| (b[0].0.as_str(), b.len())).collect();
    assert_eq!(shape, [("GET", 20), ("GET", 5), ("PATCH", 17)], "{sent:?}");
    assert!(sent.iter().all(|b| b.iter().all(|s| s.0 == b[0].0)));
    let results = Results::read(&out);
    assert_eq!(
        (results.count("updated"), results.count("unchanged")),
        (17, 8)
    );
    // One more change than allowed: every user read, nothing written.
    let sim = graph_simulator(SimConfig::default()).await;
    seed_titles(&sim, 25, &[]);
    let out = dir.path().join("out2.csv");
    let extra = ["--skip-unchanged", "--max-changes", "16"];
    let ran = run_bin(graph_unpaced(&sim, "run", &input, &out, &extra)).await;
    assert_eq!(ran.code, 2, "{}", ran.stderr);
    assert!(
        ran.stderr.contains("more than --max-changes 16"),
        "{}",
        ran.stderr
    );
    let sent = batches(&sim);
    assert!(sent.iter().flat_map(subs).all(|s| s.0 == "GET"));
    let u = sim.graph_user(customer(1), user(1)).unwrap();
    assert_eq!(u["jobTitle"], "Old 1", "nothing written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_row_read_in_a_batch_is_written_and_never_shown() {
    const PASSWORD: &str = "Batch-Read-Pass-7713!";
    // The row's write is answered with an error quoting its body (the password).
    let sim = graph_simulator(SimConfig {
        script: HashMap::from([(user(1), vec![Fault::Normal, Fault::Echo(400)])]),
        ..SimConfig::default()
    })
    .await;
    seed_titles(&sim, 2, &[]);
    let dir = tempdir();
    let c = customer(1).to_string();
    // Row 1's title is already as desired: only its password changes, which is never unchanged.
    let input = Csv::new(&["customer_id", "user_id", "job_title", "password"])
        .row(&[&c, &user(1).to_string(), "Old 1", PASSWORD])
        .row(&[&c, &user(2).to_string(), "Old 2", ""])
        .write(dir.path(), "in.csv");
    let out = dir.path().join("out.csv");
    let extra = ["--skip-unchanged", "--include-admins", "-vv"];
    let ran = run_bin(graph_unpaced(&sim, "run", &input, &out, &extra)).await;
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    let sent: Vec<Vec<(String, Uuid, String)>> = batches(&sim).iter().map(subs).collect();
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert_eq!(sent[0].len(), 2);
    assert_eq!(
        sent[1]
            .iter()
            .map(|s| (s.0.as_str(), s.1))
            .collect::<Vec<_>>(),
        [("PATCH", user(1))]
    );
    let requests = sim.requests();
    assert!(!String::from_utf8_lossy(&requests[0].body).contains(PASSWORD));
    let results = Results::read(&out);
    assert_eq!(results.line(3)["outcome"], "unchanged");
    assert_eq!(results.line(2)["error_code"], "Request_BadRequest");
    let written = std::fs::read_to_string(&out).unwrap();
    assert!(written.contains("Invalid request"), "{written}");
    for text in [&written, &ran.stderr, &ran.stdout] {
        assert!(!text.contains(PASSWORD), "the password leaked");
    }
}
