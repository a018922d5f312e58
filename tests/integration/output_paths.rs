//! No output overwrites another, the input or a secret: every pair of files a run writes (and
//! each against the input), named the same, through a hard link or through a symlink, with and
//! without --force, is refused before anything is sent or written; a planted `.meta` symlink is
//! never followed; a refused run leaves no `.meta` behind.

use std::path::{Path, PathBuf};

use bulkpatch::simulator::{SimConfig, SimOAuth};

use crate::support::*;

/// The files a run can name, as the test sets them up.
#[derive(Clone, Copy, Debug, PartialEq)]
enum File {
    Input,
    Out,
    Secrets,
    Summary,
    Report,
    RefreshToken,
}

impl File {
    /// The words the refusal uses for this file.
    fn option(self) -> &'static str {
        match self {
            File::Input => "the input",
            File::Out => "--out",
            File::Secrets => "--secrets-out",
            File::Summary => "--summary-json",
            File::Report => "--report",
            File::RefreshToken => "refresh_token_file",
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Form {
    SamePath,
    HardLink,
    Symlink,
}

/// One attempted run where `a` (an existing file) and `b` lead to the same file.
#[derive(Debug)]
struct Case {
    a: File,
    b: File,
    form: Form,
    force: bool,
}

/// The run's files in `d`, each at its own name.
fn own_path(d: &Path, f: File) -> PathBuf {
    d.join(match f {
        File::Input => "users.csv",
        File::Out => "out.csv",
        File::Secrets => "secrets.csv",
        File::Summary => "summary.json",
        File::Report => "report.html",
        File::RefreshToken => "refresh-token",
    })
}

/// `b`'s name for the file at `target`: the same path, a hard link or a symlink.
fn link(d: &Path, target: &Path, form: Form) -> PathBuf {
    match form {
        Form::SamePath => target.to_owned(),
        Form::HardLink => {
            let p = d.join("hard-link");
            std::fs::hard_link(target, &p).unwrap();
            p
        }
        Form::Symlink => {
            let p = d.join("sym-link");
            std::os::unix::fs::symlink(target, &p).unwrap();
            p
        }
    }
}

async fn refused(case: &Case) {
    let sim = simulator(SimConfig {
        oauth: Some(SimOAuth::default()),
        ..SimConfig::default()
    })
    .await;
    let dir = tempdir();
    let d = dir.path();
    Csv::usage_locations(3).write(d, "users.csv");
    let refresh = sim.valid_refresh_tokens().pop().unwrap();
    let (config, _) = auth_config(d, &sim, &refresh, &SimOAuth::default().client_id);
    let target = own_path(d, case.a);
    if !target.exists() {
        std::fs::write(&target, "precious\n").unwrap();
    }
    let before = std::fs::read(&target).unwrap();
    let b_path = link(d, &target, case.form);
    let path = |f: File| {
        if f == case.b {
            b_path.clone()
        } else {
            own_path(d, f)
        }
    };
    let (config, out) = (
        with_refresh_file(
            &config,
            &own_path(d, File::RefreshToken),
            &path(File::RefreshToken),
        ),
        path(File::Out),
    );
    let mut extra: Vec<String> = vec![
        "--generate-passwords".into(),
        "--secrets-out".into(),
        path(File::Secrets).display().to_string(),
        "--summary-json".into(),
        path(File::Summary).display().to_string(),
        "--report".into(),
        path(File::Report).display().to_string(),
    ];
    if case.force {
        extra.push("--force".into());
    }
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    let ran = run_bin(run_with_config(
        &sim,
        &path(File::Input),
        &out,
        &config,
        &extra,
    ))
    .await;
    let what = format!("{case:?}: {}", ran.stderr);
    assert_eq!(ran.code, 2, "{what}");
    assert_eq!(sim.stats().received, 0, "nothing is sent: {what}");
    assert!(sim.token_requests().is_empty(), "no token asked: {what}");
    assert_eq!(std::fs::read(&target).unwrap(), before, "intact: {what}");
    assert!(
        !bulkpatch::output::resume::meta_path(&out).exists(),
        "no stray .meta: {what}"
    );
    let named_both = ran.stderr.contains(case.a.option()) && ran.stderr.contains(case.b.option());
    // An existing --out (without --force) or --secrets-out is refused by an earlier check.
    let exists = ran.stderr.contains("already exists")
        && (case.b == File::Secrets || (!case.force && [case.a, case.b].contains(&File::Out)));
    assert!(named_both || exists, "the refusal names both: {what}");
}

/// `config` with `refresh_token_file` moved to `new` (the token is there, through a link or not).
fn with_refresh_file(config: &Path, old: &Path, new: &Path) -> PathBuf {
    if old == new {
        return config.to_owned();
    }
    let text = std::fs::read_to_string(config).unwrap();
    let text = text.replace(&old.display().to_string(), &new.display().to_string());
    let path = config.with_file_name("auth-moved.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_pair_of_files_a_run_writes_is_refused_before_anything_is_sent() {
    use File::*;
    let all = [Input, Out, Secrets, Summary, Report, RefreshToken];
    let mut cases = Vec::new();
    for a in [Input, Out, Summary, Report, RefreshToken] {
        for b in all.into_iter().filter(|b| *b != a) {
            for (form, force) in [
                (Form::SamePath, false),
                (Form::SamePath, true),
                (Form::HardLink, true),
                (Form::Symlink, true),
            ] {
                cases.push(Case { a, b, form, force });
            }
        }
    }
    for case in &cases {
        refused(case).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_symlink_or_hard_link_planted_at_the_meta_file_is_not_written_through() {
    let sim = simulator(SimConfig::default()).await;
    let dir = tempdir();
    let input = Csv::usage_locations(3).write(dir.path(), "users.csv");
    let out = dir.path().join("out.csv");
    let victim = dir.path().join("victim.txt");
    std::fs::write(&victim, "precious\n").unwrap();
    std::os::unix::fs::symlink(&victim, bulkpatch::output::resume::meta_path(&out)).unwrap();
    for extra in [&[][..], &["--force"][..]] {
        let ran = run_bin(run_against(&sim, &input, &out, extra)).await;
        assert_eq!(ran.code, 2, "{}", ran.stderr);
        assert!(ran.stderr.contains("symbolic link"), "{}", ran.stderr);
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
        assert!(!out.exists(), "no results file was started");
    }
    // A hard link planted there instead: refused too, its other name untouched.
    std::fs::remove_file(bulkpatch::output::resume::meta_path(&out)).unwrap();
    std::fs::hard_link(&victim, bulkpatch::output::resume::meta_path(&out)).unwrap();
    let ran = run_bin(run_against(&sim, &input, &out, &["--force"])).await;
    assert_eq!(ran.code, 2, "{}", ran.stderr);
    assert!(ran.stderr.contains("hard link"), "{}", ran.stderr);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    assert_eq!(sim.stats().received, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_output_naming_the_meta_file_or_a_meta_linked_to_the_input_is_refused() {
    let sim = simulator(SimConfig::default()).await;
    let dir = tempdir();
    let input = Csv::usage_locations(3).write(dir.path(), "users.csv");
    let out = dir.path().join("out.csv");
    let meta = bulkpatch::output::resume::meta_path(&out);
    let meta_arg = meta.display().to_string();
    let secrets = dir.path().join("secrets.csv").display().to_string();
    for (option, extra) in [
        ("--summary-json", vec!["--summary-json", &meta_arg]),
        ("--report", vec!["--report", &meta_arg]),
        (
            "--secrets-out",
            vec!["--generate-passwords", "--secrets-out", &meta_arg],
        ),
    ] {
        let ran = run_bin(run_against(&sim, &input, &out, &extra)).await;
        assert_eq!(ran.code, 2, "{}", ran.stderr);
        assert!(
            ran.stderr.contains(option) && ran.stderr.contains(".meta"),
            "{}",
            ran.stderr
        );
        assert!(!meta.exists() && !out.exists(), "{option}");
    }
    // The sidecar as a hard link of the input: the input is never truncated.
    std::fs::hard_link(&input, &meta).unwrap();
    let before = std::fs::read(&input).unwrap();
    let extra = ["--force", "--generate-passwords", "--secrets-out", &secrets];
    let ran = run_bin(run_against(&sim, &input, &out, &extra)).await;
    assert_eq!(ran.code, 2, "{}", ran.stderr);
    assert!(ran.stderr.contains("the input"), "{}", ran.stderr);
    assert_eq!(std::fs::read(&input).unwrap(), before);
    assert_eq!(sim.stats().received, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_refused_before_it_starts_leaves_no_meta_file() {
    let sim = simulator(SimConfig {
        oauth: Some(SimOAuth::default()),
        ..SimConfig::default()
    })
    .await;
    let dir = tempdir();
    let input = Csv::usage_locations(3).write(dir.path(), "users.csv");
    let out = dir.path().join("out.csv");
    let (config, _) = auth_config(
        dir.path(),
        &sim,
        "not-a-valid-refresh-token",
        &SimOAuth::default().client_id,
    );
    let ran = run_bin(run_with_config(&sim, &input, &out, &config, &[])).await;
    assert_eq!(ran.code, 2, "the token is refused: {}", ran.stderr);
    assert!(!out.exists());
    assert!(
        !bulkpatch::output::resume::meta_path(&out).exists(),
        "a stray .meta was left"
    );
    assert_eq!(sim.stats().received, 0);
}

#[test]
fn a_report_never_overwrites_its_results_file_or_itself() {
    let dir = tempdir();
    let results = dir.path().join("out.csv");
    let header = bulkpatch::output::reader::COLUMNS.join(",");
    std::fs::write(&results, format!("{header}\n")).unwrap();
    let link = dir.path().join("link.html");
    std::os::unix::fs::symlink(&results, &link).unwrap();
    let r = results.display().to_string();
    let l = link.display().to_string();
    let other = dir.path().join("r.html").display().to_string();
    for args in [
        vec!["report", &r, "--html", &r],
        vec!["report", &r, "--markdown", &l],
        vec!["report", &r, "--html", &other, "--markdown", &other],
    ] {
        let out = bulkpatch(&args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("name the same file"), "{stderr}");
        assert_eq!(
            std::fs::read_to_string(&results).unwrap(),
            format!("{header}\n")
        );
        assert!(!Path::new(&other).exists());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_earlier_runs_secrets_file_is_never_overwritten_even_with_force() {
    let sim = simulator(SimConfig::default()).await;
    let dir = tempdir();
    let input = Csv::usage_locations(2).write(dir.path(), "users.csv");
    let old = dir.path().join("march-secrets.csv");
    let text = format!(
        "{}\n2,c,u,,Old-Passw0rd\n",
        bulkpatch::output::paths::SECRETS_HEADER
    );
    std::fs::write(&old, &text).unwrap();
    let o = old.display().to_string();
    let out = dir.path().join("out.csv");
    for (option, out, extra) in [
        ("--out", &old, vec!["--force"]),
        ("--summary-json", &out, vec!["--summary-json", &o]),
        ("--report", &out, vec!["--report", &o, "--force"]),
    ] {
        let ran = run_bin(run_against(&sim, &input, out, &extra)).await;
        assert_eq!(ran.code, 2, "{option}: {}", ran.stderr);
        assert!(
            ran.stderr.contains(option) && ran.stderr.contains("secrets file"),
            "{}",
            ran.stderr
        );
        assert_eq!(std::fs::read_to_string(&old).unwrap(), text);
    }
    assert_eq!(sim.stats().received, 0);
}
