//! Bad input: invalid rows are recorded and skipped while the rest runs; bad headers stop before anything is sent; dry runs send nothing.

use bulkpatch::simulator::SimConfig;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_rows_are_recorded_with_line_and_reason_and_the_rest_runs() {
    let sim = simulator(SimConfig::default()).await;
    let dir = tempdir();
    let (c, u) = (customer(1).to_string(), |n| user(n).to_string());
    let input = Csv::new(&[
        "customer_id",
        "user_id",
        "usage_location",
        "new_user_principal_name",
    ])
    .row(&[&c, &u(1), "DE", ""]) // line 2: fine
    .row(&["not-a-guid", &u(2), "DE", ""]) // 3
    .row(&[&c, "", "DE", ""]) // 4
    .row(&[&c, &u(4), "UK", ""]) // 5: GB is the code
    .row(&[&c, &u(5), "", "anna"]) // 6
    .row(&[&c, &u(6), "", ""]) // 7
    .raw(&format!("{c},{},DE", u(7))) // 8: a field short
    .row(&[&c, &u(1), "FR", ""]) // 9: same pair as line 2
    .row(&[
        &format!("{{{}}}", customer(1).to_string().to_uppercase()),
        &u(9).replace('-', ""),
        " nl ",
        "",
    ]) // 10: fine, normalised
    .row(&["=HYPERLINK(\"http://x\")", &u(10), "DE", ""]) // 11: formula-looking
    .raw(&format!("\"{c}\",\"{}\",\"DE\",\"a@b.com\"", u(11))) // 12: quoted, fine
    .write(dir.path(), "in.csv");
    // Line 13: invalid UTF-8 in a cell.
    let mut bytes = std::fs::read(&input).unwrap();
    bytes.extend_from_slice(format!("{c},{},DE,m\u{fc}ller@x.com\n", u(12)).as_bytes());
    let mut latin1 = format!("{c},{},DE,m", u(13)).into_bytes();
    latin1.extend_from_slice(b"\xFCller@x.com\n");
    bytes.extend_from_slice(&latin1);
    std::fs::write(&input, bytes).unwrap();

    let out = dir.path().join("out.csv");
    let ran = run_bin(run_against(&sim, &input, &out, &[])).await;
    assert_eq!(ran.code, 1, "{}", ran.stderr);

    let results = Results::read(&out);
    assert_eq!(results.rows.len(), 13, "one record per data row");
    let reasons = [
        (3, "customer_id \"not-a-guid\" is not a GUID"),
        (4, "user_id is empty"),
        (
            5,
            "usage_location \"UK\" is not an ISO 3166-1 alpha-2 country code",
        ),
        (6, "does not look like local@domain"),
        (7, "nothing to change"),
        (8, "expected 4 fields as in the header, found 3"),
        (9, "the same customer and user as line 2"),
        (13, "does not look like local@domain"),
        (14, "not valid UTF-8"),
    ];
    for (line, reason) in reasons {
        let r = results.line(line);
        assert_eq!(r["outcome"], "invalid", "line {line}");
        assert!(
            r["message"].contains(reason),
            "line {line}: {}",
            r["message"]
        );
        assert_eq!(r["attempts"], "0");
    }
    assert_eq!(results.line(11)["outcome"], "invalid");
    assert!(
        results.line(11)["customer_id"].starts_with("'="),
        "formula neutralised: {}",
        results.line(11)["customer_id"]
    );
    for line in [2, 10, 12] {
        assert_eq!(results.line(line)["outcome"], "updated", "line {line}");
    }
    // Only the valid rows were sent; braces and dashless GUIDs and lower-case countries were normalised.
    let requests = sim.requests();
    assert_eq!(requests.len(), 3);
    let r10 = &requests_for(&requests, user(9))[0];
    assert_eq!(
        r10.path,
        format!("/v1/customers/{}/users/{}", customer(1), user(9))
    );
    assert_eq!(r10.body_json().unwrap()["usageLocation"], "NL");
    assert!(ran.stderr.contains("invalid 10"), "{}", ran.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_problems_stop_before_any_request() {
    let sim = simulator(SimConfig::default()).await;
    let dir = tempdir();
    let cases: &[(&[&str], &str)] = &[
        (
            &["customer_id", "user_id", "usage_locaton"],
            "unknown column \"usage_locaton\" (column 3), did you mean \"usage_location\"?",
        ),
        (
            &["customer_id", "usr_id", "usage_location"],
            "did you mean \"user_id\"?",
        ),
        (&["customer_id", "usage_location"], "no user_id column"),
        (&["user_id", "usage_location"], "no customer_id column"),
        (
            &["customer_id", "user_id", "id", "usage_location"],
            "both mean user_id",
        ),
        (&["customer_id", "user_id"], "no column to update"),
    ];
    for (i, (header, message)) in cases.iter().enumerate() {
        let input = Csv::new(header)
            .row(&vec!["x"; header.len()])
            .write(dir.path(), &format!("h{i}.csv"));
        let out = dir.path().join(format!("h{i}.out.csv"));
        let ran = run_bin(run_against(&sim, &input, &out, &[])).await;
        assert_eq!(ran.code, 2, "{header:?}: {}", ran.stderr);
        assert!(ran.stderr.contains(message), "{header:?}: {}", ran.stderr);
        assert!(!out.exists(), "no results file for a bad header");
    }
    // The escape hatch for extra columns.
    let input = Csv::new(&["customer_id", "user_id", "usage_location", "notes"])
        .row(&[
            &customer(1).to_string(),
            &user(1).to_string(),
            "DE",
            "hello",
        ])
        .write(dir.path(), "extra.csv");
    let ran = run_bin(run_against(
        &sim,
        &input,
        &dir.path().join("extra.out.csv"),
        &["--ignore-unknown-columns"],
    ))
    .await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert_eq!(sim.requests().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_files_are_fatal_with_a_clear_message() {
    let dir = tempdir();
    let empty = dir.path().join("empty.csv");
    std::fs::write(&empty, "").unwrap();
    let utf16 = dir.path().join("utf16.csv");
    let mut bytes = vec![0xFF, 0xFE];
    for unit in "customer_id,user_id,usage_location\n".encode_utf16() {
        bytes.extend_from_slice(&unit.to_le_bytes());
    }
    std::fs::write(&utf16, bytes).unwrap();
    for (path, message) in [
        (empty, "is empty"),
        (utf16, "UTF-16"),
        (dir.path().join("missing.csv"), "cannot read input file"),
    ] {
        let ran = run_bin(bulkpatch(&[
            "run",
            path.to_str().unwrap(),
            "--dry-run",
            "--out",
            dir.path().join("o.csv").to_str().unwrap(),
        ]))
        .await;
        assert_eq!(ran.code, 2, "{}", ran.stderr);
        assert!(ran.stderr.contains(message), "{}", ran.stderr);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customer_id_option_stands_in_for_a_missing_column() {
    let sim = simulator(SimConfig::default()).await;
    let dir = tempdir();
    let input = Csv::new(&["object_id", "given_name", "surname"])
        .row(&[&user(1).to_string(), "Anna", "Berg"])
        .write(dir.path(), "in.csv");
    let ran = run_bin(run_against(
        &sim,
        &input,
        &dir.path().join("o.csv"),
        &["--customer-id", &customer(3).to_string()],
    ))
    .await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let requests = sim.requests();
    assert_eq!(
        requests[0].path,
        format!("/v1/customers/{}/users/{}", customer(3), user(1))
    );
    assert_eq!(
        String::from_utf8(requests[0].body.clone()).unwrap(),
        r#"{"firstName":"Anna","lastName":"Berg","attributes":{"objectType":"CustomerUser"}}"#
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_sends_nothing_needs_no_token_and_shows_each_body() {
    let sim = simulator(SimConfig::default()).await;
    let dir = tempdir();
    let input = Csv::usage_locations(3)
        .row(&["bad", &user(9).to_string(), "DE"])
        .write(dir.path(), "in.csv");
    let out = dir.path().join("plan.csv");
    let mut cmd = bulkpatch(&[
        "run",
        input.to_str().unwrap(),
        "--dry-run",
        "--base-url",
        &sim.base_url(),
        "--out",
        out.to_str().unwrap(),
    ]);
    cmd.env_remove("BULKPATCH_TOKEN");
    let ran = run_bin(cmd).await;
    assert_eq!(
        ran.code, 1,
        "an invalid row still makes the dry run exit 1: {}",
        ran.stderr
    );
    assert_eq!(sim.requests().len(), 0);
    let results = Results::read(&out);
    assert_eq!(results.count("planned"), 3);
    assert_eq!(results.count("invalid"), 1);
    assert_eq!(
        results.line(2)["body"],
        r#"{"usageLocation":"DE","attributes":{"objectType":"CustomerUser"}}"#
    );
    assert!(ran.stderr.contains("Dry run finished"), "{}", ran.stderr);

    // Without a token and without --dry-run: a clear error, nothing sent.
    let mut cmd = bulkpatch(&[
        "run",
        input.to_str().unwrap(),
        "--base-url",
        &sim.base_url(),
        "--out",
        dir.path().join("x.csv").to_str().unwrap(),
    ]);
    cmd.env_remove("BULKPATCH_TOKEN");
    let ran = run_bin(cmd).await;
    assert_eq!(ran.code, 2);
    assert!(
        ran.stderr
            .contains("no access token: set BULKPATCH_TOKEN, pass --token-file"),
        "{}",
        ran.stderr
    );
    assert_eq!(sim.requests().len(), 0);
}
