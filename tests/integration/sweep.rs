//! Found by the adversarial sweep of issue 11: a secrets file torn inside its header, secret
//! files the run only reads named as outputs, a TOML syntax error's position, and a token
//! answer whose `expires_in` no JSON reader can hold.

use bulkpatch::simulator::SimConfig;

use crate::support::*;

/// The disk filled up as the secrets file was created: its header is cut short (or it is
/// empty). The rows were never sent; a resume sends them with new passwords, and every one of
/// those passwords must be in the secrets file handed out at the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secrets_file_torn_inside_its_header_keeps_every_password_sent_on_resume() {
    for torn in ["line,customer_id,us", ""] {
        let dir = tempdir();
        let input = Csv::usage_locations(3).write(dir.path(), "users.csv");
        let out = dir.path().join("out.csv");
        let secrets = dir.path().join("secrets.csv");
        let s = secrets.display().to_string();
        let args = [
            "--generate-passwords",
            "--include-admins",
            "--secrets-out",
            &s,
            "--rate",
            "1000/s",
        ];
        let sim = simulator(SimConfig::default()).await;
        let ran = run_bin(run_against(&sim, &input, &out, &args)).await;
        assert_eq!(ran.code, 0, "{}", ran.stderr);
        // No row has a record (the run stopped at the first secrets write), the header is torn.
        let text = std::fs::read_to_string(&out).unwrap();
        std::fs::write(&out, text.lines().next().unwrap().to_string() + "\n").unwrap();
        std::fs::write(&secrets, torn).unwrap();

        let sim = simulator(SimConfig::default()).await;
        let args = [&args[..], &["--resume"]].concat();
        let ran = run_bin(run_against(&sim, &input, &out, &args)).await;
        assert_eq!(ran.code, 0, "{}", ran.stderr);
        let sent = sim.requests();
        assert_eq!(sent.len(), 3, "every row is sent");
        let after = Results::read(&secrets);
        assert_eq!(after.rows.len(), 3, "one line per row sent ({torn:?})");
        for request in &sent {
            let password = sent_password(request).unwrap();
            assert!(
                after
                    .rows
                    .iter()
                    .any(|r| r["password"] == password && r["applied"] == "yes"),
                "a password sent is missing from the secrets file ({torn:?})"
            );
        }
    }
}

/// `--token-file`, `token_file`, `[auth] client_secret_file` and `--config` are only read: an
/// output naming one of them (directly, by a symbolic or a hard link, with `--force` or not)
/// is refused before anything is sent, and the file is left as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_output_replaces_a_token_secret_or_config_file_the_run_reads() {
    let dir = tempdir();
    let input = Csv::usage_locations(2).write(dir.path(), "users.csv");
    let out = dir.path().join("out.csv");
    let sim = simulator(SimConfig::default()).await;
    let token = dir.path().join("token");
    std::fs::write(&token, sim.token()).unwrap();
    let secret = dir.path().join("client-secret");
    std::fs::write(&secret, "client-secret-value-1").unwrap();
    let config = dir.path().join("run.toml");
    let config_text = format!("token_file = \"{}\"\n", token.display());
    std::fs::write(&config, &config_text).unwrap();
    let link = dir.path().join("token.json");
    std::os::unix::fs::symlink(&token, &link).unwrap();
    let hard = dir.path().join("hard.json");
    std::fs::hard_link(&token, &hard).unwrap();
    let auth = dir.path().join("auth.toml");
    let auth_text = format!(
        "[auth]\ntoken_url = \"{}\"\nclient_id = \"app\"\nclient_secret_file = \"{}\"\n",
        sim.token_url("contoso"),
        secret.display()
    );
    std::fs::write(&auth, &auth_text).unwrap();
    let (t, l, h, c, x, a) = (
        token.display().to_string(),
        link.display().to_string(),
        hard.display().to_string(),
        config.display().to_string(),
        secret.display().to_string(),
        auth.display().to_string(),
    );
    let cases: Vec<Vec<&str>> = vec![
        vec!["--token-file", &t, "--summary-json", &t],
        vec!["--token-file", &t, "--summary-json", &l],
        vec!["--token-file", &t, "--report", &h],
        vec!["--config", &c, "--summary-json", &h],
        vec!["--config", &c, "--report", &c],
        vec!["--config", &a, "--summary-json", &x],
    ];
    for case in &cases {
        let mut cmd = run_against(&sim, &input, &out, case);
        cmd.env("BULKPATCH_REFRESH_TOKEN", "refresh-token-value-1");
        let ran = run_bin(cmd).await;
        assert_eq!(ran.code, 2, "{case:?}: {}", ran.stderr);
        assert!(
            ran.stderr.contains("name the same file"),
            "{case:?}: {}",
            ran.stderr
        );
    }
    // --out with --force naming the token file: refused too, and nothing was sent.
    let ran = run_bin(run_against(
        &sim,
        &input,
        &token,
        &["--token-file", &t, "--force"],
    ))
    .await;
    assert_eq!(ran.code, 2, "{}", ran.stderr);
    assert_eq!(sim.requests().len(), 0, "nothing is sent");
    assert_eq!(std::fs::read_to_string(&token).unwrap(), sim.token());
    assert_eq!(
        std::fs::read_to_string(&secret).unwrap(),
        "client-secret-value-1"
    );
    assert_eq!(std::fs::read_to_string(&config).unwrap(), config_text);
    // The same token file named on the command line and in the config is fine.
    let ran = run_bin(run_against(
        &sim,
        &input,
        &out,
        &["--token-file", &t, "--config", &c],
    ))
    .await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
}

