//! The bad-input corpus: every case of tests/fixtures/bad/expected.toml goes through the real
//! binary as a dry run, and its exit code, error or per-row outcomes are checked, plus what
//! must hold for any input: no panic, no row lost, no secret printed.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Deserialize;
use uuid::Uuid;

use crate::support::*;

/// The corpus directory.
fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bad")
}

const MANIFEST: &str = "expected.toml";
/// The fewest committed fixtures the corpus may hold.
const MIN_FILES: usize = 32;
/// The results file's documented columns, in order (later versions may append more).
const COLUMNS: [&str; 14] = [
    "line",
    "customer_id",
    "user_id",
    "outcome",
    "http_status",
    "error_code",
    "message",
    "attempts",
    "elapsed_ms",
    "request_id",
    "correlation_id",
    "finished_at",
    "body",
    "row_hash",
];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    case: Vec<Case>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    file: String,
    what: String,
    generated: Option<String>,
    #[serde(default)]
    args: Vec<String>,
    exit: i32,
    fatal: Option<String>,
    /// exit 1 with no data rows: a substring of stderr; no results file is written.
    nothing_to_do: Option<String>,
    rows_total: Option<usize>,
    /// Input line -> (outcome, message substring; "" = no message).
    #[serde(default)]
    rows: BTreeMap<String, (String, String)>,
    #[serde(default)]
    cells: Vec<CellCheck>,
    #[serde(default)]
    secrets: Vec<String>,
    known_issue: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CellCheck {
    line: u64,
    column: String,
    equals: Option<String>,
    starts_with: Option<String>,
    contains: Option<String>,
    not_contains: Option<String>,
    max_chars: Option<usize>,
}

impl Case {
    fn name(&self) -> String {
        if self.args.is_empty() {
            self.file.clone()
        } else {
            format!("{} {}", self.file, self.args.join(" "))
        }
    }

    /// The expected rows with their lines as numbers.
    fn expected_rows(&self) -> BTreeMap<u64, (&str, &str)> {
        self.rows
            .iter()
            .map(|(line, (outcome, message))| {
                let line = line.parse().unwrap_or_else(|_| {
                    panic!("{}: row key {line:?} is not a line number", self.file)
                });
                (line, (outcome.as_str(), message.as_str()))
            })
            .collect()
    }
}

