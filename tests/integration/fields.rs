//! Choosing what is sent and naming who a row is: `--fields`, `new_user_principal_name` (a
//! `user_principal_name` column is never sent), unknown and Entra columns, `--keep-columns`,
//! the context columns in every output, an older results file resumed, and an Entra export.

use std::collections::HashMap;
use std::path::Path;

use bulkpatch::simulator::{Fault, RecordedRequest, SimConfig};
use serde_json::{json, Value};

use crate::support::*;

/// The JSON bodies of the PATCHes the simulator received, by user.
fn bodies(requests: &[RecordedRequest]) -> HashMap<String, Value> {
    requests
        .iter()
        .filter(|r| r.method == "PATCH")
        .map(|r| {
            let user = r.path.rsplit('/').next().unwrap().to_string();
            (user, r.body_json().expect("a JSON body"))
        })
        .collect()
}

fn attributes() -> Value {
    json!({"objectType": "CustomerUser"})
}

/// `bulkpatch audit INPUT --base-url SIM --out OUT` with the simulator's token, plus `extra`.
fn audit_against(
    sim: &bulkpatch::simulator::Simulator,
    input: &Path,
    out: &Path,
    extra: &[&str],
) -> std::process::Command {
    let mut args = vec![
        "audit".to_string(),
        input.display().to_string(),
        "--base-url".into(),
        sim.base_url(),
        "--out".into(),
        out.display().to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut cmd = bulkpatch(&refs);
    cmd.env("BULKPATCH_TOKEN", sim.token());
    cmd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fields_sends_only_the_chosen_fields_everywhere_and_keeps_the_others_as_context() {
    let sim = simulator(SimConfig::default()).await;
    let dir = tempdir();
    let c = customer(1).to_string();
    let input = Csv::new(&[
        "customer_id",
        "user_id",
        "user_principal_name",
        "usage_location",
        "display_name",
        "first_name",
    ])
    .row(&[
        &c,
        &user(1).to_string(),
        "anna@contoso.de",
        "de",
        "Anna Berg",
        "Anna",
    ])
    // A display name that could not be sent (an invisible character): left aside, not checked.
    .row(&[
        &c,
        &user(2).to_string(),
        "bo@contoso.de",
        "FR",
        "Bo\u{200B} Ek",
        "",
    ])
    .row(&[
        &c,
        &user(3).to_string(),
        "cy@contoso.de",
        "",
        "Cy Lund",
        "Cy",
    ])
    .write(dir.path(), "in.csv");

    // The dry run plans only usageLocation.
    let plan = dir.path().join("plan.csv");
    let ran = run_bin(run_against(
        &sim,
        &input,
        &plan,
        &["--dry-run", "--fields", "usage_location"],
    ))
    .await;
    assert_eq!(ran.code, 1, "line 4 has no usage_location: {}", ran.stderr);
    let planned = Results::read(&plan);
    let body = |line| serde_json::from_str::<Value>(&planned.line(line)["body"]).unwrap();
    assert_eq!(
        body(2),
        json!({"usageLocation": "DE", "attributes": attributes()})
    );
    assert_eq!(
        body(3),
        json!({"usageLocation": "FR", "attributes": attributes()})
    );
    let nothing = &planned.line(4)["message"];
    assert!(
        nothing.contains("every column chosen with --fields of this row is empty"),
        "{nothing}"
    );
    assert!(sim.requests().is_empty(), "a dry run sends nothing");

    // The audit compares only usageLocation.
    sim.seed_user(
        customer(1),
        user(1),
        json!({"usageLocation": "US", "displayName": "Old"}),
    );
    sim.seed_user(
        customer(1),
        user(2),
        json!({"usageLocation": "FR", "displayName": "Old"}),
    );
    let audit = dir.path().join("audit.csv");
    let ran = run_bin(audit_against(
        &sim,
        &input,
        &audit,
        &["--fields", "usage_location"],
    ))
    .await;
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    let lines = Results::read(&audit);
    let fields: Vec<(&str, &str)> = lines
        .rows
        .iter()
        .map(|r| (r["line"].as_str(), r["field"].as_str()))
        .collect();
    assert_eq!(
        fields,
        [("2", "usageLocation"), ("3", "usageLocation"), ("4", "")]
    );
    assert_eq!(lines.line(2)["user_principal_name"], "anna@contoso.de");

    // The run sends only usageLocation; the other fields are context in the results.
    let out = dir.path().join("out.csv");
    let before = sim.requests().len();
    let ran = run_bin(run_against(
        &sim,
        &input,
        &out,
        &["--fields", "usage_location"],
    ))
    .await;
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    let sent = bodies(&sim.requests()[before..]);
    assert_eq!(sent.len(), 2);
    assert_eq!(
        sent[&user(1).to_string()],
        json!({"usageLocation": "DE", "attributes": attributes()})
    );
    assert_eq!(
        sent[&user(2).to_string()],
        json!({"usageLocation": "FR", "attributes": attributes()})
    );
    assert_eq!(
        sim.user(customer(1), user(1)).unwrap()["displayName"],
        "Old"
    );
    let results = Results::read(&out);
    assert_eq!(results.line(2)["outcome"], "updated");
    assert_eq!(results.line(3)["outcome"], "updated");
    assert_eq!(results.line(2)["user_principal_name"], "anna@contoso.de");
    let context: Value = serde_json::from_str(&results.line(2)["context"]).unwrap();
    assert_eq!(
        context,
        json!({"display_name": "Anna Berg", "first_name": "Anna"})
    );
    let context: Value = serde_json::from_str(&results.line(3)["context"]).unwrap();
    assert_eq!(
        context,
        json!({"display_name": "Bo\u{FFFD} Ek"}),
        "cleaned, never refused"
    );

    // Without --fields the same file sends every field, and line 3 is refused for its name.
    let all = dir.path().join("all.csv");
    let before = sim.requests().len();
    let ran = run_bin(run_against(&sim, &input, &all, &[])).await;
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    let sent = bodies(&sim.requests()[before..]);
    assert_eq!(
        sent[&user(1).to_string()],
        json!({"usageLocation": "DE", "displayName": "Anna Berg", "firstName": "Anna", "attributes": attributes()})
    );
    assert!(Results::read(&all).line(3)["message"].contains("invisible character"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_field_name_that_is_no_field_stops_the_run_before_any_request() {
    let sim = simulator(SimConfig::default()).await;
    let dir = tempdir();
    let input = Csv::usage_locations(2).write(dir.path(), "in.csv");
    let out = dir.path().join("out.csv");
    let ran = run_bin(run_against(
        &sim,
        &input,
        &out,
        &["--fields", "usage_locaton,jobTitle,colour"],
    ))
    .await;
    assert_eq!(ran.code, 2, "{}", ran.stderr);
    for want in [
        "\"usage_locaton\" is not a field that can be changed, did you mean \"usage_location\"?",
        "\"jobTitle\" is not a field that can be changed: it cannot be changed through Partner Center",
        "\"colour\" is not a field that can be changed (the fields: usage_location, display_name",
        "fields",
    ] {
        assert!(ran.stderr.contains(want), "{want}: {}", ran.stderr);
    }
    // A chosen field the file has no column for.
    let ran = run_bin(run_against(
        &sim,
        &input,
        &out,
        &["--fields", "usage_location,display_name"],
    ))
    .await;
    assert_eq!(ran.code, 2, "{}", ran.stderr);
    assert!(
        ran.stderr
            .contains("--fields names display_name, but the file has no display_name column"),
        "{}",
        ran.stderr
    );
    // Generated passwords are sent only when password is one of the fields.
    let secrets = dir.path().join("secrets.csv");
    let secrets_arg = secrets.to_str().unwrap();
    let generate = [
        "--generate-passwords",
        "--secrets-out",
        secrets_arg,
        "--fields",
    ];
    let args = [&generate[..], &["usage_location"]].concat();
    let ran = run_bin(run_against(&sim, &input, &out, &args)).await;
    assert_eq!(ran.code, 2, "{}", ran.stderr);
    assert!(
        ran.stderr
            .contains("`fields` leaves out password, but --generate-passwords sends one"),
        "{}",
        ran.stderr
    );
    assert!(sim.requests().is_empty());
    assert!(!out.exists());
    let args = [&generate[..], &["usage_location,password"]].concat();
    let ran = run_bin(run_against(&sim, &input, &out, &args)).await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let sent = bodies(&sim.requests());
    let body = &sent[&user(1).to_string()];
    assert_eq!(body["usageLocation"], "DE");
    assert!(body["passwordProfile"]["password"].is_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_principal_name_names_the_user_and_new_user_principal_name_renames() {
    let sim = simulator(SimConfig::default()).await;
    sim.seed_user(
        customer(1),
        user(2),
        json!({"userPrincipalName": "old@contoso.de"}),
    );
    let dir = tempdir();
    let c = customer(1).to_string();
    let input = Csv::new(&[
        "customer_id",
        "user_id",
        "UPN",
        "new_user_principal_name",
        "display_name",
    ])
    .row(&[&c, &user(1).to_string(), "anna@contoso.de", "", "Anna Berg"])
    .row(&[
        &c,
        &user(2).to_string(),
        "old@contoso.de",
        "new@contoso.de",
        "",
    ])
    .row(&[&c, &user(3).to_string(), "cy@contoso.de", "", ""])
    .write(dir.path(), "in.csv");
    let out = dir.path().join("out.csv");
    let ran = run_bin(run_against(&sim, &input, &out, &[])).await;
    assert_eq!(ran.code, 1, "line 4 changes nothing: {}", ran.stderr);
    let sent = bodies(&sim.requests());
    assert_eq!(sent.len(), 2);
    assert_eq!(
        sent[&user(1).to_string()],
        json!({"displayName": "Anna Berg", "attributes": attributes()})
    );
    assert_eq!(
        sent[&user(2).to_string()],
        json!({"userPrincipalName": "new@contoso.de", "attributes": attributes()})
    );
    assert_eq!(
        sim.user(customer(1), user(2)).unwrap()["userPrincipalName"],
        "new@contoso.de"
    );
    let results = Results::read(&out);
    assert_eq!(results.line(4)["outcome"], "invalid");
    assert_eq!(
        results.line(4)["user_principal_name"],
        "cy@contoso.de",
        "an invalid row is named too"
    );
    assert_eq!(results.line(3)["user_principal_name"], "old@contoso.de");
    assert_eq!(
        results.line(3)["user_id"],
        user(2).to_string(),
        "the GUID is the key"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_columns_are_listed_together_and_entra_columns_named_as_not_changeable() {
    let sim = simulator(SimConfig::default()).await;
    let dir = tempdir();
    let c = customer(1).to_string();
    let header = [
        "customer_id",
        "user_id",
        "usage_location",
        "Notes",
        "jobTitle",
        "displayNmae",
        "department",
    ];
    let input = Csv::new(&header)
        .row(&[&c, &user(1).to_string(), "DE", "x", "Chef", "Anna", "Sales"])
        .write(dir.path(), "in.csv");
    let out = dir.path().join("out.csv");
    let ran = run_bin(run_against(&sim, &input, &out, &[])).await;
    assert_eq!(ran.code, 2, "{}", ran.stderr);
    let want = "unknown columns \"Notes\" (column 4); \"jobTitle\" (column 5): not changeable through Partner Center; \"displayNmae\" (column 6), did you mean \"display_name\"?; \"department\" (column 7): not changeable through Partner Center; use --ignore-unknown-columns";
    assert!(ran.stderr.contains(want), "{}", ran.stderr);
    assert!(
        ran.stderr.contains("--fields"),
        "says how to leave them aside: {}",
        ran.stderr
    );

    // With --fields, the columns Partner Center cannot change are left aside; a typo still stops.
    let ran = run_bin(run_against(
        &sim,
        &input,
        &out,
        &["--fields", "usage_location"],
    ))
    .await;
    assert_eq!(ran.code, 2, "{}", ran.stderr);
    assert!(
        ran.stderr.contains(
            "unknown columns \"Notes\" (column 4); \"displayNmae\" (column 6), did you mean"
        ),
        "{}",
        ran.stderr
    );
    assert!(!ran.stderr.contains("jobTitle"), "{}", ran.stderr);
    assert!(sim.requests().is_empty());

    // --ignore-unknown-columns skips them all; --keep-columns carries one into the results.
    let ran = run_bin(run_against(
        &sim,
        &input,
        &out,
        &[
            "--ignore-unknown-columns",
            "--keep-columns",
            "notes,Department",
        ],
    ))
    .await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let sent = bodies(&sim.requests());
    assert_eq!(
        sent[&user(1).to_string()],
        json!({"usageLocation": "DE", "attributes": attributes()})
    );
    let context: Value = serde_json::from_str(&Results::read(&out).line(2)["context"]).unwrap();
    assert_eq!(context, json!({"Notes": "x", "department": "Sales"}));

    // A kept column the file lacks, or a password column, stops the run.
    for (keep, want) in [
        (
            "Cost Centre",
            "--keep-columns names \"Cost Centre\", but the header has no such column",
        ),
        (
            "password",
            "cannot keep the column \"password\" (passwords are never copied into another file)",
        ),
    ] {
        let other = dir.path().join("other.csv");
        let ran = run_bin(run_against(
            &sim,
            &input,
            &other,
            &["--ignore-unknown-columns", "--keep-columns", keep],
        ))
        .await;
        assert_eq!(ran.code, 2, "{}", ran.stderr);
        assert!(ran.stderr.contains(want), "{}", ran.stderr);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn context_names_people_and_tenants_in_results_audit_secrets_and_reports() {
    let sim = simulator(SimConfig {
        unknown_users: [user(2)].into(),
        ..SimConfig::default()
    })
    .await;
    let dir = tempdir();
    let c = customer(1).to_string();
    let input = Csv::new(&[
        "customer_id",
        "customer_domain",
        "user_id",
        "upn",
        "Employee ID",
    ])
    .row(&[
        &c,
        "contoso.de",
        &user(1).to_string(),
        "anna@contoso.de",
        "=HYPERLINK(\"http://evil\")",
    ])
    .row(&[
        &c,
        "=1+1",
        &user(2).to_string(),
        "<script>alert(1)</script>@x.de",
        "E\u{1b}[2J7",
    ])
    .write(dir.path(), "in.csv");
    let out = dir.path().join("out.csv");
    let secrets = dir.path().join("secrets.csv");
    let html = dir.path().join("report.html");
    let ran = run_bin(run_against(
        &sim,
        &input,
        &out,
        &[
            "--generate-passwords",
            "--secrets-out",
            secrets.to_str().unwrap(),
            "--keep-columns",
            "employee_id",
            "--report",
            html.to_str().unwrap(),
        ],
    ))
    .await;
    assert_eq!(ran.code, 1, "user 2 is unknown: {}", ran.stderr);
    let bodies = bodies(&sim.requests());
    for body in bodies.values() {
        assert_eq!(
            body.as_object().unwrap().keys().collect::<Vec<_>>(),
            ["attributes", "passwordProfile"],
            "no context is sent"
        );
    }

    let results = Results::read(&out);
    let (anna, other) = (results.line(2), results.line(3));
    assert_eq!(anna["customer_domain"], "contoso.de");
    assert_eq!(anna["user_principal_name"], "anna@contoso.de");
    assert_eq!(
        other["customer_domain"], "'=1+1",
        "a formula is neutralised"
    );
    let kept: Value = serde_json::from_str(&anna["context"]).unwrap();
    assert_eq!(kept, json!({"Employee ID": "=HYPERLINK(\"http://evil\")"}));
    assert!(anna["context"].starts_with('{'), "never a formula");
    assert_eq!(
        serde_json::from_str::<Value>(&other["context"]).unwrap(),
        json!({"Employee ID": "E\u{FFFD}[2J7"})
    );

    let secrets = Results::read(&secrets);
    assert_eq!(secrets.header.last().unwrap(), "applied");
    assert_eq!(secrets.line(2)["user_principal_name"], "anna@contoso.de");
    assert_eq!(secrets.line(2)["customer_domain"], "contoso.de");
    assert_eq!(secrets.line(2)["context"], anna["context"]);
    assert_eq!(secrets.line(2)["applied"], "yes");
    assert_eq!(secrets.line(3)["customer_domain"], "'=1+1");

    let html = std::fs::read_to_string(&html).unwrap();
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;@x.de")
            || html.contains("&lt;script&gt;alert(1)&lt;/script&gt;@x.de"),
        "the failed row is named, escaped"
    );
    assert!(
        !html.contains("<script>alert"),
        "data never renders as markup"
    );
    assert!(
        html.contains("=1+1"),
        "the report shows the domain as written"
    );
    assert!(
        html.contains(&format!("<td>contoso.de<br>{c}</td>")),
        "the per-customer table names the tenant"
    );

    let md = dir.path().join("report.md");
    let ran = run_bin(bulkpatch(&[
        "report",
        out.to_str().unwrap(),
        "--markdown",
        md.to_str().unwrap(),
    ]))
    .await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let md = std::fs::read_to_string(&md).unwrap();
    assert!(md.contains(&format!("| {c} (contoso\\.de) |")), "{md}");
    assert!(
        md.contains("3 (&lt;script&gt;alert\\(1\\)&lt;/script&gt;\\@x\\.de)"),
        "{md}"
    );

    // The audit file carries the same context.
    let audit = dir.path().join("audit.csv");
    let input2 = Csv::new(&[
        "customer_id",
        "customer_domain",
        "user_id",
        "upn",
        "usage_location",
    ])
    .row(&[
        &c,
        "contoso.de",
        &user(1).to_string(),
        "anna@contoso.de",
        "DE",
    ])
    .write(dir.path(), "audit-in.csv");
    let ran = run_bin(audit_against(&sim, &input2, &audit, &[])).await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let audited = Results::read(&audit);
    assert_eq!(audited.line(2)["user_principal_name"], "anna@contoso.de");
    assert_eq!(audited.line(2)["customer_domain"], "contoso.de");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_results_file_from_before_the_context_columns_is_resumed_with_its_columns() {
    let sim = simulator(SimConfig {
        script: HashMap::from([(user(2), vec![Fault::Status(400)])]),
        ..SimConfig::default()
    })
    .await;
    let dir = tempdir();
    let c = customer(1).to_string();
    let input = Csv::new(&["customer_id", "user_id", "upn", "usage_location"])
        .row(&[&c, &user(1).to_string(), "anna@contoso.de", "DE"])
        .row(&[&c, &user(2).to_string(), "bo@contoso.de", "FR"])
        .row(&[&c, &user(3).to_string(), "cy@contoso.de", "NL"])
        .write(dir.path(), "in.csv");
    let out = dir.path().join("out.csv");
    let ran = run_bin(run_against(&sim, &input, &out, &[])).await;
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    // As an older version wrote it: the first 15 columns only.
    let old: String = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| {
            let mut r = csv::ReaderBuilder::new()
                .has_headers(false)
                .from_reader(l.as_bytes());
            let rec = r.records().next().unwrap().unwrap();
            let mut w = csv::Writer::from_writer(Vec::new());
            w.write_record(rec.iter().take(15)).unwrap();
            String::from_utf8(w.into_inner().unwrap()).unwrap()
        })
        .collect();
    std::fs::write(&out, &old).unwrap();
    assert_eq!(Results::read(&out).header.len(), 15);

    let before = sim.requests().len();
    let ran = run_bin(run_against(
        &sim,
        &input,
        &out,
        &["--resume", "--retry-failed"],
    ))
    .await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let again = bodies(&sim.requests()[before..]);
    assert_eq!(
        again.keys().collect::<Vec<_>>(),
        [&user(2).to_string()],
        "only the failed row"
    );
    let results = Results::read(&out);
    assert_eq!(results.header.len(), 15, "the file keeps its columns");
    assert_eq!(results.rows.len(), 3);
    assert!(results
        .rows
        .iter()
        .all(|r| r.len() == 15 && r["outcome"] == "updated"));
    // And it resumes again (nothing left to send).
    let before = sim.requests().len();
    let ran = run_bin(run_against(&sim, &input, &out, &["--resume"])).await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert_eq!(sim.requests().len(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entra_download_users_export_saved_by_excel_sends_only_usage_location() {
    let sim = simulator(SimConfig::default()).await;
    let dir = tempdir();
    let input = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/entra_users_export.csv");
    let bytes = std::fs::read(&input).unwrap();
    assert!(
        bytes.starts_with(b"\xEF\xBB\xBFid;userPrincipalName;"),
        "BOM and ;"
    );
    let header = String::from_utf8_lossy(&bytes)
        .split('\n')
        .next()
        .unwrap()
        .to_string();
    assert_eq!(header.split(';').count(), 29);
    assert!(header.ends_with('\r'), "CRLF");
    let out = dir.path().join("out.csv");
    let c = customer(1).to_string();

    // Without --fields: the columns Partner Center cannot change are named as such.
    let ran = run_bin(run_against(&sim, &input, &out, &["--customer-id", &c])).await;
    assert_eq!(ran.code, 2, "{}", ran.stderr);
    assert!(
        ran.stderr
            .contains("\"jobTitle\" (column 8): not changeable through Partner Center"),
        "{}",
        ran.stderr
    );
    assert!(
        !ran.stderr.contains("did you mean"),
        "no column of the export is a typo: {}",
        ran.stderr
    );

    let ran = run_bin(run_against(
        &sim,
        &input,
        &out,
        &["--customer-id", &c, "--fields", "usage_location"],
    ))
    .await;
    assert_eq!(
        ran.code, 1,
        "the guest has no usageLocation: {}",
        ran.stderr
    );
    let sent = bodies(&sim.requests());
    let want = |country: &str| json!({"usageLocation": country, "attributes": attributes()});
    assert_eq!(sent.len(), 3);
    assert_eq!(sent[&user(1).to_string()], want("DE"));
    assert_eq!(sent[&user(2).to_string()], want("FR"));
    assert_eq!(sent[&user(4).to_string()], want("CH"));
    let results = Results::read(&out);
    assert_eq!(
        results.line(2)["user_principal_name"],
        "anna.berg@contoso.onmicrosoft.com"
    );
    let context: Value = serde_json::from_str(&results.line(2)["context"]).unwrap();
    assert_eq!(
        context,
        json!({"displayName": "Berg, Anna", "surname": "Berg", "givenName": "Anna"})
    );
    assert_eq!(results.line(4)["outcome"], "invalid");
    assert_eq!(
        results.line(4)["user_principal_name"],
        "guest_fabrikam.com#EXT#@contoso.onmicrosoft.com"
    );
}
