//! Torn and crafted records: a results file cut at any byte of a record, a secrets file cut
//! mid-password, crafted values in a results file, and the secrets file handed out at the end
//! (one line per row, 0600, with an `applied` column).

use std::collections::HashMap;

use bulkpatch::simulator::{Fault, SimConfig};

use crate::support::*;

/// The columns that say what happened to a row (times, attempts and ids differ between runs).
fn state(path: &std::path::Path) -> Vec<[String; 6]> {
    Results::read(path)
        .rows
        .iter()
        .map(|r| {
            [
                "line",
                "user_id",
                "outcome",
                "http_status",
                "error_code",
                "message",
            ]
            .map(|c| r[c].clone())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_results_file_torn_at_any_byte_of_a_quoted_record_resumes_to_the_clean_state() {
    let dir = tempdir();
    let input = Csv::usage_locations(5).write(dir.path(), "users.csv");
    let out = dir.path().join("out.csv");
    // Row 3 fails for good with a message full of quotes and commas (the server quotes the body).
    let script = || HashMap::from([(user(3), vec![Fault::Echo(400)])]);
    let sim = simulator(SimConfig {
        script: script(),
        ..SimConfig::default()
    })
    .await;
    let ran = run_bin(run_against(&sim, &input, &out, &["--rate", "1000/s"])).await;
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    let clean = state(&out);
    assert_eq!(clean.len(), 5);
    // The quoted record written last, as a kill -9 in the middle of writing it would leave it.
    let text = std::fs::read_to_string(&out).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    let quoted = lines.remove(3);
    assert!(
        quoted.starts_with("4,") && quoted.contains("\"\""),
        "{quoted}"
    );
    let head = lines.join("\n") + "\n";
    let start = head.len();
    let full = head + quoted + "\n";
    // Every byte inside the record, from its first byte to just before its line end, through
    // the library: what a resume finds finished, then the tail cut and a record appended.
    let finished_hashes: Vec<(u64, u64)> = Results::read(&out)
        .rows
        .iter()
        .map(|r| {
            let hash = u64::from_str_radix(&r["row_hash"], 16).unwrap();
            (r["line"].parse().unwrap(), hash)
        })
        .collect();
    for cut in start + 1..full.len() {
        std::fs::write(&out, &full.as_bytes()[..cut]).unwrap();
        let finished = bulkpatch::output::resume::Finished::load(&out, false, 100).unwrap();
        for (line, hash) in &finished_hashes {
            assert_eq!(finished.is_finished(*line, *hash), *line != 4, "cut {cut}");
        }
        bulkpatch::output::reader::cut_torn_tail(&out).unwrap();
        let mut appended = std::fs::OpenOptions::new().append(true).open(&out).unwrap();
        std::io::Write::write_all(&mut appended, format!("{quoted}\n").as_bytes()).unwrap();
        bulkpatch::output::resume::compact(&out, 100).unwrap();
        assert_eq!(state(&out), clean, "cut at byte {cut}");
    }
    // A sample of those bytes through the binary, a real resume against the simulator: every
    // fortieth, the record's first and last ones, and around its first and last quote.
    let quotes: Vec<usize> = (start..full.len())
        .filter(|&i| full.as_bytes()[i] == b'"')
        .collect();
    let (open, close) = (quotes[0], quotes[quotes.len() - 1]);
    let mut sample: Vec<usize> = (start + 1..full.len()).step_by(40).collect();
    sample.extend([start + 1, open, open + 1, close, close + 1, full.len() - 1]);
    for cut in sample {
        std::fs::write(&out, &full.as_bytes()[..cut]).unwrap();
        let sim = simulator(SimConfig {
            script: script(),
            ..SimConfig::default()
        })
        .await;
        let ran = run_bin(run_against(
            &sim,
            &input,
            &out,
            &["--resume", "--rate", "1000/s"],
        ))
        .await;
        let at = format!("cut at byte {cut} of {}: {}", full.len(), ran.stderr);
        assert_eq!(ran.code, 1, "{at}");
        assert_eq!(state(&out), clean, "{at}");
        let sent = sim.requests();
        assert_eq!(sent.len(), 1, "only the torn row is sent again: {at}");
        assert!(sent[0].path.ends_with(&user(3).to_string()), "{at}");
    }
}

#[test]
fn records_appended_after_a_torn_quote_are_read_back() {
    // As an older version left it: a record cut inside a quote, a line end, then new records.
    let dir = tempdir();
    let path = dir.path().join("out.csv");
    let record = |line: u64, outcome: &str, message: &str| {
        format!(
            "{line},c,u,{outcome},400,,{message},1,5,,,2026-11-21T00:00:00.000Z,,{line:016x},0\n"
        )
    };
    let mut text = bulkpatch::output::reader::COLUMNS[..15].join(",") + "\n";
    text += &record(2, "updated", "");
    text += "3,c,u,failed,502,,\"<html>Bad gateway, \"\"upstream\"\" said";
    text += "\n";
    for line in 3..=6 {
        text += &record(line, "updated", "\"a, \"\"quoted\"\" message\"");
    }
    std::fs::write(&path, &text).unwrap();
    let mut seen = Vec::new();
    let skipped =
        bulkpatch::output::resume::read_results(&path, 100, |_, e| seen.push(e.line)).unwrap();
    assert_eq!((seen, skipped), (vec![2, 3, 4, 5, 6], 1));
    let tally = bulkpatch::output::resume::compact(&path, 100).unwrap();
    assert_eq!(tally.count(bulkpatch::core::run_state::Outcome::Updated), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secrets_line_cut_mid_password_gets_a_new_full_password_on_resume() {
    let dir = tempdir();
    let input = Csv::usage_locations(3).write(dir.path(), "users.csv");
    let out = dir.path().join("out.csv");
    let secrets = dir.path().join("secrets.csv");
    let s = secrets.display().to_string();
    let sim = simulator(SimConfig::default()).await;
    let args = [
        "--generate-passwords",
        "--secrets-out",
        &s,
        "--rate",
        "1000/s",
    ];
    let ran = run_bin(run_against(&sim, &input, &out, &args)).await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    // As the disk filling up would leave it: row 3 (line 4) has no record and its secrets line
    // stops inside the password.
    let text = std::fs::read_to_string(&out).unwrap();
    let kept: Vec<&str> = text.lines().filter(|l| !l.starts_with("4,")).collect();
    std::fs::write(&out, kept.join("\n") + "\n").unwrap();
    let rows = Results::read(&secrets);
    let cut = |r: &HashMap<String, String>, password: &str| {
        format!(
            "{},{},{},{},{password}",
            r["line"], r["customer_id"], r["user_id"], r["user_principal_name"]
        )
    };
    let mut torn = "line,customer_id,user_id,user_principal_name,password\n".to_string();
    torn += &(cut(&rows.rows[0], &rows.rows[0]["password"]) + "\n");
    torn += &(cut(&rows.rows[1], &rows.rows[1]["password"]) + "\n");
    torn += &cut(&rows.rows[2], "Ab3$x");
    std::fs::write(&secrets, torn).unwrap();

    let sim = simulator(SimConfig::default()).await;
    let args = [&args[..], &["--resume"]].concat();
    let ran = run_bin(run_against(&sim, &input, &out, &args)).await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let sent = sim.requests();
    assert_eq!(sent.len(), 1, "only row 3 is sent");
    let password = sent_password(&sent[0]).unwrap();
    assert_ne!(password, "Ab3$x", "the cut password was sent");
    assert_eq!(password.len(), 16);
    let after = Results::read(&secrets);
    assert_eq!(after.rows.len(), 3, "one line per row");
    assert_eq!(after.line(4)["password"], password);
    assert_eq!(after.line(4)["applied"], "yes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_final_secrets_file_is_private_one_line_per_row_and_says_what_was_applied() {
    let dir = tempdir();
    let input = Csv::usage_locations(4).write(dir.path(), "users.csv");
    let out = dir.path().join("out.csv");
    let secrets = dir.path().join("secrets.csv");
    let s = secrets.display().to_string();
    let sim = simulator(SimConfig {
        script: HashMap::from([
            (user(2), vec![Fault::Status(404)]),
            (user(3), vec![Fault::Drop, Fault::Drop]),
            (user(4), vec![Fault::Status(503), Fault::Normal]),
        ]),
        ..SimConfig::default()
    })
    .await;
    let args = [
        "--generate-passwords",
        "--secrets-out",
        &s,
        "--rate",
        "1000/s",
        "--max-attempts",
        "2",
    ];
    let ran = run_bin(run_against(&sim, &input, &out, &args)).await;
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    assert_eq!(mode(&secrets), 0o600);
    let rows = Results::read(&secrets);
    assert_eq!(rows.header.last().unwrap(), "applied");
    let applied: Vec<(&str, &str)> = rows
        .rows
        .iter()
        .map(|r| (r["line"].as_str(), r["applied"].as_str()))
        .collect();
    // Updated; refused (404); no answer at all (it may have been set); updated on a retry.
    assert_eq!(
        applied,
        [("2", "yes"), ("3", "no"), ("4", "unknown"), ("5", "yes")]
    );
    let unknown = rows.line(4)["password"].clone();

    // A resume reads the rewritten file: the row with no answer is sent its same password.
    let sim = simulator(SimConfig::default()).await;
    let args = [&args[..], &["--resume"]].concat();
    let ran = run_bin(run_against(&sim, &input, &out, &args)).await;
    assert_eq!(ran.code, 1, "the 404 row stays failed: {}", ran.stderr);
    let sent = requests_for(&sim.requests(), user(3));
    assert_eq!(sent.len(), 1);
    assert_eq!(sent_password(&sent[0]).unwrap(), unknown);
    let rows = Results::read(&secrets);
    assert_eq!(rows.rows.len(), 4);
    assert_eq!(rows.line(4)["applied"], "yes");
    assert_eq!(rows.line(4)["password"], unknown);
    assert_eq!(mode(&secrets), 0o600);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crafted_values_in_a_results_file_give_a_clear_error_or_a_clamped_value() {
    let dir = tempdir();
    let input = Csv::usage_locations(2).write(dir.path(), "users.csv");
    let out = dir.path().join("out.csv");
    let sim = simulator(SimConfig::default()).await;
    let ran = run_bin(run_against(&sim, &input, &out, &[])).await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let clean = std::fs::read_to_string(&out).unwrap();
    let first = clean.lines().nth(1).unwrap().to_string();
    let mut cells: Vec<&str> = first.split(',').collect();
    let with = |cells: &[&str], i: usize, value: &str| {
        let mut c = cells.to_vec();
        c[i] = value;
        c.join(",")
    };
    // A line no input has: a clear error naming the file, its line and the column.
    std::fs::write(
        &out,
        clean.replacen(&first, &with(&cells, 0, "18446744073709551615"), 1),
    )
    .unwrap();
    let ran = run_bin(run_against(&sim, &input, &out, &["--resume"])).await;
    assert_eq!(ran.code, 2, "{}", ran.stderr);
    assert!(
        ran.stderr.contains("line 2, column line") && ran.stderr.contains("out.csv"),
        "{}",
        ran.stderr
    );
    // Year 9999, absurd counts: the report is small and the resume does not panic.
    for (i, value) in [
        (7, "99999999999999999999999"),
        (8, "18446744073709551615"),
        (11, "9999-12-31T23:59:59.999Z"),
        (14, "18446744073709551615"),
    ] {
        cells[i] = value;
        let crafted = clean.replacen(&first, &cells.join(","), 1);
        let report = dir.path().join("report.html");
        std::fs::write(&out, &crafted).unwrap();
        let r = report.display().to_string();
        let o = out.display().to_string();
        let ran = run_bin(bulkpatch(&["report", &o, "--html", &r])).await;
        assert_eq!(ran.code, 0, "{}", ran.stderr);
        assert!(std::fs::metadata(&report).unwrap().len() < 1_000_000);
        // Both records appear twice (the original kept too): the sums saturate.
        let twice =
            crafted.clone() + &crafted.lines().skip(1).collect::<Vec<_>>().join("\n") + "\n";
        std::fs::write(&out, twice).unwrap();
        let ran = run_bin(bulkpatch(&["report", &o, "--html", &r])).await;
        assert_eq!(ran.code, 0, "{}", ran.stderr);
        let ran = run_bin(run_against(&sim, &input, &out, &["--resume"])).await;
        assert!(
            ran.code == 0 || ran.code == 2,
            "{}: {}",
            ran.code,
            ran.stderr
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_in_flight_at_an_interrupt_is_unknown_in_the_secrets_file() {
    let sim = simulator(SimConfig {
        script: HashMap::from([(
            user(2),
            vec![Fault::Slow(std::time::Duration::from_secs(30))],
        )]),
        ..SimConfig::default()
    })
    .await;
    let dir = tempdir();
    let input = Csv::usage_locations(3).write(dir.path(), "users.csv");
    let out = dir.path().join("out.csv");
    let secrets = dir.path().join("secrets.csv");
    let s = secrets.display().to_string();
    let args = [
        "--generate-passwords",
        "--secrets-out",
        &s,
        "--rate",
        "unlimited",
        "--concurrency",
        "3",
        "--grace-period",
        "10ms",
    ];
    let child = run_against(&sim, &input, &out, &args).spawn().unwrap();
    // Rows 1 and 3 answered, row 2 held by the server.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while sim.stats().ok < 2 || sim.stats().received < 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "the rows never arrived"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    send_signal(&child, "INT");
    let ran = wait_child(child).await;
    assert_eq!(ran.code, 130, "{}", ran.stderr);
    assert_eq!(Results::read(&out).line(3)["outcome"], "interrupted");
    let rows = Results::read(&secrets);
    let applied: Vec<&str> = rows.rows.iter().map(|r| r["applied"].as_str()).collect();
    assert_eq!(applied, ["yes", "unknown", "yes"]);
    assert_eq!(mode(&secrets), 0o600);
}
