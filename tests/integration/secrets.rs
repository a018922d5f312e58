//! Secrets never leak: the token is nowhere in stdout, stderr (at trace level) or the results.

use std::collections::HashMap;

use bulkpatch::simulator::{Fault, SimConfig};

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_appears_in_no_output_even_at_trace_level() {
    let dir = tempdir();
    let input = Csv::usage_locations(6).write(dir.path(), "in.csv");
    let summary = dir.path().join("summary.json");
    for format in ["text", "json"] {
        // A fresh simulator each time: the scripted faults are per request count.
        let sim = simulator(SimConfig {
            token: "sim-SECRET-token-7f3a9c".into(),
            script: HashMap::from([
                (user(2), vec![Fault::Status(503)]),
                (user(3), vec![Fault::Drop]),
                (user(4), vec![Fault::Unauthorized]),
            ]),
            ..SimConfig::default()
        })
        .await;
        let out = dir.path().join(format!("{format}.csv"));
        let mut cmd = run_against(
            &sim,
            &input,
            &out,
            &[
                "-vv",
                "--concurrency",
                "1",
                "--log-format",
                format,
                "--summary-json",
                summary.to_str().unwrap(),
            ],
        );
        cmd.env("RUST_LOG", "trace");
        let ran = run_bin(cmd).await;
        assert_eq!(
            ran.code, 2,
            "the scripted 401 stops the run: {}",
            ran.stderr
        );
        assert!(
            ran.stderr.len() > 1000,
            "trace logging was on: {}",
            ran.stderr.len()
        );
        let results = std::fs::read_to_string(&out).unwrap();
        let summary = std::fs::read_to_string(&summary).unwrap();
        for (name, text) in [
            ("stdout", &ran.stdout),
            ("stderr", &ran.stderr),
            ("results", &results),
            ("summary", &summary),
        ] {
            assert!(
                !text.contains("SECRET"),
                "the token leaked into {name} ({format})"
            );
        }
    }
}
