//! `login`, `status`, `logout` and runs on the stored sign-in, against the simulator's
//! authority: the test plays the browser (it follows the printed URL, then the redirect to the
//! loopback listener) or the person with the device code, reading the binary's stderr.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::mpsc::Receiver;
use std::time::Duration;

use bulkpatch::simulator::{SimConfig, SimOAuth, Simulator};

use crate::support::*;

/// The simulator's test user (see `SimUser::default`).
const ACCOUNT: &str = "admin@contoso.onmicrosoft.com";
const TENANT_ID: &str = "0a6b1a8e-3c1f-4f0e-9a8e-1b2c3d4e5f60";

pub(crate) async fn authority(oauth: SimOAuth) -> Simulator {
    simulator(SimConfig {
        oauth: Some(oauth),
        ..SimConfig::default()
    })
    .await
}

/// A client that never follows a redirect, as a test browser.
pub(crate) fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .unwrap()
}

/// `bulkpatch login ARGS` against `sim` with its sign-in kept in `home`, and its stderr lines.
fn spawn_login(sim: &Simulator, home: &Path, args: &[&str]) -> (Child, Receiver<String>) {
    let base = sim.base_url();
    let mut all = vec!["login", "--authority", &base, "--client-id"];
    let client_id = SimOAuth::default().client_id;
    all.push(&client_id);
    all.extend_from_slice(args);
    let mut cmd = bulkpatch(&all);
    cmd.env("BULKPATCH_HOME", home);
    spawn_with_lines(cmd)
}

/// Spawns `cmd`, its stderr lines sent to the receiver as they come (stdout is kept).
pub(crate) fn spawn_with_lines(mut cmd: std::process::Command) -> (Child, Receiver<String>) {
    let mut child = cmd.spawn().expect("spawn bulkpatch");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

/// The first stderr line `pick` accepts (each line seen is kept in `seen`).
pub(crate) async fn line_where(
    rx: Receiver<String>,
    pick: fn(&str) -> Option<String>,
) -> (String, Receiver<String>, Vec<String>) {
    tokio::task::spawn_blocking(move || {
        let mut seen = Vec::new();
        loop {
            let line = rx
                .recv_timeout(Duration::from_secs(30))
                .unwrap_or_else(|_| panic!("no such line on stderr; saw {seen:?}"));
            seen.push(line.clone());
            if let Some(found) = pick(&line) {
                return (found, rx, seen);
            }
        }
    })
    .await
    .unwrap()
}

/// Waits for the child and returns its exit code and every stderr line.
pub(crate) async fn finish(
    mut child: Child,
    rx: Receiver<String>,
    mut seen: Vec<String>,
) -> (i32, String) {
    let code = tokio::task::spawn_blocking(move || {
        let status = child.wait().unwrap();
        seen.extend(rx.iter());
        (status.code().unwrap_or(-1), seen.join("\n"))
    })
    .await
    .unwrap();
    code
}

/// The browser flow end to end with `--no-browser`: returns login's exit code and stderr.
async fn browser_login(sim: &Simulator, home: &Path) -> (i32, String) {
    let (code, stderr, page) = browser_login_page(sim, home).await;
    assert!(page.contains("Signed in"), "{page}");
    (code, stderr)
}

/// The browser flow: login's exit code and stderr, and the page the loopback listener showed.
async fn browser_login_page(sim: &Simulator, home: &Path) -> (i32, String, String) {
    let (child, rx) = spawn_login(
        sim,
        home,
        &["--no-browser", "--tenant", "contoso.onmicrosoft.com"],
    );
    let (url, rx, seen) =
        line_where(rx, |l| l.starts_with("http").then(|| l.trim().to_string())).await;
    let web = browser();
    let answer = web.get(&url).send().await.unwrap();
    assert_eq!(answer.status(), 302, "{url}");
    let location = answer.headers()["location"].to_str().unwrap().to_string();
    assert!(location.starts_with("http://localhost:"), "{location}");
    let page = web.get(&location).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    let (code, stderr) = finish(child, rx, seen).await;
    (code, stderr, page)
}

fn sign_in_file(home: &Path) -> PathBuf {
    home.join("sign-in.json")
}

pub(crate) fn stored(home: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(sign_in_file(home)).unwrap()).unwrap()
}