/// A config file that is not TOML says where: `rate = 8/s` (unquoted) on line 4, and an
/// integer too large for TOML on line 2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_toml_syntax_error_names_its_line_and_column() {
    let dir = tempdir();
    let input = Csv::usage_locations(1).write(dir.path(), "users.csv");
    let out = dir.path().join("out.csv");
    let sim = simulator(SimConfig::default()).await;
    for (text, at) in [
        (
            "concurrency = 8\n\ntimeout = \"30s\"\nrate = 8/s\n",
            "line 4, column 9",
        ),
        (
            "# limits\nconcurrency = 18446744073709551616\n",
            "line 2, column 15",
        ),
    ] {
        let config = dir.path().join("bad.toml");
        std::fs::write(&config, text).unwrap();
        let c = config.display().to_string();
        let ran = run_bin(run_against(&sim, &input, &out, &["--config", &c])).await;
        assert_eq!(ran.code, 2, "{}", ran.stderr);
        assert!(ran.stderr.contains("not valid TOML"), "{}", ran.stderr);
        assert!(ran.stderr.contains(at), "{at}: {}", ran.stderr);
    }
    assert_eq!(sim.requests().len(), 0);
}

/// `--summary-json` and `--report` are written at the end: one in a directory that does not
/// exist is refused before any update is sent, not found after every row was applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_summary_or_report_in_a_missing_directory_is_refused_before_sending() {
    let dir = tempdir();
    let input = Csv::usage_locations(2).write(dir.path(), "users.csv");
    let sim = simulator(SimConfig::default()).await;
    let missing = dir.path().join("no-such-dir");
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    for (option, parent) in [
        ("--summary-json", &missing),
        ("--report", &missing),
        ("--summary-json", &file),
    ] {
        let out = dir.path().join(format!("out{}.csv", option.len()));
        let _ = std::fs::remove_file(&out);
        let target = parent.join("x.out").display().to_string();
        let ran = run_bin(run_against(&sim, &input, &out, &[option, &target])).await;
        assert_eq!(ran.code, 2, "{option}: {}", ran.stderr);
        assert!(ran.stderr.contains("does not exist"), "{}", ran.stderr);
        assert!(ran.stderr.contains(option), "{}", ran.stderr);
        assert_eq!(sim.requests().len(), 0, "{option}: nothing is sent");
    }
    // The summary JSON, where it can be written, says why the run stopped.
    let summary = dir.path().join("summary.json");
    let (report, s) = (
        missing.join("r.html").display().to_string(),
        summary.display().to_string(),
    );
    let out = dir.path().join("last.csv");
    let args = ["--report", &report, "--summary-json", &s];
    let ran = run_bin(run_against(&sim, &input, &out, &args)).await;
    assert_eq!(ran.code, 2, "{}", ran.stderr);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    assert_eq!(json["exit_code"], 2);
    assert!(
        json["stopped"].as_str().unwrap().contains("does not exist"),
        "{json}"
    );
    assert!(!dir.path().join("last.csv.meta").exists(), "no stray .meta");
}

