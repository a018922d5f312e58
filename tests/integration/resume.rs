//! Never lose a row: resume after a stop or a crash, the lock, edited rows, and SIGKILL at random points.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use bulkpatch::simulator::{Fault, SimConfig};
use uuid::Uuid;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_skips_finished_rows_retries_transient_failures_and_leaves_one_record_per_row() {
    let sim = simulator(SimConfig {
        unknown_users: [user(2)].into(),
        script: HashMap::from([
            (user(3), vec![Fault::Status(503), Fault::Status(503)]),
            (user(6), vec![Fault::Unauthorized]),
        ]),
        ..SimConfig::default()
    })
    .await;
    let dir = tempdir();
    let input = Csv::usage_locations(10)
        .row(&["bad", &user(11).to_string(), "DE"])
        .write(dir.path(), "in.csv");
    let out = dir.path().join("out.csv");
    let fast = dir.path().join("fast.toml");
    std::fs::write(&fast, "backoff_base = \"10ms\"\nbackoff_cap = \"50ms\"\n").unwrap();
    let args = [
        "--concurrency",
        "1",
        "--max-attempts",
        "2",
        "--config",
        fast.to_str().unwrap(),
    ];
    // Run 1: row 3 fails twice with 503 (transient), row 2 is 404 (final), row 6 gets a 401 that stops the run.
    let ran = run_bin(run_against(&sim, &input, &out, &args)).await;
    assert_eq!(ran.code, 2, "{}", ran.stderr);
    assert!(
        ran.stderr.contains("run again with --resume"),
        "{}",
        ran.stderr
    );
    let first: Vec<_> = sim.requests();
    let first_results = Results::read(&out);
    assert_eq!(first_results.count("updated"), 3); // users 1, 4, 5

    // Run 2: --resume.
    let mut resume_args = args.to_vec();
    resume_args.push("--resume");
    let ran = run_bin(run_against(&sim, &input, &out, &resume_args)).await;
    assert_eq!(
        ran.code, 1,
        "the 404 and the invalid row remain: {}",
        ran.stderr
    );
    let later: Vec<_> = sim.requests()[first.len()..].to_vec();
    let sent_again: HashSet<Uuid> = [1, 2, 4, 5]
        .map(user)
        .into_iter()
        .filter(|u| !requests_for(&later, *u).is_empty())
        .collect();
    assert!(
        sent_again.is_empty(),
        "finished rows were sent again: {sent_again:?}"
    );
    for u in [3, 6, 7, 8, 9, 10] {
        assert_eq!(requests_for(&later, user(u)).len(), 1, "user {u}");
    }
    // Exactly one final record per input row, in line order.
    let results = Results::read(&out);
    let lines: Vec<u64> = results
        .rows
        .iter()
        .map(|r| r["line"].parse().unwrap())
        .collect();
    assert_eq!(lines, (2..=12).collect::<Vec<u64>>());
    assert_eq!(results.count("updated"), 9);
    assert_eq!(results.line(3)["http_status"], "404");
    assert_eq!(results.line(12)["outcome"], "invalid");
    assert!(
        ran.stderr.contains("already done by an earlier run"),
        "{}",
        ran.stderr
    );

    // --retry-failed sends the final failure (404) too.
    let mut retry_all = resume_args.clone();
    retry_all.push("--retry-failed");
    let before = sim.requests().len();
    let ran = run_bin(run_against(&sim, &input, &out, &retry_all)).await;
    assert_eq!(ran.code, 1);
    let last: Vec<_> = sim.requests()[before..].to_vec();
    assert_eq!(last.len(), 1);
    assert!(last[0].path.ends_with(&user(2).to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edited_row_is_sent_again_and_a_changed_file_is_refused() {
    let sim = simulator(SimConfig::default()).await;
    let dir = tempdir();
    let out = dir.path().join("out.csv");
    let input = Csv::usage_locations(4).write(dir.path(), "in.csv");
    assert_eq!(run_bin(run_against(&sim, &input, &out, &[])).await.code, 0);
    // Line 3 is edited: DE -> FR. Same shape.
    let text = std::fs::read_to_string(&input).unwrap();
    let edited = text.replacen(&format!("{},DE", user(2)), &format!("{},FR", user(2)), 1);
    assert_ne!(text, edited);
    std::fs::write(&input, edited).unwrap();
    let ran = run_bin(run_against(&sim, &input, &out, &["--resume"])).await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let requests = sim.requests();
    assert_eq!(requests.len(), 5, "only the edited row was sent again");
    assert_eq!(requests[4].body_json().unwrap()["usageLocation"], "FR");
    assert_eq!(Results::read(&out).rows.len(), 4);

    // A row added: the file changed shape. Refused, unless --force.
    let grown = Csv::usage_locations(5).write(dir.path(), "in.csv");
    let ran = run_bin(run_against(&sim, &grown, &out, &["--resume"])).await;
    assert_eq!(ran.code, 2);
    assert!(
        ran.stderr.contains("had 4 data rows then and has 5 now") && ran.stderr.contains("--force"),
        "{}",
        ran.stderr
    );
    assert_eq!(sim.requests().len(), 5);
    let ran = run_bin(run_against(&sim, &grown, &out, &["--resume", "--force"])).await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    // The new row, and line 3, whose content (back to DE) differs from what was last sent (FR).
    let sent: Vec<_> = sim.requests()[5..].iter().map(|r| r.path.clone()).collect();
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert!(
        sent.iter().any(|p| p.ends_with(&user(2).to_string()))
            && sent.iter().any(|p| p.ends_with(&user(5).to_string()))
    );

    // Another input's results file is refused.
    let other = Csv::usage_locations(5).write(dir.path(), "other.csv");
    let ran = run_bin(run_against(&sim, &other, &out, &["--resume"])).await;
    assert_eq!(ran.code, 2);
    assert!(
        ran.stderr.contains("different run") && ran.stderr.contains("in.csv"),
        "{}",
        ran.stderr
    );
    // Nothing to resume.
    let ran = run_bin(run_against(
        &sim,
        &input,
        &dir.path().join("none.csv"),
        &["--resume"],
    ))
    .await;
    assert_eq!(ran.code, 2);
    assert!(ran.stderr.contains("nothing to resume"), "{}", ran.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_run_on_the_same_results_file_is_locked_out() {
    let sim = simulator(SimConfig {
        latency: Duration::from_millis(200),
        ..SimConfig::default()
    })
    .await;
    let dir = tempdir();
    let input = Csv::usage_locations(20).write(dir.path(), "in.csv");
    let out = dir.path().join("out.csv");
    let mut first = run_against(
        &sim,
        &input,
        &out,
        &["--rate", "unlimited", "--concurrency", "1"],
    )
    .spawn()
    .unwrap();
    until_received_or_exit(&sim, 1, &mut first).await;
    let ran = run_bin(run_against(&sim, &input, &out, &["--resume"])).await;
    assert_eq!(ran.code, 2, "{}", ran.stderr);
    assert!(
        ran.stderr.contains(&format!(
            "being written by another bulkpatch run (pid {})",
            first.id()
        )),
        "{}",
        ran.stderr
    );
    send_signal(&first, "TERM");
    let first = wait_child(first).await;
    assert_eq!(first.code, 130, "{}", first.stderr);
    // Once it is gone, resuming works.
    let ran = run_bin(run_against(
        &sim,
        &input,
        &out,
        &["--resume", "--rate", "unlimited", "--concurrency", "8"],
    ))
    .await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert_eq!(Results::read(&out).count("updated"), 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_points_then_resume_applies_every_row_and_resends_nothing_recorded() {
    for seed in [11u64, 23, 37, 41] {
        let sim = simulator(SimConfig {
            latency: Duration::from_millis(15),
            latency_jitter: Duration::from_millis(30),
            seed,
            ..SimConfig::default()
        })
        .await;
        let dir = tempdir();
        let n = 80;
        let input = Csv::usage_locations(n).write(dir.path(), "in.csv");
        let out = dir.path().join("out.csv");
        let mut rng = seed;
        let mut next = |bound: u64| {
            rng = rng
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (rng >> 33) % bound
        };
        let mut kills = 0;
        // (requests received before a kill, users recorded updated at that kill)
        let mut checks: Vec<(usize, HashSet<String>)> = Vec::new();
        for round in 0.. {
            assert!(round < 30, "seed {seed}: never finished");
            let mut args = vec!["--rate", "unlimited", "--concurrency", "4"];
            if round > 0 {
                args.push("--resume");
            }
            let mut child = run_against(&sim, &input, &out, &args).spawn().unwrap();
            let target = sim.stats().received + 3 + next(20);
            until_received_or_exit(&sim, target, &mut child).await;
            if child.try_wait().unwrap().is_some() || kills >= 4 {
                let ran = wait_child(child).await;
                assert_eq!(ran.code, 0, "seed {seed}: {}", ran.stderr);
                break;
            }
            send_signal(&child, "KILL");
            wait_child(child).await;
            kills += 1;
            // What the results file holds as updated now must never be sent again.
            checks.push((sim.requests().len(), read_updated_tolerantly(&out)));
        }
        let requests = sim.requests();
        for (sent_before, recorded) in checks {
            for r in &requests[sent_before..] {
                let u = r.path.rsplit('/').next().unwrap();
                assert!(
                    !recorded.contains(u),
                    "seed {seed}: user {u} was recorded updated before a kill and sent again"
                );
            }
        }
        assert!(kills > 0, "seed {seed}: the run was never killed");
        for i in 1..=n {
            let state = sim
                .user(customer(1), user(i))
                .unwrap_or_else(|| panic!("seed {seed}: user {i} never updated"));
            assert_eq!(state["usageLocation"], "DE");
        }
        let results = Results::read(&out);
        assert_eq!(
            results.rows.len(),
            n as usize,
            "seed {seed}: one record per row"
        );
        assert_eq!(results.count("updated"), n as usize);
    }
}

/// Users recorded `updated` in a results file that may end with a torn line.
fn read_updated_tolerantly(path: &std::path::Path) -> HashSet<String> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(path)
        .unwrap();
    let mut users = HashSet::new();
    for record in reader.records().flatten() {
        if record.len() >= 14 && &record[3] == "updated" && !record[13].is_empty() {
            users.insert(record[2].to_string());
        }
    }
    users
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_reuses_the_password_of_a_row_in_flight_at_a_crash() {
    let sim = simulator(SimConfig {
        script: HashMap::from([(user(3), vec![Fault::Slow(Duration::from_secs(30))])]),
        ..SimConfig::default()
    })
    .await;
    let dir = tempdir();
    let input = Csv::usage_locations(5).write(dir.path(), "in.csv");
    let out = dir.path().join("out.csv");
    let secrets = dir.path().join("secrets.csv");
    let args = [
        "--concurrency",
        "1",
        "--rate",
        "unlimited",
        "--generate-passwords",
        "--include-admins",
        "--secrets-out",
        secrets.to_str().unwrap(),
    ];
    let mut child = run_against(&sim, &input, &out, &args).spawn().unwrap();
    // Row 4 (user 3) is in flight: the server holds it.
    until_received_or_exit(&sim, 3, &mut child).await;
    send_signal(&child, "KILL");
    wait_child(child).await;
    let in_flight = sent_password(&sim.requests()[2]).unwrap();

    let mut resume = args.to_vec();
    resume.push("--resume");
    let ran = run_bin(run_against(&sim, &input, &out, &resume)).await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let again = requests_for(&sim.requests(), user(3));
    assert_eq!(again.len(), 2);
    assert_eq!(
        sent_password(&again[1]).unwrap(),
        in_flight,
        "the password that may have been set is sent again"
    );
    let kept = Results::read(&secrets);
    assert_eq!(
        kept.rows.iter().filter(|r| r["line"] == "4").count(),
        1,
        "no second password for the row"
    );
    assert_eq!(kept.line(4)["password"], in_flight);
    assert_eq!(kept.rows.len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_torn_last_line_is_ignored_and_compact_rewrites_in_line_order() {
    let sim = simulator(SimConfig {
        unknown_users: [user(3)].into(),
        ..SimConfig::default()
    })
    .await;
    let dir = tempdir();
    let input = Csv::usage_locations(6).write(dir.path(), "in.csv");
    let out = dir.path().join("out.csv");
    assert_eq!(run_bin(run_against(&sim, &input, &out, &[])).await.code, 1);
    // Simulate a crash mid-write: a record cut in half at the end.
    let mut text = std::fs::read_to_string(&out).unwrap();
    text.push_str("5,00000001-0000-4000-0000-0000000");
    std::fs::write(&out, text).unwrap();
    let ran = run_bin(run_against(&sim, &input, &out, &["--resume"])).await;
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    assert_eq!(sim.requests().len(), 6, "nothing sent again");
    let results = Results::read(&out);
    assert_eq!(results.rows.len(), 6);
    assert!(results
        .rows
        .windows(2)
        .all(|w| w[0]["line"].parse::<u64>().unwrap() < w[1]["line"].parse::<u64>().unwrap()));

    // --compact alone sends nothing and needs no token.
    let ran = run_bin(bulkpatch(&[
        "run",
        input.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--compact",
    ]))
    .await;
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    assert_eq!(Results::read(&out).rows.len(), 6);
}