fn assert_no_token(sim: &Simulator, texts: &[&str]) {
    for token in sim.issued_tokens() {
        for text in texts {
            assert!(!text.contains(&token), "a token shows: {text}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_sign_in_is_stored_privately_shown_by_status_and_removed_by_logout() {
    let sim = authority(SimOAuth::default()).await;
    let dir = tempdir();
    let home = dir.path().join("home");
    let (code, stderr) = browser_login(&sim, &home).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains(ACCOUNT), "{stderr}");

    // The code was redeemed with the verifier of the challenge sent to /authorize.
    let requests = sim.token_requests();
    let redeemed = requests
        .iter()
        .find(|r| r.form.get("grant_type").map(String::as_str) == Some("authorization_code"))
        .expect("an authorization_code grant");
    assert_eq!(redeemed.status, 200);
    assert!(redeemed.form["redirect_uri"].starts_with("http://localhost:"));
    assert!(redeemed.form["code_verifier"].len() >= 43);

    #[cfg(unix)]
    assert_eq!(mode(&sign_in_file(&home)), 0o600);
    let record = stored(&home);
    assert_eq!(record["account"], ACCOUNT);
    assert_eq!(record["tenant"], "contoso.onmicrosoft.com");
    let refresh = record["refresh_token"].as_str().unwrap().to_string();
    assert!(sim.valid_refresh_tokens().contains(&refresh));

    let mut status = bulkpatch(&["status"]);
    status.env("BULKPATCH_HOME", &home);
    let status = run_bin(status).await;
    assert_eq!(status.code, 0, "{}", status.stderr);
    assert!(status.stdout.contains(ACCOUNT), "{}", status.stdout);
    assert!(status.stdout.contains(TENANT_ID), "{}", status.stdout);
    assert!(status.stdout.contains("90 days"), "{}", status.stdout);
    assert_no_token(&sim, &[&status.stdout, &status.stderr, &stderr]);

    let mut logout = bulkpatch(&["logout"]);
    logout.env("BULKPATCH_HOME", &home);
    let logout = run_bin(logout).await;
    assert_eq!(logout.code, 0, "{}", logout.stderr);
    assert!(!sign_in_file(&home).exists());
    let mut status = bulkpatch(&["status"]);
    status.env("BULKPATCH_HOME", &home);
    let status = run_bin(status).await;
    assert_eq!(status.code, 1);
    assert!(status.stderr.contains("Not signed in"), "{}", status.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_uses_the_stored_sign_in_and_stores_the_rotated_refresh_token() {
    // Access tokens of a minute: too short to be reused, so the run refreshes first.
    let sim = authority(SimOAuth {
        access_token_lifetime: Duration::from_secs(60),
        ..SimOAuth::default()
    })
    .await;
    let dir = tempdir();
    let home = dir.path().join("home");
    assert_eq!(browser_login(&sim, &home).await.0, 0);
    let first = stored(&home)["refresh_token"].as_str().unwrap().to_string();

    let input = Csv::usage_locations(3).write(dir.path(), "in.csv");
    let out = dir.path().join("out.csv");
    let mut run = run_against(&sim, &input, &out, &[]);
    run.env_remove("BULKPATCH_TOKEN")
        .env("BULKPATCH_HOME", &home);
    let ran = run_bin(run).await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert_eq!(Results::read(&out).count("updated"), 3);

    let refreshes: Vec<_> = sim
        .token_requests()
        .into_iter()
        .filter(|r| r.form["grant_type"] == "refresh_token")
        .collect();
    assert_eq!(refreshes.len(), 1);
    assert_eq!(refreshes[0].form["refresh_token"], first);
    let rotated = stored(&home)["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(rotated, first);
    let valid = sim.valid_refresh_tokens();
    assert!(
        valid.contains(&rotated) && !valid.contains(&first),
        "{valid:?}"
    );
    #[cfg(unix)]
    assert_eq!(mode(&sign_in_file(&home)), 0o600);
    assert_no_token(&sim, &[&ran.stdout, &ran.stderr]);

    // BULKPATCH_TOKEN still wins over the stored sign-in.
    let out = dir.path().join("out2.csv");
    let mut run = run_against(&sim, &input, &out, &[]);
    run.env("BULKPATCH_HOME", &home);
    assert_eq!(run_bin(run).await.code, 0);
    assert_eq!(
        sim.token_requests().len(),
        refreshes.len() + 1,
        "no refresh"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_stored_access_token_is_used_without_a_refresh_even_with_an_auth_section() {
    let sim = authority(SimOAuth::default()).await;
    let dir = tempdir();
    let home = dir.path().join("home");
    assert_eq!(browser_login(&sim, &home).await.0, 0);
    let input = Csv::usage_locations(2).write(dir.path(), "in.csv");
    let out = dir.path().join("out.csv");
    // An [auth] section without a refresh token of its own (as for `login`) leaves the stored
    // sign-in in use.
    let config = dir.path().join("c.toml");
    std::fs::write(
        &config,
        "[auth]\ntenant = \"contoso.onmicrosoft.com\"\nclient_id = \"other\"\n",
    )
    .unwrap();
    let mut run = run_against(&sim, &input, &out, &["--config", config.to_str().unwrap()]);
    run.env_remove("BULKPATCH_TOKEN")
        .env("BULKPATCH_HOME", &home);
    let ran = run_bin(run).await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert_eq!(
        sim.token_requests().len(),
        1,
        "only the sign-in's own grant"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_stored_sign_in_stops_the_run_saying_to_sign_in_again() {
    // The sign-in succeeds; every refresh after it is refused (AADSTS700082).
    let sim = authority(SimOAuth {
        access_token_lifetime: Duration::from_secs(60),
        fail_after: Some(1),
        ..SimOAuth::default()
    })
    .await;
    let dir = tempdir();
    let home = dir.path().join("home");
    assert_eq!(browser_login(&sim, &home).await.0, 0);
    let input = Csv::usage_locations(2).write(dir.path(), "in.csv");
    let out = dir.path().join("out.csv");
    let mut run = run_against(&sim, &input, &out, &[]);
    run.env_remove("BULKPATCH_TOKEN")
        .env("BULKPATCH_HOME", &home);
    let ran = run_bin(run).await;
    assert_eq!(ran.code, 2, "{}", ran.stderr);
    assert!(ran.stderr.contains("AADSTS700082"), "{}", ran.stderr);
    assert!(
        ran.stderr.contains("run `bulkpatch login`"),
        "{}",
        ran.stderr
    );
    assert!(sim.requests().is_empty(), "nothing sent");
    assert_no_token(&sim, &[&ran.stdout, &ran.stderr]);
}

/// The device code's verification URI and user code, from login's stderr.
pub(crate) fn device_prompt(line: &str) -> Option<String> {
    let rest = line.strip_prefix("To sign in, open ")?;
    let (uri, code) = rest.split_once(" and enter the code ")?;
    Some(format!("{uri}?code={code}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_device_flow_polls_through_pending_and_slow_down_until_approved() {
    let sim = authority(SimOAuth {
        device_script: vec!["authorization_pending".into(), "slow_down".into()],
        device_interval: 0,
        ..SimOAuth::default()
    })
    .await;
    let dir = tempdir();
    let home = dir.path().join("home");
    let (child, rx) = spawn_login(&sim, &home, &["--device-code"]);
    let (approve, rx, seen) = line_where(rx, device_prompt).await;
    let page = browser().get(&approve).send().await.unwrap();
    assert_eq!(page.status(), 200, "{approve}");
    let (code, stderr) = finish(child, rx, seen).await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stored(&home)["account"], ACCOUNT);

    let polls: Vec<_> = sim
        .token_requests()
        .into_iter()
        .filter(|r| r.form["grant_type"] == "urn:ietf:params:oauth:grant-type:device_code")
        .collect();
    let statuses: Vec<u16> = polls.iter().map(|p| p.status).collect();
    assert_eq!(statuses, [400, 400, 200]);
    // An interval of 0 is taken as a second; slow_down adds 5 s.
    let gap = |i: usize| polls[i + 1].received_at - polls[i].received_at;
    assert!(gap(0) >= Duration::from_secs(1), "{:?}", gap(0));
    assert!(gap(1) >= Duration::from_secs(5), "{:?}", gap(1));
    assert_no_token(&sim, &[&stderr]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declined_or_expired_device_code_stops_with_what_to_do_and_stores_nothing() {
    let sim = authority(SimOAuth {
        device_interval: 1,
        ..SimOAuth::default()
    })
    .await;
    let dir = tempdir();
    let home = dir.path().join("home");
    let (child, rx) = spawn_login(&sim, &home, &["--device-code"]);
    let (approve, rx, seen) = line_where(rx, device_prompt).await;
    let page = browser()
        .get(format!("{approve}&decline=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let (code, stderr) = finish(child, rx, seen).await;
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("authorization_declined"), "{stderr}");
    assert!(stderr.contains("run `bulkpatch login` again"), "{stderr}");
    assert!(!sign_in_file(&home).exists());

    let sim = authority(SimOAuth {
        device_script: vec!["expired_token".into()],
        ..SimOAuth::default()
    })
    .await;
    // This time the authority and client come from the config file's [auth] section.
    let config = dir.path().join("login.toml");
    std::fs::write(
        &config,
        format!(
            "[auth]\ntenant = \"contoso.onmicrosoft.com\"\nclient_id = \"{}\"\nauthority = \"{}\"\n",
            SimOAuth::default().client_id,
            sim.authority()
        ),
    )
    .unwrap();
    let mut cmd = bulkpatch(&[
        "login",
        "--device-code",
        "--config",
        config.to_str().unwrap(),
    ]);
    cmd.env("BULKPATCH_HOME", &home);
    let (child, rx) = spawn_with_lines(cmd);
    let (code, stderr) = finish(child, rx, Vec::new()).await;
    assert_eq!(sim.token_requests().len(), 1, "one poll: {stderr}");
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("expired_token") && stderr.contains("--device-code"),
        "{stderr}"
    );
    assert!(!sign_in_file(&home).exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_browser_sign_in_stops_with_exit_2() {
    let sim = authority(SimOAuth {
        authorize_error: Some("access_denied".into()),
        ..SimOAuth::default()
    })
    .await;
    let dir = tempdir();
    let home = dir.path().join("home");
    let (code, stderr, page) = browser_login_page(&sim, &home).await;
    assert_eq!(code, 2, "{stderr}");
    assert!(page.contains("did not succeed"), "{page}");
    assert!(stderr.contains("access_denied"), "{stderr}");
    assert!(!sign_in_file(&home).exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_authority_refuses_a_code_with_the_wrong_verifier_or_redirect() {
    let sim = authority(SimOAuth::default()).await;
    let client_id = SimOAuth::default().client_id;
    let (challenge, verifier) = oauth2::PkceCodeChallenge::new_random_sha256();
    let web = browser();
    let code = || async {
        let answer = web
            .get(format!("{}/common/oauth2/v2.0/authorize", sim.base_url()))
            .query(&[
                ("client_id", client_id.as_str()),
                ("response_type", "code"),
                ("redirect_uri", "http://localhost:5000"),
                ("state", "s"),
                ("code_challenge", challenge.as_str()),
                ("code_challenge_method", "S256"),
            ])
            .send()
            .await
            .unwrap();
        let location = reqwest::Url::parse(answer.headers()["location"].to_str().unwrap()).unwrap();
        let code = location.query_pairs().find(|(k, _)| k == "code").unwrap().1;
        code.into_owned()
    };
    let redeem = |code: String, verifier: String, redirect: &'static str| {
        let web = web.clone();
        let url = sim.token_url("common");
        let client_id = client_id.clone();
        async move {
            let answer = web
                .post(url)
                .form(&[
                    ("grant_type", "authorization_code"),
                    ("client_id", &client_id),
                    ("code", &code),
                    ("redirect_uri", redirect),
                    ("code_verifier", &verifier),
                ])
                .send()
                .await
                .unwrap();
            (answer.status().as_u16(), answer.text().await.unwrap())
        }
    };
    let wrong = "x".repeat(50);
    let (status, body) = redeem(code().await, wrong, "http://localhost:5000").await;
    assert_eq!(status, 400);
    assert!(body.contains("AADSTS501481"), "{body}");
    let right = verifier.secret().clone();
    let (status, body) = redeem(code().await, right.clone(), "http://localhost:5001").await;
    assert_eq!(status, 400);
    assert!(body.contains("AADSTS500112"), "{body}");
    let (status, body) = redeem(code().await, right, "http://localhost:5000").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("id_token"));
}

/// Without BULKPATCH_HOME and with no keyring service answering (no D-Bus session), the
/// sign-in goes to a private file in the platform's config folder.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_keyring_the_sign_in_goes_to_the_config_folder() {
    let sim = authority(SimOAuth::default()).await;
    let dir = tempdir();
    let config_home = dir.path().join("config");
    let client_id = SimOAuth::default().client_id;
    let base = sim.base_url();
    let mut cmd = bulkpatch(&[
        "login",
        "--no-browser",
        "--authority",
        &base,
        "--client-id",
        &client_id,
    ]);
    cmd.env_remove("BULKPATCH_HOME")
        .env("XDG_CONFIG_HOME", &config_home)
        .env("HOME", dir.path())
        .env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus");
    let (child, rx) = spawn_with_lines(cmd);
    let (url, rx, seen) =
        line_where(rx, |l| l.starts_with("http").then(|| l.trim().to_string())).await;
    let web = browser();
    let answer = web.get(&url).send().await.unwrap();
    let location = answer.headers()["location"].to_str().unwrap().to_string();
    web.get(&location).send().await.unwrap();
    let (code, stderr) = finish(child, rx, seen).await;
    assert_eq!(code, 0, "{stderr}");
    let file = config_home.join("bulkpatch").join("sign-in.json");
    assert_eq!(mode(&file), 0o600);
    assert_eq!(mode(file.parent().unwrap()), 0o700);
    assert!(
        !stderr.to_lowercase().contains("keyring"),
        "quiet fallback: {stderr}"
    );
}