fn load_manifest() -> Manifest {
    let path = corpus().join(MANIFEST);
    let text = std::fs::read_to_string(&path).expect("read the corpus manifest");
    toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The manifest itself is consistent, and lists exactly the files of the corpus directory.
fn check_manifest(manifest: &Manifest) {
    let dir = corpus();
    let mut listed = BTreeSet::new();
    for case in &manifest.case {
        let name = case.name();
        assert!(!case.what.trim().is_empty(), "{name}: say what the case is");
        assert!([0, 1, 2].contains(&case.exit), "{name}: exit is 0, 1 or 2");
        if case.exit == 2 {
            assert!(case.fatal.is_some(), "{name}: exit 2 needs `fatal`");
            assert!(
                case.rows.is_empty() && case.rows_total.is_none() && case.cells.is_empty(),
                "{name}: a fatal case has no rows"
            );
        } else if case.nothing_to_do.is_some() {
            assert_eq!(case.exit, 1, "{name}: nothing to do is exit 1");
            assert!(
                case.fatal.is_none() && case.rows.is_empty() && case.rows_total.is_none(),
                "{name}: nothing to do has no rows"
            );
        } else {
            assert!(case.fatal.is_none(), "{name}: `fatal` is for exit 2");
            let rows = case.expected_rows();
            assert_eq!(
                case.rows_total,
                Some(rows.len()),
                "{name}: rows_total must be given and match the rows listed"
            );
            for (line, (outcome, message)) in &rows {
                match *outcome {
                    "planned" => {}
                    "invalid" => assert!(!message.is_empty(), "{name}: line {line} needs a reason"),
                    other => panic!("{name}: line {line}: outcome {other:?} in a dry run"),
                }
            }
            let all_planned = rows.values().all(|(o, _)| *o == "planned");
            assert_eq!(
                case.exit,
                if all_planned { 0 } else { 1 },
                "{name}: exit 0 means every row planned, 1 some invalid"
            );
        }
        for check in &case.cells {
            assert!(
                COLUMNS.contains(&check.column.as_str()),
                "{name}: no results column {:?}",
                check.column
            );
        }
        match &case.generated {
            Some(_) => assert!(
                !dir.join(&case.file).exists(),
                "{name}: a generated file must not also be committed"
            ),
            None => {
                assert!(dir.join(&case.file).is_file(), "{name}: no such fixture");
                listed.insert(case.file.clone());
            }
        }
    }
    let present: BTreeSet<String> = std::fs::read_dir(&dir)
        .expect("list the corpus")
        .map(|e| {
            e.expect("a directory entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|n| n != MANIFEST && !n.starts_with('.'))
        .collect();
    let unlisted: Vec<_> = present.difference(&listed).collect();
    assert!(
        unlisted.is_empty(),
        "fixtures missing from {MANIFEST}: {unlisted:?}"
    );
    assert!(
        listed.len() >= MIN_FILES,
        "the corpus should hold at least {MIN_FILES} files, it has {}",
        listed.len()
    );
}

const CUSTOMER: &str = "0a6b1a8e-3c1f-4f0e-9a8e-1b2c3d4e5f60";

fn user_id(n: u32) -> String {
    format!("4b10bf41-ab11-40e3-8c53-{n:012}")
}

/// Writes a generated input (too big to commit) to `path`.
fn generate(generator: &str, path: &Path) {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).expect("create the input"));
    let c = CUSTOMER;
    match generator {
        // Lines 3 and 4: a 1 MiB display_name, unquoted then quoted; line 5: a 1 MiB user_id.
        "one_mb_field" => {
            let big = "x".repeat(1 << 20);
            writeln!(out, "customer_id,user_id,display_name").unwrap();
            writeln!(out, "{c},{},Anna Berg", user_id(1)).unwrap();
            writeln!(out, "{c},{},{big}", user_id(2)).unwrap();
            writeln!(out, "{c},{},\"{big}\"", user_id(3)).unwrap();
            writeln!(out, "{c},{big},Dan Eng").unwrap();
            writeln!(out, "{c},{},Eva Falk", user_id(5)).unwrap();
        }
        // customer_id,user_id,usage_location then extra_4..extra_10000. Line 4 is a field
        // short, line 5 has one non-empty field more than the header.
        "ten_thousand_columns" => {
            const WIDTH: usize = 10_000;
            let extra = |n: usize| -> String { (4..=n).map(|i| format!(",v{i}")).collect() };
            let header: String = (4..=WIDTH).map(|i| format!(",extra_{i}")).collect();
            writeln!(out, "customer_id,user_id,usage_location{header}").unwrap();
            let widths = [WIDTH, WIDTH, WIDTH - 1, WIDTH + 1, WIDTH];
            for (n, width) in (1..).zip(widths) {
                writeln!(out, "{c},{},DE{}", user_id(n), extra(width)).unwrap();
            }
        }
        other => panic!("no generator {other:?}"),
    }
    out.flush().expect("write the input");
}

/// A character that has no business on a terminal or in a one-line message.
fn is_bad_char(c: char) -> bool {
    c.is_control() && c != '\n'
}

/// Text from the binary as it may be printed: control characters other than newlines escaped.
fn shown(text: &str) -> String {
    text.chars()
        .map(|c| {
            if is_bad_char(c) {
                c.escape_debug().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Runs one case in `dir`; returns what differs from the manifest (empty: the case passes).
async fn run_case(case: &Case, dir: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    let input = match &case.generated {
        Some(generator) => {
            let path = dir.join(&case.file);
            generate(generator, &path);
            path
        }
        None => corpus().join(&case.file),
    };
    let out = dir.join("results.csv");
    let mut args = vec![
        "run".to_string(),
        input.display().to_string(),
        "--dry-run".into(),
        "--out".into(),
        out.display().to_string(),
    ];
    args.extend(case.args.iter().cloned());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let ran = run_bin(bulkpatch(&args)).await;
    let results_bytes = std::fs::read(&out).unwrap_or_default();

    // What holds for any input.
    for (stream, text) in [("stdout", &ran.stdout), ("stderr", &ran.stderr)] {
        if text.contains("panicked") {
            problems.push(format!("{stream} shows a panic:\n{}", shown(text)));
        }
        if let Some(c) = text.chars().find(|c| is_bad_char(*c)) {
            problems.push(format!(
                "{stream} holds the control character {c:?}: {text:?}"
            ));
        }
    }
    for secret in &case.secrets {
        let leaked = [
            ("stdout", ran.stdout.contains(secret.as_str())),
            ("stderr", ran.stderr.contains(secret.as_str())),
            (
                "the results file",
                String::from_utf8_lossy(&results_bytes).contains(secret.as_str()),
            ),
        ];
        for (place, _) in leaked.iter().filter(|(_, leaked)| *leaked) {
            problems.push(format!("the password {secret:?} appears in {place}"));
        }
    }
    if ran.code != case.exit {
        problems.push(format!(
            "exit code {} instead of {}; stderr:\n{}",
            ran.code,
            case.exit,
            shown(&ran.stderr)
        ));
    }

    if let Some(said) = &case.nothing_to_do {
        if !ran.stderr.contains(said.as_str()) {
            problems.push(format!("stderr lacks {said:?}:\n{}", shown(&ran.stderr)));
        }
        let left: Vec<String> = std::fs::read_dir(dir)
            .expect("list the case dir")
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| case.generated.is_none() || *n != case.file)
            .collect();
        if !left.is_empty() {
            problems.push(format!("nothing to do, yet files were left: {left:?}"));
        }
        return problems;
    }
    if let Some(fatal) = &case.fatal {
        if !ran.stderr.contains(fatal.as_str()) {
            problems.push(format!("stderr lacks {fatal:?}:\n{}", shown(&ran.stderr)));
        }
        let lines: Vec<&str> = ran.stderr.trim_end().lines().collect();
        if lines.len() != 1 || !lines[0].starts_with("error: ") {
            problems.push(format!(
                "a fatal error should be one line \"error: ...\", stderr is {} lines:\n{}",
                lines.len(),
                shown(&ran.stderr)
            ));
        }
        let left: Vec<String> = std::fs::read_dir(dir)
            .expect("list the case dir")
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| case.generated.is_none() || *n != case.file)
            .collect();
        if !left.is_empty() {
            problems.push(format!("a fatal input left files behind: {left:?}"));
        }
        return problems;
    }

    if !out.is_file() {
        problems.push(format!("no results file; stderr:\n{}", shown(&ran.stderr)));
        return problems;
    }
    let results = Results::read(&out);
    if results.header.len() < COLUMNS.len() || results.header[..COLUMNS.len()] != COLUMNS {
        problems.push(format!("results header {:?}", results.header));
        return problems;
    }
    let expected = case.expected_rows();
    let total = case.rows_total.unwrap_or_default();
    if results.rows.len() != total {
        problems.push(format!(
            "{} records in the results file instead of {total}",
            results.rows.len()
        ));
    }
    let lines: Vec<u64> = results
        .rows
        .iter()
        .map(|r| r["line"].parse().unwrap_or(0))
        .collect();
    if !lines.windows(2).all(|w| w[0] < w[1]) {
        problems.push(format!("records not one per line in line order: {lines:?}"));
    }
    let got: BTreeSet<u64> = lines.iter().copied().collect();
    let want: BTreeSet<u64> = expected.keys().copied().collect();
    if got != want {
        problems.push(format!(
            "records for lines {got:?}, expected lines {want:?}"
        ));
    }
    for record in &results.rows {
        let line: u64 = record["line"].parse().unwrap_or(0);
        let (outcome, message) = (&record["outcome"], &record["message"]);
        if message.chars().any(is_bad_char) || message.contains('\n') {
            problems.push(format!(
                "line {line}: message is not one clean line: {message:?}"
            ));
        }
        match outcome.as_str() {
            "planned" => {
                for column in ["customer_id", "user_id"] {
                    let id = &record[column];
                    let canonical = Uuid::parse_str(id).map(|u| u.to_string());
                    if canonical.as_deref() != Ok(id.as_str()) {
                        problems.push(format!(
                            "line {line}: planned with a non-canonical {column} {id:?}"
                        ));
                    }
                }
                let body: Option<serde_json::Value> = serde_json::from_str(&record["body"]).ok();
                if body.as_ref().map(|b| &b["attributes"]["objectType"])
                    != Some(&serde_json::json!("CustomerUser"))
                {
                    problems.push(format!("line {line}: planned body {:?}", record["body"]));
                }
            }
            "invalid" => {
                if !record["body"].is_empty() {
                    problems.push(format!("line {line}: an invalid row with a body"));
                }
            }
            other => problems.push(format!("line {line}: outcome {other:?} in a dry run")),
        }
        if record["attempts"] != "0" {
            problems.push(format!(
                "line {line}: {} attempts in a dry run",
                record["attempts"]
            ));
        }
        let Some((want_outcome, want_message)) = expected.get(&line) else {
            continue;
        };
        if outcome != want_outcome {
            problems.push(format!(
                "line {line}: {outcome} ({message:?}) instead of {want_outcome}"
            ));
        }
        let message_ok = if want_message.is_empty() {
            message.is_empty()
        } else {
            message.contains(want_message)
        };
        if !message_ok {
            problems.push(format!(
                "line {line}: message {message:?}, expected {}",
                if want_message.is_empty() {
                    "none".to_string()
                } else {
                    format!("one containing {want_message:?}")
                }
            ));
        }
    }
    for check in &case.cells {
        let line = check.line.to_string();
        let Some(record) = results.rows.iter().find(|r| r["line"] == line) else {
            problems.push(format!("line {line}: no record to check {}", check.column));
            continue;
        };
        let cell = &record[&check.column];
        let what = format!("line {line} {} = {cell:?}", check.column);
        if let Some(value) = &check.equals {
            if cell != value {
                problems.push(format!("{what}, expected {value:?}"));
            }
        }
        if let Some(prefix) = &check.starts_with {
            if !cell.starts_with(prefix.as_str()) {
                problems.push(format!("{what}, expected to start with {prefix:?}"));
            }
        }
        if let Some(part) = &check.contains {
            if !cell.contains(part.as_str()) {
                problems.push(format!("{what}, expected to contain {part:?}"));
            }
        }
        if let Some(part) = &check.not_contains {
            if cell.contains(part.as_str()) {
                problems.push(format!("{what}, must not contain {part:?}"));
            }
        }
        if let Some(max) = check.max_chars {
            let n = cell.chars().count();
            if n > max {
                problems.push(format!(
                    "line {line} {} is {n} characters, expected at most {max}",
                    check.column
                ));
            }
        }
    }
    problems
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_input_has_its_documented_outcome() {
    let started = Instant::now();
    let manifest = load_manifest();
    check_manifest(&manifest);
    let dir = tempdir();
    let mut failures = Vec::new();
    let mut unexpected_passes = Vec::new();
    for (i, case) in manifest.case.iter().enumerate() {
        let case_dir = dir.path().join(format!("case-{i:02}"));
        std::fs::create_dir(&case_dir).unwrap();
        let problems = run_case(case, &case_dir).await;
        match (&case.known_issue, problems.is_empty()) {
            (None, true) => {}
            (None, false) => failures.push(format!(
                "{} ({}):\n  - {}",
                case.name(),
                case.what,
                problems.join("\n  - ")
            )),
            (Some(issue), false) => println!(
                "known issue, not checked: {}: {issue}\n  - {}",
                case.name(),
                problems.join("\n  - ")
            ),
            (Some(_), true) => unexpected_passes.push(case.name()),
        }
    }
    println!(
        "{} bad-input cases in {:.1?}",
        manifest.case.len(),
        started.elapsed()
    );
    assert!(
        failures.is_empty(),
        "{} of {} bad-input cases differ from {MANIFEST}:\n\n{}",
        failures.len(),
        manifest.case.len(),
        failures.join("\n\n")
    );
    assert!(
        unexpected_passes.is_empty(),
        "these known issues are fixed: remove their `known_issue` from {MANIFEST}: {unexpected_passes:?}"
    );
}
