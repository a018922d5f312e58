//! Plans tied to their input: a dry run's and an audit's report is a plan (desired values per
//! field, invalid rows, per customer, an audit's current -> desired), every report, `.meta` and
//! summary JSON carry the input's SHA-256 and row count, `--expect-sha256` and `--max-changes`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use bulkpatch::simulator::{Fault, SimConfig};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::support::*;

const SCRIPT: &str = "<script>alert(1)</script>";
const PASSWORD: &str = "Renew456*plan";

/// The SHA-256 of a file, computed here, in hex.
fn sha256_of(path: &Path) -> String {
    let digest = Sha256::digest(std::fs::read(path).unwrap());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn meta_sha256(results: &Path) -> (String, u64) {
    let meta = bulkpatch::output::resume::Meta::read(results).expect("a readable .meta");
    let f = meta.fingerprint;
    (
        f.input_sha256.expect("the .meta has the input's SHA-256"),
        f.rows,
    )
}

fn summary_json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// `bulkpatch report RESULTS --markdown MD --html HTML`: both texts.
async fn reports(results: &Path, dir: &Path) -> (String, String) {
    let (md, html) = (dir.join("plan.md"), dir.join("plan.html"));
    let ran = run_bin(bulkpatch(&[
        "report",
        results.to_str().unwrap(),
        "--markdown",
        md.to_str().unwrap(),
        "--html",
        html.to_str().unwrap(),
    ]))
    .await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    (
        std::fs::read_to_string(md).unwrap(),
        std::fs::read_to_string(html).unwrap(),
    )
}

/// Customer 1: 6 rows to DE, 2 to FR (one of them with a password); customer 2: 3 rows to DE
/// with a display name (one a script), 1 invalid usage location, 1 repeated user; customer 3:
/// 24 rows each with its own display name (more than a plan shows). 35 valid rows, 2 invalid.
fn plan_input(dir: &Path) -> PathBuf {
    let header = [
        "customer_id",
        "user_id",
        "usage_location",
        "display_name",
        "password",
    ];
    let mut csv = Csv::new(&header);
    let (c1, c2, c3) = (
        customer(1).to_string(),
        customer(2).to_string(),
        customer(3).to_string(),
    );
    for i in 1..=6 {
        csv = csv.row(&[&c1, &user(i).to_string(), "DE", "", ""]);
    }
    csv = csv.row(&[&c1, &user(7).to_string(), "fr", "", ""]);
    csv = csv.row(&[&c1, &user(8).to_string(), "FR", "", PASSWORD]);
    csv = csv.row(&[&c2, &user(21).to_string(), "DE", SCRIPT, ""]);
    csv = csv.row(&[&c2, &user(22).to_string(), "DE", "Anna Berg", ""]);
    csv = csv.row(&[&c2, &user(23).to_string(), "DE", "Anna Berg", ""]);
    csv = csv.row(&[&c2, &user(24).to_string(), "XX", "", ""]); // line 13: invalid
    csv = csv.row(&[&c2, &user(21).to_string(), "DE", "", ""]); // line 14: repeats line 10
    for i in 1..=24 {
        csv = csv.row(&[
            &c3,
            &user(100 + i).to_string(),
            "",
            &format!("Name {i:02}"),
            "",
        ]);
    }
    csv.write(dir, "in.csv")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_report_is_a_plan_with_the_numbers_of_its_input() {
    let dir = tempdir();
    let input = plan_input(dir.path());
    let (out, summary, run_html) = (
        dir.path().join("out.csv"),
        dir.path().join("summary.json"),
        dir.path().join("run.html"),
    );
    let ran = run_bin(bulkpatch(&[
        "run",
        input.to_str().unwrap(),
        "--dry-run",
        "--out",
        out.to_str().unwrap(),
        "--summary-json",
        summary.to_str().unwrap(),
        "--report",
        run_html.to_str().unwrap(),
    ]))
    .await;
    assert_eq!(ran.code, 1, "invalid rows: {}", ran.stderr);
    let sha = sha256_of(&input);

    let (md, html) = reports(&out, dir.path()).await;
    assert!(md.starts_with("# bulkpatch Plan: in\\.csv\n"), "{md}");
    assert!(md.contains(&format!("SHA-256 {sha}, 37 data rows")), "{md}");
    for want in [
        "### usageLocation: 11 rows",
        "| usageLocation -> DE | 9 |",
        "| usageLocation -> FR | 2 |",
        "### displayName: 27 rows",
        "| displayName -> Anna Berg | 2 |",
        "| displayName -> &lt;script&gt;alert\\(1\\)&lt;/script&gt; | 1 |",
        // 26 distinct names, 20 shown: the 6 others on one line.
        "| 6 other values | 6 |",
        "password: 1 row gets a new password (never shown).",
        "| planned | 35 |",
        "| invalid | 2 |",
    ] {
        assert!(md.contains(want), "lacks {want}:\n{md}");
    }
    let lines_of = |field: &str| {
        md.lines()
            .filter(|l| l.starts_with(&format!("| {field} -> ")))
            .count()
    };
    assert_eq!(lines_of("displayName"), 20, "at most 20 values per field");
    // The invalid rows, each with its line and reason.
    let invalid: Vec<&str> = md
        .split("## Invalid rows")
        .nth(1)
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("| 1"))
        .collect();
    assert_eq!(invalid.len(), 2, "{md}");
    assert!(invalid[0].starts_with("| 13 |") && invalid[0].contains("usage\\_location \"XX\""));
    assert!(invalid[1].starts_with("| 14 |") && invalid[1].contains("as line 10"));
    // Per customer: rows, planned, problems.
    for (c, rows, planned, problems) in [(1, 8, 8, 0), (2, 5, 3, 2), (3, 24, 24, 0)] {
        let row = format!("| {} | {rows} | {planned} | {problems} |", customer(c));
        assert!(md.contains(&row), "lacks {row}:\n{md}");
    }
    assert!(
        !md.contains("updated") && !md.contains("Requests:"),
        "a plan sends nothing"
    );

    // The HTML plan: the same title and numbers, data escaped, the password never shown.
    for page in [&html, &std::fs::read_to_string(&run_html).unwrap()] {
        assert!(page.contains("<h1>Plan: in.csv</h1>") && !page.contains("Run report"));
        assert!(page.contains(&format!(
            "<code class=\"sha256\">{sha}</code> · 37 data rows"
        )));
        assert!(page.contains("usageLocation -&gt; DE</td><td class=\"num\">9</td>"));
        assert!(page.contains("&lt;script&gt;") && !page.contains(SCRIPT));
        assert!(!page.contains(PASSWORD));
    }
    assert!(!md.contains(PASSWORD) && !md.contains("<script"));

    assert_eq!(meta_sha256(&out), (sha.clone(), 37));
    let s = summary_json(&summary);
    assert_eq!(
        (s["input_sha256"].as_str(), s["rows"].as_u64()),
        (Some(sha.as_str()), Some(37))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_audit_report_is_a_plan_with_current_and_desired_values() {
    let dir = tempdir();
    let sim = simulator(SimConfig::default()).await;
    let (c1, c2) = (customer(1), customer(2));
    for i in 1..=3 {
        sim.seed_user(c1, user(i), json!({"usageLocation": "US"}));
    }
    sim.seed_user(c1, user(4), json!({"usageLocation": "DE"}));
    sim.seed_user(
        c2,
        user(5),
        json!({"usageLocation": "FR", "displayName": "Old"}),
    );
    let input = Csv::new(&["customer_id", "user_id", "usage_location", "display_name"])
        .row(&[&c1.to_string(), &user(1).to_string(), "DE", ""])
        .row(&[&c1.to_string(), &user(2).to_string(), "DE", ""])
        .row(&[&c1.to_string(), &user(3).to_string(), "DE", ""])
        .row(&[&c1.to_string(), &user(4).to_string(), "DE", ""])
        .row(&[&c2.to_string(), &user(5).to_string(), "DE", "New"])
        .row(&[&c2.to_string(), "not-a-guid", "DE", ""])
        .write(dir.path(), "audit.csv");
    let out = dir.path().join("audit.out.csv");
    let mut cmd = bulkpatch(&[
        "audit",
        input.to_str().unwrap(),
        "--base-url",
        &sim.base_url(),
        "--out",
        out.to_str().unwrap(),
    ]);
    cmd.env("BULKPATCH_TOKEN", sim.token());
    let ran = run_bin(cmd).await;
    assert_eq!(ran.code, 1, "an invalid row: {}", ran.stderr);
    assert!(sim.requests().iter().all(|r| r.method == "GET"));

    let (md, html) = reports(&out, dir.path()).await;
    assert!(
        md.starts_with("# bulkpatch Audit plan: audit\\.csv\n"),
        "{md}"
    );
    assert!(html.contains("<h1>Audit plan: audit.csv</h1>"));
    let sha = sha256_of(&input);
    assert!(md.contains(&format!("SHA-256 {sha}, 6 data rows")), "{md}");
    for want in [
        // Desired values: every valid row that sets the field.
        "### usageLocation: 5 rows",
        "| usageLocation -> DE | 5 |",
        "| displayName -> New | 1 |",
        // Current -> desired, against the simulator's state.
        "### usageLocation: 4 would change, 1 already as desired",
        "| US | DE | 3 |",
        "| FR | DE | 1 |",
        "| already DE | | 1 |",
        "| Old | New | 1 |",
        // Per customer: rows, would change, problems.
        &format!("| {c1} | 4 | 3 | 0 |"),
        &format!("| {c2} | 2 | 1 | 1 |"),
    ] {
        assert!(md.contains(want), "lacks {want}:\n{md}");
    }
    let invalid = md.split("## Invalid rows").nth(1).unwrap();
    assert!(
        invalid.contains("| 7 |") && invalid.contains("user\\_id \"not-a-guid\""),
        "{md}"
    );
    assert_eq!(meta_sha256(&out), (sha, 6));
}

/// A simulator and a three-row input.
async fn three_rows(dir: &Path) -> (bulkpatch::simulator::Simulator, PathBuf, PathBuf) {
    let sim = simulator(SimConfig::default()).await;
    let input = Csv::usage_locations(3).write(dir, "in.csv");
    (sim, input, dir.join("out.csv"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expect_sha256_runs_only_the_approved_file() {
    let dir = tempdir();
    let (sim, input, out) = three_rows(dir.path()).await;
    let sha = sha256_of(&input);
    let summary = dir.path().join("summary.json");
    let summary_arg = summary.to_str().unwrap();

    // Another file's hash: refused before anything is sent or created.
    let other = "0".repeat(64);
    let args = ["--expect-sha256", &other, "--summary-json", summary_arg];
    let ran = run_bin(run_against(&sim, &input, &out, &args)).await;
    assert_eq!(ran.code, 2, "{}", ran.stderr);
    assert!(
        ran.stderr.contains(&sha) && ran.stderr.contains(&other),
        "{}",
        ran.stderr
    );
    assert_eq!(sim.stats().received, 0, "nothing sent");
    assert!(!out.exists(), "no results file");
    assert!(
        !bulkpatch::output::resume::meta_path(&out).exists(),
        "no .meta"
    );
    let s = summary_json(&summary);
    assert_eq!(s["exit_code"], 2);
    assert_eq!(s["input_sha256"].as_str(), Some(sha.as_str()));

    // Malformed: a configuration error naming the option.
    for bad in [
        "abc",
        &format!("{sha}00"),
        &sha.replace(|c: char| c.is_ascii_digit(), "x"),
    ] {
        let ran = run_bin(run_against(&sim, &input, &out, &["--expect-sha256", bad])).await;
        assert_eq!(ran.code, 2, "{bad}: {}", ran.stderr);
        assert!(ran.stderr.contains("--expect-sha256"), "{}", ran.stderr);
        assert_eq!(sim.stats().received, 0);
        assert!(!out.exists());
    }

    // The right hash (upper case, as some tools print it): the run goes.
    let upper = sha.to_uppercase();
    let ran = run_bin(run_against(
        &sim,
        &input,
        &out,
        &["--expect-sha256", &upper],
    ))
    .await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert_eq!(sim.requests().len(), 3);
    assert_eq!(meta_sha256(&out), (sha.clone(), 3));

    // A resume checks the input too: a changed file is refused and the results stay as they were.
    let before = std::fs::read(&out).unwrap();
    let args = ["--resume", "--expect-sha256", &other];
    let ran = run_bin(run_against(&sim, &input, &out, &args)).await;
    assert_eq!(ran.code, 2, "{}", ran.stderr);
    assert!(ran.stderr.contains(&sha), "{}", ran.stderr);
    assert_eq!(std::fs::read(&out).unwrap(), before);
    let ran = run_bin(run_against(
        &sim,
        &input,
        &out,
        &["--resume", "--expect-sha256", &sha],
    ))
    .await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert_eq!(sim.requests().len(), 3, "nothing left to send");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_changes_counts_valid_rows_before_anything_is_sent() {
    let dir = tempdir();
    let sim = simulator(SimConfig::default()).await;
    let out = dir.path().join("out.csv");
    // Three valid rows and an invalid one: the invalid one does not count.
    let input = Csv::usage_locations(3)
        .row(&[&customer(1).to_string(), &user(9).to_string(), "XX"])
        .write(dir.path(), "in.csv");

    let ran = run_bin(run_against(&sim, &input, &out, &["--max-changes", "2"])).await;
    assert_eq!(ran.code, 2, "{}", ran.stderr);
    assert!(
        ran.stderr
            .contains("3 rows would be written, more than --max-changes 2"),
        "{}",
        ran.stderr
    );
    assert_eq!(sim.stats().received, 0, "nothing sent");
    assert!(!out.exists() && !bulkpatch::output::resume::meta_path(&out).exists());

    // With --skip-unchanged the users are read first and only the rows that change count:
    // user 1 is already in DE, so 2 rows change and the run goes; every read comes before the
    // first write.
    sim.seed_user(
        customer(1),
        user(1),
        serde_json::json!({"usageLocation": "DE"}),
    );
    sim.seed_user(
        customer(1),
        user(2),
        serde_json::json!({"usageLocation": "US"}),
    );
    sim.seed_user(
        customer(1),
        user(3),
        serde_json::json!({"usageLocation": "US"}),
    );
    let args = [
        "--max-changes",
        "2",
        "--skip-unchanged",
        "--concurrency",
        "3",
    ];
    let ran = run_bin(run_against(&sim, &input, &out, &args)).await;
    assert_eq!(ran.code, 1, "the invalid row only: {}", ran.stderr);
    let results = Results::read(&out);
    assert_eq!(
        (results.count("updated"), results.count("unchanged")),
        (2, 1)
    );
    let requests = sim.requests();
    let last_read = requests
        .iter()
        .filter(|r| r.method == "GET")
        .map(|r| r.received_at)
        .max();
    let first_write = requests
        .iter()
        .filter(|r| r.method == "PATCH")
        .map(|r| r.received_at)
        .min();
    assert_eq!(requests.iter().filter(|r| r.method == "PATCH").count(), 2);
    assert!(last_read < first_write, "every read before the first write");

    // With a limit of 1, the two rows that change are too many: nothing is written.
    sim.seed_user(
        customer(1),
        user(2),
        serde_json::json!({"usageLocation": "US"}),
    );
    sim.seed_user(
        customer(1),
        user(3),
        serde_json::json!({"usageLocation": "US"}),
    );
    let sent = sim.requests().len();
    let out2 = dir.path().join("out2.csv");
    let args = ["--max-changes", "1", "--skip-unchanged"];
    let ran = run_bin(run_against(&sim, &input, &out2, &args)).await;
    assert_eq!(ran.code, 2, "{}", ran.stderr);
    assert!(
        ran.stderr.contains("more than --max-changes 1"),
        "{}",
        ran.stderr
    );
    assert!(
        !sim.requests()[sent..].iter().any(|r| r.method == "PATCH"),
        "nothing written"
    );

    // A dry run sends nothing: it warns and plans.
    let ran = run_bin(bulkpatch(&[
        "run",
        input.to_str().unwrap(),
        "--dry-run",
        "--out",
        dir.path().join("plan.csv").to_str().unwrap(),
        "--max-changes",
        "2",
    ]))
    .await;
    assert_eq!(ran.code, 1, "the invalid row: {}", ran.stderr);
    assert!(
        ran.stderr.contains("more than --max-changes 2"),
        "{}",
        ran.stderr
    );

    // At the limit: the run goes.
    let sent = sim.requests().len();
    let ran = run_bin(run_against(
        &sim,
        &input,
        &out,
        &["--max-changes", "3", "--force"],
    ))
    .await;
    assert_eq!(ran.code, 1, "the invalid row: {}", ran.stderr);
    assert_eq!(sim.requests().len() - sent, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_changes_on_a_resume_counts_only_the_rows_left() {
    let dir = tempdir();
    // Users 4 and 5 fail with 503s (transient): a resume sends them again.
    let sim = simulator(SimConfig {
        script: HashMap::from([
            (user(4), vec![Fault::Status(503); 10]),
            (user(5), vec![Fault::Status(503); 10]),
        ]),
        ..SimConfig::default()
    })
    .await;
    let input = Csv::usage_locations(5).write(dir.path(), "in.csv");
    let out = dir.path().join("out.csv");
    let ran = run_bin(run_against(&sim, &input, &out, &["--max-attempts", "1"])).await;
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    assert_eq!(sim.requests().len(), 5);

    let args = ["--resume", "--max-attempts", "1", "--max-changes", "1"];
    let ran = run_bin(run_against(&sim, &input, &out, &args)).await;
    assert_eq!(ran.code, 2, "{}", ran.stderr);
    assert!(
        ran.stderr
            .contains("2 rows would be written, more than --max-changes 1"),
        "{}",
        ran.stderr
    );
    assert_eq!(sim.requests().len(), 5, "nothing sent");

    let args = ["--resume", "--max-attempts", "1", "--max-changes", "2"];
    let ran = run_bin(run_against(&sim, &input, &out, &args)).await;
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    assert_eq!(sim.requests().len(), 7, "the two rows left, and no more");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sha256_is_of_the_whole_file_bom_and_last_line_included() {
    let dir = tempdir();
    let bom = Csv::usage_locations(2)
        .excel_european()
        .write(dir.path(), "bom.csv");
    let unterminated = dir.path().join("unterminated.csv");
    let text = std::fs::read_to_string(Csv::usage_locations(2).write(dir.path(), "t.csv")).unwrap();
    std::fs::write(&unterminated, text.trim_end()).unwrap();
    for input in [bom, unterminated] {
        let out = dir.path().join("out.csv");
        let args = [
            "run",
            input.to_str().unwrap(),
            "--dry-run",
            "--force",
            "--out",
        ];
        let mut args = args.to_vec();
        args.push(out.to_str().unwrap());
        let ran = run_bin(bulkpatch(&args)).await;
        assert_eq!(ran.code, 0, "{}", ran.stderr);
        assert_eq!(
            meta_sha256(&out),
            (sha256_of(&input), 2),
            "{}",
            input.display()
        );
        assert!(
            ran.stderr.contains(&sha256_of(&input)),
            "the summary names it: {}",
            ran.stderr
        );
    }
}

/// The plan's Markdown, line for line, against `tests/fixtures/plan/plan.md` (paths, time and run
/// id masked). `UPDATE_SNAPSHOTS=1 cargo test plan_snapshot` rewrites the file after a change
/// to the report: review its diff.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_snapshot() {
    let dir = tempdir();
    let input = plan_input(dir.path());
    let out = dir.path().join("out.csv");
    let args = [
        "run",
        input.to_str().unwrap(),
        "--dry-run",
        "--out",
        out.to_str().unwrap(),
    ];
    let ran = run_bin(bulkpatch(&args)).await;
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    let (md, _) = reports(&out, dir.path()).await;
    let masked: String = md
        .lines()
        .map(|l| match l.split_once(": ") {
            Some((k @ ("- Input" | "- Results"), _)) => format!("{k}: <masked>\n"),
            _ if l.starts_with("- Generated ") => "- Generated <masked>\n".to_string(),
            _ => format!("{l}\n"),
        })
        .collect();
    let snapshot = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/plan/plan.md");
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::create_dir_all(snapshot.parent().unwrap()).unwrap();
        std::fs::write(&snapshot, &masked).unwrap();
    }
    let want =
        std::fs::read_to_string(&snapshot).expect("the snapshot (UPDATE_SNAPSHOTS=1 writes it)");
    assert!(
        masked == want,
        "the plan differs from {}:\n{masked}",
        snapshot.display()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_with_only_invalid_rows_is_still_a_plan() {
    let dir = tempdir();
    let input = Csv::new(&["customer_id", "user_id", "usage_location"])
        .row(&[&customer(1).to_string(), &user(1).to_string(), "XX"])
        .row(&[&customer(1).to_string(), "", "DE"])
        .write(dir.path(), "in.csv");
    let out = dir.path().join("out.csv");
    let args = [
        "run",
        input.to_str().unwrap(),
        "--dry-run",
        "--out",
        out.to_str().unwrap(),
    ];
    let ran = run_bin(bulkpatch(&args)).await;
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    let (md, html) = reports(&out, dir.path()).await;
    assert!(md.starts_with("# bulkpatch Plan: in\\.csv\n"), "{md}");
    assert!(html.contains("<h1>Plan: in.csv</h1>"));
    assert!(
        md.contains("| planned | 0 |") && md.contains("No field to change."),
        "{md}"
    );
    let invalid = md.split("## Invalid rows").nth(1).unwrap();
    assert!(
        invalid.contains("| 2 |") && invalid.contains("| 3 |"),
        "{md}"
    );
}

/// A token endpoint that answers its first request with `token` only once the test says so:
/// the run is held after its first pass over the input and before the reader's.
async fn held_token_endpoint(
    token: String,
) -> (
    String,
    tokio::sync::oneshot::Receiver<()>,
    tokio::sync::oneshot::Sender<()>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/token", listener.local_addr().unwrap());
    let (asked_tx, asked) = tokio::sync::oneshot::channel();
    let (go, go_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let (mut conn, _) = listener.accept().await.unwrap();
        let mut request = Vec::new();
        let mut buf = [0u8; 4096];
        // The head, then as many body bytes as Content-Length says.
        loop {
            let n = conn.read(&mut buf).await.unwrap();
            assert!(n > 0, "the token request ended early");
            request.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&request).to_lowercase();
            if let Some(end) = text.find("\r\n\r\n") {
                let length = text
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                if request.len() >= end + 4 + length {
                    break;
                }
            }
        }
        asked_tx.send(()).unwrap();
        go_rx.await.unwrap();
        let body =
            format!(r#"{{"access_token":"{token}","token_type":"Bearer","expires_in":3600}}"#);
        let answer = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        conn.write_all(answer.as_bytes()).await.unwrap();
    });
    (url, asked, go)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_input_changed_while_the_run_reads_it_stops_the_run() {
    let dir = tempdir();
    let sim = simulator(SimConfig::default()).await;
    // Larger than the reader's buffers (its first 64 KiB are read when it opens the file).
    let input = Csv::usage_locations(3000).write(dir.path(), "in.csv");
    assert!(std::fs::metadata(&input).unwrap().len() > 200_000);
    let approved = sha256_of(&input);
    let (url, asked, go) = held_token_endpoint(sim.token().to_string()).await;
    let refresh = dir.path().join("refresh-token");
    {
        use std::io::Write;
        let mut f = bulkpatch::core::files::create_private_file(&refresh).unwrap();
        writeln!(f, "refresh-1").unwrap();
    }
    let config = dir.path().join("auth.toml");
    let text = format!(
        "[auth]\ntoken_url = \"{url}\"\nclient_id = \"app\"\nrefresh_token_file = \"{}\"\n",
        refresh.display()
    );
    std::fs::write(&config, text).unwrap();
    let (out, summary) = (dir.path().join("out.csv"), dir.path().join("summary.json"));
    let args = [
        "--expect-sha256",
        &approved,
        "--summary-json",
        summary.to_str().unwrap(),
        "--rate",
        "unlimited",
    ];
    let run = run_bin(run_with_config(&sim, &input, &out, &config, &args));
    let run = tokio::spawn(run);
    // The digest was checked (the run asks for a token only after): now the file changes in
    // place, under the reader's open file.
    asked.await.unwrap();
    let changed = std::fs::read_to_string(&input)
        .unwrap()
        .replace(",DE", ",FR");
    std::fs::write(&input, &changed).unwrap();
    go.send(()).unwrap();
    let ran = run.await.unwrap();
    assert_eq!(ran.code, 2, "{}", ran.stderr);
    let s = summary_json(&summary);
    let stopped = s["stopped"].as_str().unwrap();
    assert!(
        stopped.contains("the input file changed while the run read it"),
        "{stopped}"
    );
    // The reader read its first part before the change: its digest is of neither file.
    assert!(
        stopped.contains(&format!("SHA-256 {approved} when checked")),
        "{stopped}"
    );
    assert!(
        !stopped.contains(&format!("{approved} when read")),
        "{stopped}"
    );
    assert_eq!(s["input_sha256"].as_str(), Some(approved.as_str()));
    // The rows held back when the change was found are never sent.
    assert!(sim.requests().len() < 3000, "{}", sim.requests().len());
}
