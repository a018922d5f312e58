//! Ctrl-C and SIGTERM: the first stops taking rows and lets requests in flight finish (exit 130); a second stops at once.

use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

use bulkpatch::simulator::SimConfig;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_interrupt_finishes_requests_in_flight_and_exits_130() {
    for (sig, says, not_says) in [
        ("INT", "press Ctrl-C again", "terminated"),
        // Whoever sent SIGTERM (cron, systemd, kill) cannot press Ctrl-C.
        (
            "TERM",
            "terminated: finishing the requests in flight",
            "Ctrl-C",
        ),
    ] {
        let sim = simulator(SimConfig {
            latency: Duration::from_millis(300),
            ..SimConfig::default()
        })
        .await;
        let dir = tempdir();
        let input = Csv::usage_locations(40).write(dir.path(), "in.csv");
        let out = dir.path().join("out.csv");
        let child = run_against(
            &sim,
            &input,
            &out,
            &["--rate", "unlimited", "--concurrency", "2"],
        )
        .spawn()
        .unwrap();
        until_received(&sim, 3).await;
        send_signal(&child, sig);
        let ran = wait_child(child).await;
        assert_eq!(ran.code, 130, "{sig}: {}", ran.stderr);
        assert!(ran.stderr.contains(says), "{sig}: {}", ran.stderr);
        assert!(!ran.stderr.contains(not_says), "{sig}: {}", ran.stderr);
        let sent = sim.requests();
        let results = Results::read(&out);
        // Every request sent got its answer and its record: nothing in flight was abandoned.
        assert_eq!(results.count("updated"), sent.len(), "{sig}");
        assert!(sent.iter().all(|r| r.status == Some(200)));
        assert!(sent.len() < 40);
        assert!(
            ran.stderr.contains(&format!(
                "{} rows not attempted: run again with --resume",
                40 - sent.len()
            )),
            "{}",
            ran.stderr
        );
        // And the resume finishes the job without sending anything twice.
        let ran = run_bin(run_against(
            &sim,
            &input,
            &out,
            &["--rate", "unlimited", "--concurrency", "8", "--resume"],
        ))
        .await;
        assert_eq!(ran.code, 0, "{}", ran.stderr);
        assert_eq!(sim.requests().len(), 40);
        assert_eq!(Results::read(&out).count("updated"), 40);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_interrupt_stops_at_once_and_records_rows_in_flight() {
    let sim = simulator(SimConfig {
        latency: Duration::from_secs(30),
        ..SimConfig::default()
    })
    .await;
    let dir = tempdir();
    let input = Csv::usage_locations(10).write(dir.path(), "in.csv");
    let out = dir.path().join("out.csv");
    let mut child = run_against(
        &sim,
        &input,
        &out,
        &["--rate", "unlimited", "--concurrency", "2"],
    )
    .spawn()
    .unwrap();
    // Read stderr as it comes, to know when the first interrupt has been taken.
    let stderr = child.stderr.take().unwrap();
    let (acknowledged, first_taken) = std::sync::mpsc::channel();
    let log = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stderr).lines() {
            let line = line.unwrap();
            if line.contains("interrupted: finishing the requests in flight") {
                let _ = acknowledged.send(());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    until_received(&sim, 2).await;
    let started = Instant::now();
    send_signal(&child, "INT");
    first_taken
        .recv_timeout(Duration::from_secs(10))
        .expect("the first interrupt is logged");
    send_signal(&child, "INT");
    let ran = wait_child(child).await;
    let stderr = log.join().unwrap();
    assert_eq!(ran.code, 130, "{stderr}");
    assert!(
        stderr.contains("interrupted again: stopping at once"),
        "{stderr}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "did not stop at once"
    );
    let results = Results::read(&out);
    assert_eq!(results.count("interrupted"), 2, "{stderr}");
    assert_eq!(results.rows.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_grace_period_bounds_the_wait_for_requests_in_flight() {
    let sim = simulator(SimConfig {
        latency: Duration::from_secs(60),
        ..SimConfig::default()
    })
    .await;
    let dir = tempdir();
    let input = Csv::usage_locations(5).write(dir.path(), "in.csv");
    let out = dir.path().join("out.csv");
    let child = run_against(
        &sim,
        &input,
        &out,
        &[
            "--rate",
            "unlimited",
            "--concurrency",
            "2",
            "--grace-period",
            "300ms",
        ],
    )
    .spawn()
    .unwrap();
    until_received(&sim, 2).await;
    let started = Instant::now();
    send_signal(&child, "INT");
    let ran = wait_child(child).await;
    assert_eq!(ran.code, 130, "{}", ran.stderr);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "waited {:?}",
        started.elapsed()
    );
    assert!(
        ran.stderr.contains("grace period is over"),
        "{}",
        ran.stderr
    );
    assert_eq!(Results::read(&out).count("interrupted"), 2);
}

/// A results file that cannot grow (as on a full disk) stops the run instead of sending
/// updates whose outcome could not be recorded.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_error_mid_run_stops_the_run() {
    let sim = simulator(SimConfig::default()).await;
    let dir = tempdir();
    let input = Csv::usage_locations(200).write(dir.path(), "in.csv");
    let out = dir.path().join("out.csv");
    let ran = run_with_full_disk(&sim, &input, &out, &[]).await;
    assert_eq!(ran.code, 2, "{}", ran.stderr);
    assert!(
        ran.stderr.contains("could not be written"),
        "{}",
        ran.stderr
    );
    let written = Results::read(&out).rows.len();
    let sent = sim.requests().len();
    assert!(sent < 200, "the run went on: {sent} requests");
    assert!(
        sent <= written + 4,
        "{sent} sent but only {written} recorded"
    );
}