/// A password in the base URL (`http://user:password@host`) is a secret like any other: the
/// connection pool's debug lines name the URL's authority, and none may show it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_in_the_base_url_never_reaches_the_logs() {
    let dir = tempdir();
    let input = Csv::usage_locations(2).write(dir.path(), "users.csv");
    let out = dir.path().join("out.csv");
    let sim = simulator(SimConfig::default()).await;
    let base = sim
        .base_url()
        .replacen("://", "://migration:Url-Pa55w%40rd@", 1);
    let (i, o) = (input.display().to_string(), out.display().to_string());
    let mut cmd = bulkpatch(&["run", &i, "--base-url", &base, "--out", &o, "-vv"]);
    cmd.env("BULKPATCH_TOKEN", sim.token())
        .env("RUST_LOG", "trace");
    let ran = run_bin(cmd).await;
    assert!(ran.stderr.contains("migration"), "{}", ran.stderr);
    for form in ["Url-Pa55w%40rd", "Url-Pa55w@rd"] {
        assert!(!ran.stderr.contains(form), "{form} in:\n{}", ran.stderr);
        assert!(!std::fs::read_to_string(&out).unwrap().contains(form));
    }
}

/// A `.meta` cut short (a crash while it was written) is there but unreadable: the refusal
/// says so rather than calling it missing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_torn_meta_is_called_unreadable_not_missing() {
    let dir = tempdir();
    let input = Csv::usage_locations(2).write(dir.path(), "users.csv");
    let out = dir.path().join("out.csv");
    let sim = simulator(SimConfig::default()).await;
    let ran = run_bin(run_against(&sim, &input, &out, &[])).await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let meta = dir.path().join("out.csv.meta");
    let text = std::fs::read(&meta).unwrap();
    std::fs::write(&meta, &text[..text.len() / 2]).unwrap();
    let ran = run_bin(run_against(&sim, &input, &out, &["--resume"])).await;
    assert_eq!(ran.code, 2, "{}", ran.stderr);
    assert!(
        ran.stderr.contains("missing or unreadable"),
        "{}",
        ran.stderr
    );
    assert_eq!(
        std::fs::read(&meta).unwrap(),
        &text[..text.len() / 2],
        "left as it was"
    );
}

/// An unbalanced quote joins a password into the user id cell, and a row missing its user id
/// puts the password in that column: the results file's id cells ("as written") hold neither.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_misshapen_record_never_writes_its_password_as_an_id() {
    let dir = tempdir();
    let (c, u2, u3, u4) = (customer(1), user(2), user(3), user(4));
    let input = Csv::new(&["customer_id", "user_id", "password"])
        .raw(&format!("{c},\"{u2},Joined-Pa55!word"))
        .raw(&format!("{c},{u3},Second-Pa55!word\""))
        .raw(&format!("{c},Short-Pa55!word"))
        .row(&[&c.to_string(), &u4.to_string(), "Good-Pa55!word"])
        .write(dir.path(), "users.csv");
    let out = dir.path().join("out.csv");
    let sim = simulator(SimConfig::default()).await;
    let ran = run_bin(run_against(&sim, &input, &out, &[])).await;
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    let text = std::fs::read_to_string(&out).unwrap();
    for password in ["Joined-Pa55", "Second-Pa55", "Short-Pa55", "Good-Pa55"] {
        assert!(!text.contains(password), "{password} in:\n{text}");
    }
    let results = Results::read(&out);
    assert_eq!(results.line(2)["outcome"], "invalid");
    assert_eq!(results.line(4)["outcome"], "invalid");
    assert_eq!(results.line(4)["customer_id"], c.to_string());
    assert_eq!(results.line(5)["outcome"], "updated");
}

