//! Retries, throttling, pacing and the 401 stop, observed from the server's side.

use std::collections::HashMap;
use std::time::Duration;

use bulkpatch::simulator::{Fault, SimConfig};

use crate::support::*;

/// Fast backoff so retry tests take milliseconds; the backoff maths itself is unit-tested on a paused clock.
fn fast_backoff(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("fast.toml");
    std::fs::write(&path, "backoff_base = \"20ms\"\nbackoff_cap = \"200ms\"\n").unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_pauses_every_worker_until_retry_after() {
    let sim = simulator(SimConfig {
        script: HashMap::from([(user(5), vec![Fault::Throttle { retry_after: 1 }])]),
        ..SimConfig::default()
    })
    .await;
    let dir = tempdir();
    let input = Csv::usage_locations(40).write(dir.path(), "in.csv");
    let out = dir.path().join("out.csv");
    let ran = run_bin(run_against(
        &sim,
        &input,
        &out,
        &["--rate", "100/s", "--concurrency", "4"],
    ))
    .await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);

    let requests = sim.requests();
    assert_eq!(requests.len(), 41);
    let throttled = requests
        .iter()
        .find(|r| r.status == Some(429))
        .expect("a 429");
    let t429 = throttled.responded_at.unwrap();
    // Requests already in flight when the 429 went out may land just after it; nothing else may
    // arrive before Retry-After has passed.
    let early: Vec<_> = requests
        .iter()
        .filter(|r| {
            r.received_at > t429 + Duration::from_millis(50)
                && r.received_at < t429 + Duration::from_secs(1)
        })
        .collect();
    assert!(
        early.is_empty(),
        "{} requests arrived during the Retry-After pause",
        early.len()
    );
    let in_flight = requests
        .iter()
        .filter(|r| r.received_at > t429 && r.received_at <= t429 + Duration::from_millis(50))
        .count();
    assert!(in_flight < 4, "{in_flight} requests just after the 429");
    assert!(requests
        .iter()
        .any(|r| r.received_at >= t429 + Duration::from_secs(1)));

    let results = Results::read(&out);
    assert_eq!(results.count("updated"), 40);
    assert_eq!(results.line(6)["attempts"], "2");
    assert!(ran.stderr.contains("1 answered 429"), "{}", ran.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_are_retried_with_new_request_ids_and_one_correlation_id() {
    let sim = simulator(SimConfig {
        script: HashMap::from([
            (
                user(1),
                vec![Fault::Status(503), Fault::Status(500), Fault::Normal],
            ),
            (
                user(2),
                vec![Fault::Html(502), Fault::Empty(504), Fault::Status(408)],
            ),
        ]),
        ..SimConfig::default()
    })
    .await;
    let dir = tempdir();
    let input = Csv::usage_locations(2).write(dir.path(), "in.csv");
    let out = dir.path().join("out.csv");
    let config = fast_backoff(dir.path());
    let ran = run_bin(run_against(
        &sim,
        &input,
        &out,
        &["--config", config.to_str().unwrap()],
    ))
    .await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);

    let requests = sim.requests();
    for u in [user(1), user(2)] {
        let seen = requests_for(&requests, u);
        assert_eq!(seen.len(), if u == user(1) { 3 } else { 4 });
        let request_ids: std::collections::HashSet<_> = seen
            .iter()
            .map(|r| r.header("ms-requestid").unwrap().to_string())
            .collect();
        assert_eq!(
            request_ids.len(),
            seen.len(),
            "a response was received each time: new MS-RequestId"
        );
        let correlation: std::collections::HashSet<_> = seen
            .iter()
            .map(|r| r.header("ms-correlationid").unwrap().to_string())
            .collect();
        assert_eq!(correlation.len(), 1, "one MS-CorrelationId per row");
    }
    let results = Results::read(&out);
    assert_eq!(results.line(2)["attempts"], "3");
    assert_eq!(results.line(3)["attempts"], "4");
    assert_eq!(results.count("updated"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn final_errors_are_not_retried() {
    let sim = simulator(SimConfig {
        unknown_users: [user(1)].into(),
        forbidden_customers: [customer(2)].into(),
        script: HashMap::from([
            (user(2), vec![Fault::Status(400)]),
            (user(3), vec![Fault::Status(409)]),
            (user(4), vec![Fault::Status(501)]),
        ]),
        ..SimConfig::default()
    })
    .await;
    let dir = tempdir();
    let input = Csv::usage_locations(4)
        .row(&[&customer(2).to_string(), &user(5).to_string(), "DE"])
        .write(dir.path(), "in.csv");
    let out = dir.path().join("out.csv");
    let ran = run_bin(run_against(&sim, &input, &out, &[])).await;
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    assert_eq!(sim.requests().len(), 5, "one request per row, no retries");
    let results = Results::read(&out);
    let expect = [
        (2, "404", "60002"),
        (3, "400", ""),
        (4, "409", ""),
        (5, "501", ""),
        (6, "403", "20002"),
    ];
    for (line, status, code) in expect {
        let r = results.line(line);
        assert_eq!(
            (
                r["outcome"].as_str(),
                r["http_status"].as_str(),
                r["attempts"].as_str()
            ),
            ("failed", status, "1"),
            "line {line}"
        );
        if !code.is_empty() {
            assert_eq!(r["error_code"], code, "line {line}");
        }
        assert!(
            !r["message"].is_empty() && !r["message"].contains('\n'),
            "line {line}: {:?}",
            r["message"]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_and_dropped_connections_retry_with_the_same_request_id() {
    let sim = simulator(SimConfig {
        script: HashMap::from([
            (
                user(1),
                vec![Fault::Slow(Duration::from_secs(5)), Fault::Normal],
            ),
            (user(2), vec![Fault::Drop, Fault::Drop, Fault::Normal]),
        ]),
        ..SimConfig::default()
    })
    .await;
    let dir = tempdir();
    let input = Csv::usage_locations(2).write(dir.path(), "in.csv");
    let out = dir.path().join("out.csv");
    let config = fast_backoff(dir.path());
    let ran = run_bin(run_against(
        &sim,
        &input,
        &out,
        &["--timeout", "300ms", "--config", config.to_str().unwrap()],
    ))
    .await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let requests = sim.requests();
    for (u, n) in [(user(1), 2), (user(2), 3)] {
        let seen = requests_for(&requests, u);
        assert_eq!(seen.len(), n);
        let first = seen[0].header("ms-requestid").unwrap();
        assert!(
            seen.iter().all(|r| r.header("ms-requestid") == Some(first)),
            "no response came back: the MS-RequestId is reused"
        );
    }
    let results = Results::read(&out);
    assert_eq!(
        (
            results.line(2)["outcome"].as_str(),
            results.line(2)["attempts"].as_str()
        ),
        ("updated", "2")
    );
    assert_eq!(
        (
            results.line(3)["outcome"].as_str(),
            results.line(3)["attempts"].as_str()
        ),
        ("updated", "3")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attempts_are_bounded_and_the_last_error_is_recorded() {
    let sim = simulator(SimConfig {
        script: HashMap::from([(user(1), vec![Fault::Status(503); 10])]),
        ..SimConfig::default()
    })
    .await;
    let dir = tempdir();
    let input = Csv::usage_locations(1).write(dir.path(), "in.csv");
    let out = dir.path().join("out.csv");
    let config = fast_backoff(dir.path());
    let ran = run_bin(run_against(
        &sim,
        &input,
        &out,
        &["--max-attempts", "3", "--config", config.to_str().unwrap()],
    ))
    .await;
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    assert_eq!(sim.requests().len(), 3);
    let r = Results::read(&out);
    let r = r.line(2);
    assert_eq!(
        (
            r["outcome"].as_str(),
            r["http_status"].as_str(),
            r["attempts"].as_str()
        ),
        ("failed", "503", "3")
    );
    assert!(
        r["message"].starts_with("gave up after 3 attempts"),
        "{}",
        r["message"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_401_stops_the_run_cleanly() {
    let sim = simulator(SimConfig {
        script: HashMap::from([(user(4), vec![Fault::Unauthorized])]),
        ..SimConfig::default()
    })
    .await;
    let dir = tempdir();
    let input = Csv::usage_locations(10).write(dir.path(), "in.csv");
    let out = dir.path().join("out.csv");
    let ran = run_bin(run_against(&sim, &input, &out, &["--concurrency", "1"])).await;
    assert_eq!(ran.code, 2, "{}", ran.stderr);
    assert!(
        ran.stderr.contains("refused the access token (401)"),
        "{}",
        ran.stderr
    );
    assert!(
        ran.stderr.contains("6 rows not attempted"),
        "{}",
        ran.stderr
    );
    assert_eq!(sim.requests().len(), 4, "nothing is sent after the 401");
    let results = Results::read(&out);
    assert_eq!(results.count("updated"), 3);
    let r = results.line(5);
    assert_eq!(
        (
            r["outcome"].as_str(),
            r["http_status"].as_str(),
            r["error_code"].as_str()
        ),
        ("failed", "401", "400")
    );
    assert_eq!(results.rows.len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_token_stops_at_once_instead_of_failing_every_row() {
    let sim = simulator(SimConfig::default()).await;
    let dir = tempdir();
    let input = Csv::usage_locations(50).write(dir.path(), "in.csv");
    let out = dir.path().join("out.csv");
    let mut cmd = run_against(&sim, &input, &out, &["--concurrency", "4"]);
    cmd.env("BULKPATCH_TOKEN", "not-the-token");
    let ran = run_bin(cmd).await;
    assert_eq!(ran.code, 2, "{}", ran.stderr);
    assert!(
        sim.requests().len() <= 4,
        "only the requests already in flight: {}",
        sim.requests().len()
    );
}

/// The governor limiter runs on its own clock, so pacing is checked in real time over a short window.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_paced_evenly_at_the_rate() {
    let sim = simulator(SimConfig::default()).await;
    let dir = tempdir();
    let input = Csv::usage_locations(31).write(dir.path(), "in.csv");
    let ran = run_bin(run_against(
        &sim,
        &input,
        &dir.path().join("out.csv"),
        &["--rate", "20/s", "--concurrency", "8"],
    ))
    .await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let mut times: Vec<_> = sim.requests().iter().map(|r| r.received_at).collect();
    times.sort();
    assert_eq!(times.len(), 31);
    let span = times[30] - times[0];
    // 30 intervals of 50 ms: no initial burst, no slower than asked.
    assert!(span >= Duration::from_millis(1350), "too fast: {span:?}");
    assert!(span <= Duration::from_millis(2500), "too slow: {span:?}");
    // Smooth: no 200 ms window holds more than the 4 requests the rate allows, plus one of scheduling slack.
    for (i, t) in times.iter().enumerate() {
        let in_window = times[i..]
            .iter()
            .take_while(|u| **u < *t + Duration::from_millis(200))
            .count();
        assert!(in_window <= 5, "{in_window} requests within 200 ms");
    }
}
