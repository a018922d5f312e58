//! Test support: simulator spawning, temp dirs, CSV builders, running the real binary, reading results.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use bulkpatch::simulator::{RecordedRequest, SimConfig, Simulator};
use uuid::Uuid;

/// A deterministic GUID for test entity `n` of `kind` (1 = customer, 2 = user, ...).
pub fn guid(kind: u8, n: u32) -> Uuid {
    Uuid::from_u128((u128::from(kind) << 96) | u128::from(n) | (0x4000 << 64))
}

pub fn customer(n: u32) -> Uuid {
    guid(1, n)
}

pub fn user(n: u32) -> Uuid {
    guid(2, n)
}

/// Starts a simulator on 127.0.0.1:0 that records every request.
/// A simulator whose Graph tenant (the fixed token's) is `customer(1)`, with `config` over the
/// defaults.
pub async fn graph_simulator(config: SimConfig) -> Simulator {
    simulator(SimConfig {
        graph: bulkpatch::simulator::SimGraph {
            tenant: customer(1),
            ..config.graph.clone()
        },
        ..config
    })
    .await
}

/// `bulkpatch COMMAND INPUT --target graph --base-url {sim}/graph/v1.0 --out OUT` plus `extra`,
/// with the simulator's fixed token.
pub fn graph_command(
    sim: &Simulator,
    command: &str,
    input: &Path,
    out: &Path,
    extra: &[&str],
) -> Command {
    let url = sim.graph_url();
    let mut args = vec![
        command,
        input.to_str().unwrap(),
        "--target",
        "graph",
        "--base-url",
        &url,
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let mut cmd = bulkpatch(&args);
    cmd.env("BULKPATCH_TOKEN", sim.token());
    cmd
}

/// `rows` rows of customer 1 setting the job title of users 1..=rows to `Title {n}`.
pub fn job_titles(dir: &Path, rows: u32) -> PathBuf {
    let c = customer(1).to_string();
    let mut csv = Csv::new(&["customer_id", "user_id", "job_title"]);
    for n in 1..=rows {
        csv = csv.row(&[&c, &user(n).to_string(), &format!("Title {n}")]);
    }
    csv.write(dir, "in.csv")
}

pub async fn simulator(config: SimConfig) -> Simulator {
    Simulator::start(SimConfig {
        record: true,
        ..config
    })
    .await
    .expect("start the simulator")
}

/// A CSV file under construction.
pub struct Csv {
    lines: Vec<String>,
    delimiter: char,
    newline: &'static str,
    bom: bool,
}

impl Csv {
    pub fn new(header: &[&str]) -> Csv {
        Csv {
            lines: vec![header.join(",")],
            delimiter: ',',
            newline: "\n",
            bom: false,
        }
    }

    /// The usual migration file: customer_id,user_id,usage_location with `n` rows for customer 1.
    pub fn usage_locations(n: u32) -> Csv {
        let mut csv = Csv::new(&["customer_id", "user_id", "usage_location"]);
        for i in 1..=n {
            csv = csv.row(&[&customer(1).to_string(), &user(i).to_string(), "DE"]);
        }
        csv
    }

    pub fn row(mut self, cells: &[&str]) -> Csv {
        self.lines.push(cells.join(","));
        self
    }

    /// A line written exactly as given (for malformed rows).
    pub fn raw(mut self, line: &str) -> Csv {
        self.lines.push(line.to_string());
        self
    }

    /// Writes with `;` between cells, CRLF line ends and a UTF-8 BOM (as European Excel does).
    pub fn excel_european(mut self) -> Csv {
        self.delimiter = ';';
        self.newline = "\r\n";
        self.bom = true;
        self
    }

    pub fn write(&self, dir: &Path, name: &str) -> PathBuf {
        let path = dir.join(name);
        let mut text = String::new();
        if self.bom {
            text.push('\u{FEFF}');
        }
        for line in &self.lines {
            if self.delimiter == ',' {
                text.push_str(line);
            } else {
                text.push_str(&line.replace(',', &self.delimiter.to_string()));
            }
            text.push_str(self.newline);
        }
        std::fs::write(&path, text).expect("write the CSV");
        path
    }
}

/// The result of running the binary.
pub struct Ran {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    fn from(out: Output) -> Ran {
        Ran {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// A command for the real `bulkpatch` binary with a clean environment (no BULKPATCH_*, RUST_LOG
/// or proxy settings from outside).
pub fn bulkpatch(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_bulkpatch"));
    cmd.args(args).env_remove("RUST_LOG");
    for proxy in ["ALL_PROXY", "HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY"] {
        cmd.env_remove(proxy).env_remove(proxy.to_lowercase());
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("BULKPATCH_") {
            cmd.env_remove(key);
        }
    }
    // No stored sign-in of the person running the tests (a test that wants one sets its own).
    cmd.env(
        "BULKPATCH_HOME",
        std::env::temp_dir().join("bulkpatch-tests-never-signed-in"),
    );
    cmd
}

/// Runs the binary to completion off the async runtime (the simulator keeps serving meanwhile).
pub async fn run_bin(mut cmd: Command) -> Ran {
    tokio::task::spawn_blocking(move || Ran::from(cmd.output().expect("run bulkpatch")))
        .await
        .expect("join the binary")
}

/// `bulkpatch run INPUT --base-url SIM --out OUT` with the simulator's token in the environment, plus `extra`.
pub fn run_against(sim: &Simulator, input: &Path, out: &Path, extra: &[&str]) -> Command {
    let mut args = vec![
        "run".to_string(),
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

/// Runs `bulkpatch run INPUT --out OUT` against `sim` (plus `extra`) with its files capped at
/// 8 KiB, as on a full disk (bash ignores SIGXFSZ, so a write past the cap fails instead).
#[cfg(unix)]
pub async fn run_with_full_disk(sim: &Simulator, input: &Path, out: &Path, extra: &[&str]) -> Ran {
    let script = format!(
        "trap '' XFSZ; ulimit -f 8; exec {} run {} --base-url {} --out {} --rate 100/s --concurrency 2 {}",
        env!("CARGO_BIN_EXE_bulkpatch"),
        input.display(),
        sim.base_url(),
        out.display(),
        extra.join(" ")
    );
    let mut cmd = Command::new("bash");
    cmd.args(["-c", &script])
        .env("BULKPATCH_TOKEN", sim.token())
        .env_remove("RUST_LOG");
    run_bin(cmd).await
}

/// The results file as a header and rows of column -> value.
pub struct Results {
    pub header: Vec<String>,
    pub rows: Vec<HashMap<String, String>>,
}

impl Results {
    pub fn read(path: &Path) -> Results {
        let mut reader = csv::Reader::from_path(path).expect("open the results file");
        let header: Vec<String> = reader
            .headers()
            .expect("results header")
            .iter()
            .map(String::from)
            .collect();
        let rows = reader
            .records()
            .map(|r| {
                let r = r.expect("a results record");
                header
                    .iter()
                    .cloned()
                    .zip(r.iter().map(String::from))
                    .collect()
            })
            .collect();
        Results { header, rows }
    }

    /// The record for input line `line`.
    pub fn line(&self, line: u64) -> &HashMap<String, String> {
        let l = line.to_string();
        self.rows
            .iter()
            .find(|r| r["line"] == l)
            .unwrap_or_else(|| panic!("no results record for line {line}"))
    }

    pub fn count(&self, outcome: &str) -> usize {
        self.rows.iter().filter(|r| r["outcome"] == outcome).count()
    }
}

/// Requests the simulator received for one user.
pub fn requests_for(requests: &[RecordedRequest], user: Uuid) -> Vec<RecordedRequest> {
    let needle = format!("/users/{user}");
    requests
        .iter()
        .filter(|r| r.path.ends_with(&needle))
        .cloned()
        .collect()
}

pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("a temp dir")
}

/// A config file with an `[auth]` section for the simulator's token endpoint, and the refresh
/// token in a private file; returns the config path and the refresh-token file path.
pub fn auth_config(
    dir: &Path,
    sim: &Simulator,
    refresh_token: &str,
    client_id: &str,
) -> (PathBuf, PathBuf) {
    let refresh_file = dir.join("refresh-token");
    let _ = std::fs::remove_file(&refresh_file);
    {
        use std::io::Write;
        let mut f =
            bulkpatch::core::files::create_private_file(&refresh_file).expect("refresh token file");
        writeln!(f, "{refresh_token}").unwrap();
    }
    let config = dir.join("auth.toml");
    std::fs::write(
        &config,
        format!(
            "backoff_base = \"20ms\"\nbackoff_cap = \"200ms\"\n\n[auth]\ntoken_url = \"{}\"\nclient_id = \"{client_id}\"\nrefresh_token_file = \"{}\"\n",
            sim.token_url("contoso.onmicrosoft.com"),
            refresh_file.display()
        ),
    )
    .unwrap();
    (config, refresh_file)
}

/// `bulkpatch run` against the simulator with `[auth]` credentials from `config` (no BULKPATCH_TOKEN).
pub fn run_with_config(
    sim: &Simulator,
    input: &Path,
    out: &Path,
    config: &Path,
    extra: &[&str],
) -> Command {
    let mut args = vec!["--config", config.to_str().unwrap()];
    args.extend_from_slice(extra);
    let mut cmd = run_against(sim, input, out, &args);
    cmd.env_remove("BULKPATCH_TOKEN");
    cmd
}

#[cfg(unix)]
pub fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// The passwordProfile.password of a recorded PATCH.
pub fn sent_password(r: &RecordedRequest) -> Option<String> {
    r.body_json()?["passwordProfile"]["password"]
        .as_str()
        .map(String::from)
}

/// Sends a signal (`INT`, `TERM`, `KILL`) to a child process.
pub fn send_signal(child: &std::process::Child, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
}

/// Waits (off the async runtime) for a spawned child and collects its output.
pub async fn wait_child(child: std::process::Child) -> Ran {
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().expect("wait"))
        .await
        .expect("join");
    Ran::from(out)
}

/// Waits, polling and bounded, until the simulator has received `n` requests.
pub async fn until_received(sim: &Simulator, n: u64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while sim.stats().received < n {
        assert!(
            std::time::Instant::now() < deadline,
            "the simulator never received {n} requests"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

/// Like `until_received`, but also returns when the child has exited first.
pub async fn until_received_or_exit(sim: &Simulator, n: u64, child: &mut std::process::Child) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while sim.stats().received < n && child.try_wait().expect("try_wait").is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "stuck before {n} requests"
        );
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
}
