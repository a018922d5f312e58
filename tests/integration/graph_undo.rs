//! `--undo-file` through Microsoft Graph: every field Graph reads back is kept, a value that
//! was empty comes back as `<clear>`, and running the undo file through Graph restores each user
//! exactly (a cleared department, an added job title, a cleared phone, a disabled account).

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use bulkpatch::simulator::{SimConfig, Simulator};
use serde_json::{json, Value};

use crate::support::*;

const USERS: u32 = 4;

/// `bulkpatch run INPUT` through Graph at its default `--batch`, plus `extra`.
fn graph_run(sim: &Simulator, input: &Path, out: &Path, extra: &[&str]) -> Command {
    graph_command(sim, "run", input, out, extra)
}

fn state(sim: &Simulator) -> Vec<Value> {
    (1..=USERS)
        .map(|i| sim.graph_user(customer(1), user(i)).expect("a seeded user"))
        .collect()
}

/// The undo file's rows as (user id -> the cells that are not empty, by column), and its header.
fn undo_rows(path: &Path) -> (Vec<String>, HashMap<String, HashMap<String, String>>) {
    let mut reader = csv::Reader::from_path(path).expect("the undo file");
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    let mut rows = HashMap::new();
    for record in reader.records() {
        let record = record.unwrap();
        let cells: HashMap<String, String> = header
            .iter()
            .zip(record.iter())
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| (k.clone(), v.to_string()))
            .collect();
        assert!(
            rows.insert(cells["user_id"].clone(), cells).is_none(),
            "one line per user"
        );
    }
    (header, rows)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graph_undo_file_restores_values_and_clears_what_was_empty() {
    let sim = graph_simulator(SimConfig::default()).await;
    let seeded = [
        json!({"jobTitle": "Engineer", "department": "Sales"}),
        json!({"businessPhones": ["+1 555 0100"]}),
        json!({"jobTitle": "Lead"}),
        json!({}),
    ];
    for (i, fields) in (1..=USERS).zip(seeded) {
        sim.seed_graph_user(customer(1), user(i), fields);
    }
    let before = state(&sim);
    let dir = tempdir();
    let c = customer(1).to_string();
    let columns = [
        "customer_id",
        "user_id",
        "job_title",
        "department",
        "business_phones",
        "account_enabled",
    ];
    let input = Csv::new(&columns)
        .row(&[&c, &user(1).to_string(), "Manager", "<clear>", "", ""])
        .row(&[&c, &user(2).to_string(), "Analyst", "", "<clear>", ""])
        .row(&[&c, &user(3).to_string(), "Lead", "", "", ""])
        .row(&[&c, &user(4).to_string(), "", "", "", "false"])
        .write(dir.path(), "in.csv");
    let (out, undo) = (dir.path().join("out.csv"), dir.path().join("undo.csv"));
    let undo_arg = undo.to_str().unwrap().to_string();
    let ran = run_bin(graph_run(&sim, &input, &out, &["--undo-file", &undo_arg])).await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let results = Results::read(&out);
    assert_eq!(results.count("updated"), 3, "{:?}", results.rows);
    assert_eq!(results.count("unchanged"), 1, "user 3 is a Lead already");
    let now = sim.graph_user(customer(1), user(1)).unwrap();
    assert_eq!(
        (&now["jobTitle"], &now["department"]),
        (&json!("Manager"), &Value::Null)
    );

    let (header, rows) = undo_rows(&undo);
    assert_eq!(&header[..2], ["customer_id", "user_id"]);
    for column in [
        "job_title",
        "department",
        "business_phones",
        "account_enabled",
    ] {
        assert!(header.iter().any(|h| h == column), "{column} in {header:?}");
    }
    assert!(!header.iter().any(|h| h == "password"));
    let cells = |i: u32| -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = rows[&user(i).to_string()]
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "customer_id" | "user_id"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        v.sort();
        v
    };
    let pairs = |p: &[(&str, &str)]| -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert_eq!(
        cells(1),
        pairs(&[("department", "Sales"), ("job_title", "Engineer")])
    );
    assert_eq!(
        cells(2),
        pairs(&[("business_phones", "+1 555 0100"), ("job_title", "<clear>")]),
        "an empty job title comes back as <clear>"
    );
    assert_eq!(cells(4), pairs(&[("account_enabled", "true")]));

    // Running the undo file through Graph restores every user exactly.
    let revert = dir.path().join("revert.csv");
    let ran = run_bin(graph_run(&sim, &undo, &revert, &[])).await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert_eq!(Results::read(&revert).count("updated"), 3);
    assert_eq!(state(&sim), before);
}