/// A `--secrets-out` that is a dangling symbolic link is refused (its target never created),
/// and the message points at the right option rather than `--out`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dangling_link_as_secrets_out_is_refused_naming_the_file() {
    let dir = tempdir();
    let input = Csv::usage_locations(1).write(dir.path(), "users.csv");
    let out = dir.path().join("out.csv");
    let target = dir.path().join("planted.csv");
    let link = dir.path().join("secrets.csv");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let sim = simulator(SimConfig::default()).await;
    let l = link.display().to_string();
    let args = [
        "--generate-passwords",
        "--include-admins",
        "--secrets-out",
        &l,
    ];
    let ran = run_bin(run_against(&sim, &input, &out, &args)).await;
    assert_eq!(ran.code, 2, "{}", ran.stderr);
    assert!(
        ran.stderr.contains("(--secrets-out) is a symbolic link"),
        "{}",
        ran.stderr
    );
    assert!(!ran.stderr.contains("another --out"), "{}", ran.stderr);
    assert!(!target.exists());
    assert_eq!(sim.requests().len(), 0);
}

/// A FIFO planted at `<results>.meta` would block the read of the fingerprint for good (a
/// cron run hung): it is refused at once, and nothing is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifo_planted_at_the_meta_is_refused_not_a_hang() {
    let dir = tempdir();
    let input = Csv::usage_locations(1).write(dir.path(), "users.csv");
    let out = dir.path().join("out.csv");
    let meta = dir.path().join("out.csv.meta");
    let made = std::process::Command::new("mkfifo")
        .arg(&meta)
        .status()
        .unwrap();
    assert!(made.success());
    let sim = simulator(SimConfig::default()).await;
    let child = run_against(&sim, &input, &out, &[]).spawn().unwrap();
    let pid = child.id().to_string();
    // Bounded: a hang is a failure (the process killed), not a stuck test suite.
    let waited = tokio::time::timeout(std::time::Duration::from_secs(30), wait_child(child));
    let Ok(ran) = waited.await else {
        let _ = std::process::Command::new("kill")
            .args(["-9", &pid])
            .status();
        panic!("the run hung on a FIFO at .meta");
    };
    assert_eq!(ran.code, 2, "{}", ran.stderr);
    assert!(ran.stderr.contains("not a regular file"), "{}", ran.stderr);
    assert_eq!(sim.requests().len(), 0);
}

/// An input that is a pipe (`run <(convert users.xlsx)`, a FIFO) cannot be read twice: a
/// clear error at once, not "Illegal seek", and no hang on a FIFO nobody writes to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_input_that_is_a_pipe_gets_a_clear_error_at_once() {
    let dir = tempdir();
    let input = dir.path().join("users.csv");
    let made = std::process::Command::new("mkfifo")
        .arg(&input)
        .status()
        .unwrap();
    assert!(made.success());
    let out = dir.path().join("out.csv");
    let sim = simulator(SimConfig::default()).await;
    let child = run_against(&sim, &input, &out, &[]).spawn().unwrap();
    let pid = child.id().to_string();
    let waited = tokio::time::timeout(std::time::Duration::from_secs(30), wait_child(child));
    let Ok(ran) = waited.await else {
        let _ = std::process::Command::new("kill")
            .args(["-9", &pid])
            .status();
        panic!("the run hung on a FIFO as input");
    };
    assert_eq!(ran.code, 2, "{}", ran.stderr);
    assert!(ran.stderr.contains("not a regular file"), "{}", ran.stderr);
    assert!(!out.exists());
}

/// `--out /dev/null` (or a FIFO) with `--force`: refused before anything is sent, and no
/// `.meta` left beside it (it sent every update, then failed at the compaction).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_results_file_that_is_not_a_regular_file_is_refused_before_sending() {
    let dir = tempdir();
    let input = Csv::usage_locations(2).write(dir.path(), "users.csv");
    let fifo = dir.path().join("out.csv");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let sim = simulator(SimConfig::default()).await;
    for out in [std::path::Path::new("/dev/null"), fifo.as_path()] {
        let child = run_against(&sim, &input, out, &["--force"])
            .spawn()
            .unwrap();
        let pid = child.id().to_string();
        let waited = tokio::time::timeout(std::time::Duration::from_secs(30), wait_child(child));
        let Ok(ran) = waited.await else {
            let _ = std::process::Command::new("kill")
                .args(["-9", &pid])
                .status();
            panic!("the run hung on {}", out.display());
        };
        assert_eq!(ran.code, 2, "{}", ran.stderr);
        assert!(ran.stderr.contains("not a regular file"), "{}", ran.stderr);
        assert_eq!(sim.requests().len(), 0, "nothing is sent");
    }
    assert!(!dir.path().join("out.csv.meta").exists());
}
