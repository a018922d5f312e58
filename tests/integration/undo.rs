//! `--undo-file`: previous values written ahead of each request, the file rewritten to the rows
//! applied, and running it restores every user as it was, across an interrupted and resumed run.

use std::collections::HashMap;

use bulkpatch::simulator::{Fault, SimConfig, Simulator};
use serde_json::{json, Value};

use crate::support::*;

const USERS: u32 = 8;

/// Every seeded user's fields as the simulator holds them now.
fn state(sim: &Simulator) -> Vec<Value> {
    (1..=USERS)
        .map(|i| sim.user(customer(1), user(i)).expect("a seeded user"))
        .collect()
}

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

fn seed(sim: &Simulator) {
    for i in 1..=USERS {
        let location = if i == 2 { "DE" } else { "US" };
        sim.seed_user(
            customer(1),
            user(i),
            json!({"usageLocation": location, "displayName": format!("User {i}")}),
        );
    }
}

/// Users 1-8 to DE, users 1-3 renamed; user 2 is already in DE (its location unchanged).
fn input(dir: &std::path::Path) -> std::path::PathBuf {
    let mut csv = Csv::new(&["customer_id", "user_id", "usage_location", "display_name"]);
    for i in 1..=USERS {
        let name = if i <= 3 {
            format!("Renamed {i}")
        } else {
            String::new()
        };
        csv = csv.row(&[&customer(1).to_string(), &user(i).to_string(), "DE", &name]);
    }
    csv.write(dir, "in.csv")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_and_resumed_run_is_reverted_by_its_undo_file() {
    let sim = simulator(SimConfig {
        // User 5's update fails (read first, then two 503s); user 6's update is answered 401,
        // which stops the run after its previous values were written ahead.
        script: HashMap::from([
            (
                user(5),
                vec![Fault::Normal, Fault::Status(503), Fault::Status(503)],
            ),
            (user(6), vec![Fault::Normal, Fault::Unauthorized]),
        ]),
        ..SimConfig::default()
    })
    .await;
    seed(&sim);
    let before = state(&sim);
    let dir = tempdir();
    let input = input(dir.path());
    let (out, undo) = (dir.path().join("out.csv"), dir.path().join("undo.csv"));
    let summary = dir.path().join("s.json");
    let fast = dir.path().join("fast.toml");
    std::fs::write(&fast, "backoff_base = \"10ms\"\nbackoff_cap = \"50ms\"\n").unwrap();
    let args = |extra: &[&'static str]| -> Vec<String> {
        let mut a: Vec<String> = [
            "--concurrency",
            "1",
            "--max-attempts",
            "2",
            "--config",
            fast.to_str().unwrap(),
            "--undo-file",
            undo.to_str().unwrap(),
            "--summary-json",
            summary.to_str().unwrap(),
        ]
        .map(String::from)
        .to_vec();
        a.extend(extra.iter().map(|e| e.to_string()));
        a
    };
    let ran = run_bin(run_against(&sim, &input, &out, &strs(&args(&[])))).await;
    assert_eq!(ran.code, 2, "the 401 stops the run: {}", ran.stderr);
    // An existing undo file is never overwritten: without --resume nothing is sent.
    let sent = sim.requests().len();
    let again = run_bin(run_against(
        &sim,
        &input,
        &dir.path().join("o2.csv"),
        &strs(&args(&[])),
    ))
    .await;
    assert_eq!(again.code, 2);
    assert!(again.stderr.contains("undo file"), "{}", again.stderr);
    assert_eq!(sim.requests().len(), sent);

    // The resume sends user 5 again and the rest; the values read by the first run are kept.
    let ran = run_bin(run_against(
        &sim,
        &input,
        &out,
        &strs(&args(&["--resume", "--retry-failed"])),
    ))
    .await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let json: Value = serde_json::from_slice(&std::fs::read(&summary).unwrap()).unwrap();
    assert!(json["reads"].as_u64().unwrap() >= 1, "{json}");
    let results = Results::read(&out);
    let outcome = |i: u32| {
        results
            .rows
            .iter()
            .find(|r| r["user_id"] == user(i).to_string())
            .map(|r| r["outcome"].clone())
    };
    assert_eq!(
        outcome(2).as_deref(),
        Some("updated"),
        "user 2's name changes"
    );
    for i in 1..=USERS {
        let now = sim.user(customer(1), user(i)).unwrap();
        assert_eq!(now["usageLocation"], "DE", "user {i}");
    }

    // The undo file: one line per user changed, with only the fields that changed.
    let text = std::fs::read_to_string(&undo).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "customer_id,user_id,usage_location,display_name,first_name,last_name,new_user_principal_name"
    );
    assert_eq!(lines.len(), 1 + USERS as usize, "{text}");
    let line_of = |i: u32| {
        lines
            .iter()
            .find(|l| l.contains(&user(i).to_string()))
            .unwrap_or_else(|| panic!("user {i} in {text}"))
            .to_string()
    };
    let c = customer(1);
    assert_eq!(line_of(1), format!("{c},{},US,User 1,,,", user(1)));
    assert_eq!(line_of(2), format!("{c},{},,User 2,,,", user(2)));
    assert_eq!(line_of(4), format!("{c},{},US,,,,", user(4)));

    // Running it restores every user exactly.
    let revert = dir.path().join("revert.csv");
    let ran = run_bin(run_against(&sim, &undo, &revert, &[])).await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert_eq!(state(&sim), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_already_as_desired_and_passwords_are_not_in_the_undo_file() {
    let sim = simulator(SimConfig::default()).await;
    seed(&sim);
    let dir = tempdir();
    let mut csv = Csv::new(&["customer_id", "user_id", "usage_location", "password"]);
    csv = csv
        .row(&[&customer(1).to_string(), &user(1).to_string(), "US", ""])
        .row(&[
            &customer(1).to_string(),
            &user(3).to_string(),
            "",
            "Zq8!long-enough-pass",
        ])
        .row(&[
            &customer(1).to_string(),
            &user(4).to_string(),
            "FR",
            "Zq8!another-long-pass",
        ]);
    let input = csv.write(dir.path(), "in.csv");
    let (out, undo, summary) = (
        dir.path().join("out.csv"),
        dir.path().join("undo.csv"),
        dir.path().join("s.json"),
    );
    let ran = run_bin(run_against(
        &sim,
        &input,
        &out,
        &[
            "--include-admins",
            "--undo-file",
            undo.to_str().unwrap(),
            "--summary-json",
            summary.to_str().unwrap(),
        ],
    ))
    .await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let results = Results::read(&out);
    assert_eq!(results.count("unchanged"), 1, "user 1 is already in US");
    assert_eq!(results.count("updated"), 2);
    let patches = sim
        .requests()
        .iter()
        .filter(|r| r.method == "PATCH")
        .count();
    assert_eq!(patches, 2, "no PATCH for the unchanged row");
    let json: Value = serde_json::from_slice(&std::fs::read(&summary).unwrap()).unwrap();
    assert_eq!(json["not_undoable"], 2, "{json}");
    assert_eq!(json["reads"], 3, "{json}");
    assert!(
        ran.stderr.contains("not undoable: 2 password changes"),
        "{}",
        ran.stderr
    );
    let text = std::fs::read_to_string(&undo).unwrap();
    assert_eq!(text.lines().count(), 2, "header and user 4: {text}");
    assert!(text.contains(&format!("{},US,", user(4))), "{text}");
    assert!(!text.contains("Zq8!"), "{text}");
}
