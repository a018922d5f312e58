//! `login` signs in for the chosen target's scope (`--target`, `BULKPATCH_TARGET`, config
//! `target`; `[auth] scope` over all of them), checked by what the simulator's authority
//! received; and a run on another target than the sign-in's asks for its own scope.

use std::path::Path;

use bulkpatch::simulator::{SimOAuth, Simulator};
use bulkpatch::targets::{graph, partner_center};

use crate::login::{
    authority, browser, device_prompt, finish, line_where, spawn_with_lines, stored,
};
use crate::support::*;

/// `bulkpatch login --device-code` against `sim` with `args` and `env`, its sign-in kept in
/// `home`; the test approves the code. Returns the exit code and stderr.
async fn device_login(
    sim: &Simulator,
    home: &Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> (i32, String) {
    let base = sim.authority();
    let client_id = SimOAuth::default().client_id;
    let mut all = vec!["login", "--device-code", "--authority", &base];
    all.extend_from_slice(&["--client-id", &client_id]);
    all.extend_from_slice(args);
    let mut cmd = bulkpatch(&all);
    cmd.env("BULKPATCH_HOME", home);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let (child, rx) = spawn_with_lines(cmd);
    let (approve, rx, seen) = line_where(rx, device_prompt).await;
    let page = browser().get(&approve).send().await.unwrap();
    assert_eq!(page.status(), 200, "{approve}");
    finish(child, rx, seen).await
}

/// The scope the one device authorization request asked for.
fn device_scope(sim: &Simulator) -> String {
    let requests = sim.device_requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    requests[0].get("scope").cloned().unwrap_or_default()
}

/// Signs in with `args`/`env` (and `config`'s contents as `--config` when given) and returns
/// the scope the authority was asked for; the stored sign-in must name the same scope.
async fn scope_asked(args: &[&str], env: &[(&str, &str)], config: Option<&str>) -> String {
    let sim = authority(SimOAuth::default()).await;
    let dir = tempdir();
    let home = dir.path().join("home");
    let path = dir.path().join("login.toml");
    let mut all = args.to_vec();
    if let Some(text) = config {
        std::fs::write(&path, text).unwrap();
        all.extend_from_slice(&["--config", path.to_str().unwrap()]);
    }
    let (code, stderr) = device_login(&sim, &home, &all, env).await;
    assert_eq!(code, 0, "{stderr}");
    let scope = device_scope(&sim);
    assert_eq!(stored(&home)["scope"], scope.as_str());
    scope
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_with_target_graph_asks_for_graphs_scope() {
    assert_eq!(
        scope_asked(&["--target", "graph"], &[], None).await,
        graph::SCOPE
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_without_a_target_still_asks_for_partner_centers_scope() {
    assert_eq!(scope_asked(&[], &[], None).await, partner_center::SCOPE);
    assert_eq!(
        scope_asked(&["--target", "partner-center"], &[], None).await,
        partner_center::SCOPE
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_target_comes_from_the_environment_or_the_config_file() {
    let env = [("BULKPATCH_TARGET", "graph")];
    assert_eq!(scope_asked(&[], &env, None).await, graph::SCOPE);
    let config = "target = \"graph\"\n";
    assert_eq!(scope_asked(&[], &[], Some(config)).await, graph::SCOPE);
    // The command line wins over the file.
    assert_eq!(
        scope_asked(&["--target", "partner-center"], &[], Some(config)).await,
        partner_center::SCOPE
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auth_scope_overrides_the_targets() {
    let config = "[auth]\nscope = \"api://custom/.default offline_access\"\n";
    let asked = scope_asked(&["--target", "graph"], &[], Some(config)).await;
    assert_eq!(asked, "api://custom/.default offline_access");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_target_stops_login_naming_the_option() {
    let sim = authority(SimOAuth::default()).await;
    let dir = tempdir();
    let client_id = SimOAuth::default().client_id;
    let base = sim.authority();
    let mut cmd = bulkpatch(&[
        "login",
        "--device-code",
        "--authority",
        &base,
        "--client-id",
        &client_id,
        "--target",
        "grpah",
    ]);
    cmd.env("BULKPATCH_HOME", dir.path().join("home"));
    let ran = run_bin(cmd).await;
    assert_eq!(ran.code, 2, "{}", ran.stderr);
    assert!(
        ran.stderr.contains("`target`")
            && ran
                .stderr
                .contains("\"grpah\" is not a target (one of: partner-center, graph)"),
        "{}",
        ran.stderr
    );
    assert!(sim.device_requests().is_empty(), "nothing asked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partner_center_run_on_a_graph_sign_in_asks_for_partner_centers_scope_and_warns() {
    // Access tokens of an hour: the stored (Graph) one would still be usable as it is.
    let sim = authority(SimOAuth::default()).await;
    let dir = tempdir();
    let home = dir.path().join("home");
    let (code, stderr) = device_login(&sim, &home, &["--target", "graph"], &[]).await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stored(&home)["scope"], graph::SCOPE);

    let input = Csv::usage_locations(2).write(dir.path(), "in.csv");
    let out = dir.path().join("out.csv");
    let mut run = run_against(&sim, &input, &out, &[]);
    run.env_remove("BULKPATCH_TOKEN")
        .env("BULKPATCH_HOME", &home);
    let ran = run_bin(run).await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert_eq!(Results::read(&out).count("updated"), 2);
    assert!(
        ran.stderr
            .contains("bulkpatch login --target partner-center"),
        "{}",
        ran.stderr
    );
    // Graph's access token was set aside: Partner Center's was asked for.
    let refreshes: Vec<_> = sim
        .token_requests()
        .into_iter()
        .filter(|r| r.form["grant_type"] == "refresh_token")
        .collect();
    assert_eq!(refreshes.len(), 1, "{refreshes:?}");
    assert_eq!(refreshes[0].form["scope"], partner_center::SCOPE);
    assert_eq!(stored(&home)["scope"], partner_center::SCOPE);

    // The same target again: no warning, the stored token used as it is.
    let asked = sim.token_requests().len();
    let out = dir.path().join("out2.csv");
    let mut run = run_against(&sim, &input, &out, &["--force"]);
    run.env_remove("BULKPATCH_TOKEN")
        .env("BULKPATCH_HOME", &home);
    let ran = run_bin(run).await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert!(
        !ran.stderr.contains("bulkpatch login --target"),
        "{}",
        ran.stderr
    );
    assert_eq!(sim.token_requests().len(), asked, "no refresh");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_names_the_scope_signed_in_for() {
    let sim = authority(SimOAuth::default()).await;
    let dir = tempdir();
    let home = dir.path().join("home");
    let (code, stderr) = device_login(&sim, &home, &["--target", "graph"], &[]).await;
    assert_eq!(code, 0, "{stderr}");
    let mut status = bulkpatch(&["status"]);
    status.env("BULKPATCH_HOME", &home);
    let status = run_bin(status).await;
    assert_eq!(status.code, 0, "{}", status.stderr);
    let shown = format!("{}{}", status.stdout, status.stderr);
    assert!(
        shown.contains(&format!("Scope: {}", graph::SCOPE)),
        "{shown}"
    );
}
