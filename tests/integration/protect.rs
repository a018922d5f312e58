//! Protected accounts: a password is never reset for a user holding an administrative
//! directory role (read first, across pages) unless `--include-admins`; `--protected-roles`
//! narrows the roles; `--protect-file` users are never changed, with no request at all.

use std::collections::HashMap;

use bulkpatch::simulator::{SimConfig, Simulator};

use crate::support::*;

const PASSWORD: &str = "Zq8!long-enough-pass";

async fn sim_with_roles() -> Simulator {
    simulator(SimConfig {
        // One role per page: the second page must be read too.
        page_size: 1,
        roles: HashMap::from([
            (
                user(1),
                vec!["Directory Readers".into(), "Company Administrator".into()],
            ),
            (user(2), vec!["Directory Readers".into()]),
        ]),
        ..SimConfig::default()
    })
    .await
}

/// Users 1-3 get a password; user 4 only a usage location.
fn input(dir: &std::path::Path) -> std::path::PathBuf {
    let c = customer(1).to_string();
    Csv::new(&["customer_id", "user_id", "usage_location", "password"])
        .row(&[&c, &user(1).to_string(), "", PASSWORD])
        .row(&[&c, &user(2).to_string(), "", PASSWORD])
        .row(&[&c, &user(3).to_string(), "", PASSWORD])
        .row(&[&c, &user(4).to_string(), "DE", ""])
        .write(dir, "in.csv")
}

fn outcome(results: &Results, n: u32) -> (String, String) {
    let row = results
        .rows
        .iter()
        .find(|r| r["user_id"] == user(n).to_string())
        .unwrap_or_else(|| panic!("user {n}"));
    (row["outcome"].clone(), row["message"].clone())
}

fn patched(sim: &Simulator) -> Vec<uuid::Uuid> {
    (1..=4)
        .map(user)
        .filter(|u| {
            sim.requests()
                .iter()
                .any(|r| r.method == "PATCH" && r.path.ends_with(&u.to_string()))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn administrators_passwords_are_not_reset_unless_asked() {
    let sim = sim_with_roles().await;
    let dir = tempdir();
    let input = input(dir.path());
    let out = dir.path().join("out.csv");
    let ran = run_bin(run_against(&sim, &input, &out, &[])).await;
    assert_eq!(ran.code, 0, "protected is not a failure: {}", ran.stderr);
    let results = Results::read(&out);
    let (o1, m1) = outcome(&results, 1);
    assert_eq!(o1, "protected");
    assert!(
        m1.contains("Company Administrator") || m1.contains("Directory Readers"),
        "{m1}"
    );
    assert_eq!(outcome(&results, 2).0, "protected", "any role counts");
    assert_eq!(outcome(&results, 3).0, "updated");
    assert_eq!(outcome(&results, 4).0, "updated");
    assert_eq!(patched(&sim), vec![user(3), user(4)]);
    let role_reads: Vec<String> = sim
        .requests()
        .iter()
        .filter(|r| r.path.contains("/directoryroles"))
        .map(|r| r.path.clone())
        .collect();
    assert!(
        !role_reads.iter().any(|p| p.contains(&user(4).to_string())),
        "no password, no roles read: {role_reads:?}"
    );
    assert_eq!(
        role_reads
            .iter()
            .filter(|p| p.contains(&user(1).to_string()))
            .count(),
        2,
        "both pages of user 1's roles: {role_reads:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protected_roles_narrow_and_include_admins_reads_no_roles() {
    let sim = sim_with_roles().await;
    let dir = tempdir();
    let input = input(dir.path());
    // Only Global Administrator protects: it is on user 1's second page of roles.
    let out = dir.path().join("narrow.csv");
    let ran = run_bin(run_against(
        &sim,
        &input,
        &out,
        &["--protected-roles", "company administrator"],
    ))
    .await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let results = Results::read(&out);
    let (o1, m1) = outcome(&results, 1);
    assert_eq!(o1, "protected");
    assert!(m1.contains("Company Administrator"), "{m1}");
    assert_eq!(outcome(&results, 2).0, "updated");

    let sim = sim_with_roles().await;
    let out = dir.path().join("all.csv");
    let ran = run_bin(run_against(&sim, &input, &out, &["--include-admins"])).await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert_eq!(Results::read(&out).count("updated"), 4);
    assert!(!sim
        .requests()
        .iter()
        .any(|r| r.path.contains("/directoryroles")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_in_the_protect_file_get_no_request_and_no_password() {
    let sim = simulator(SimConfig::default()).await;
    let dir = tempdir();
    let c = customer(1).to_string();
    let input = Csv::new(&[
        "customer_id",
        "user_id",
        "user_principal_name",
        "usage_location",
    ])
    .row(&[&c, &user(1).to_string(), "breakglass@contoso.com", "DE"])
    .row(&[&c, &user(2).to_string(), "ann@contoso.com", "DE"])
    .row(&[&c, &user(3).to_string(), "bob@contoso.com", "DE"])
    .write(dir.path(), "in.csv");
    let protect = dir.path().join("protect.txt");
    std::fs::write(
        &protect,
        format!("# break glass\nBreakGlass@Contoso.com\n{}\n", user(3)),
    )
    .unwrap();
    let (out, secrets) = (dir.path().join("out.csv"), dir.path().join("secrets.csv"));
    let ran = run_bin(run_against(
        &sim,
        &input,
        &out,
        &[
            "--protect-file",
            protect.to_str().unwrap(),
            "--generate-passwords",
            "--secrets-out",
            secrets.to_str().unwrap(),
            "--include-admins",
        ],
    ))
    .await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let results = Results::read(&out);
    assert_eq!(outcome(&results, 1).0, "protected");
    assert_eq!(outcome(&results, 3).0, "protected");
    assert_eq!(outcome(&results, 2).0, "updated");
    for n in [1, 3] {
        let id = user(n).to_string();
        assert!(
            !sim.requests().iter().any(|r| r.path.contains(&id)),
            "user {n}"
        );
    }
    let secrets = std::fs::read_to_string(&secrets).unwrap();
    assert!(!secrets.contains(&user(1).to_string()) && !secrets.contains(&user(3).to_string()));

    // A line that names no user stops the run before anything is sent.
    std::fs::write(&protect, "ann@contoso.com\nnot a user\n").unwrap();
    let before = sim.requests().len();
    let ran = run_bin(run_against(
        &sim,
        &input,
        &dir.path().join("o2.csv"),
        &["--protect-file", protect.to_str().unwrap()],
    ))
    .await;
    assert_eq!(ran.code, 2, "{}", ran.stderr);
    assert!(ran.stderr.contains("line 2"), "{}", ran.stderr);
    assert_eq!(sim.requests().len(), before);
}
