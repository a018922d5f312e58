//! The HTTP floor: bulkpatch's own HTTP client sending its PATCH requests with no per-row work, a benchmark baseline.
//!
//! scripts/bench.sh (scenario vs-oha) runs it between oha and bulkpatch to show how much of
//! the gap between them is the HTTP stack and how much is bulkpatch's own per-row work.
//!
//! usage: http_floor URLS_FILE CONCURRENCY TOKEN
//!
//! Reads one URL per line from URLS_FILE, builds the HTTP client bulkpatch builds
//! (`bulkpatch::send::http_client::client`), and runs CONCURRENCY tasks that each take the next URL and send
//! `PATCH url` with the same headers and body bulkpatch sends. Prints one line,
//! `requests=N seconds=S per_second=R failed=F`, and exits 1 if any request failed
//! (a non-2xx status or a transport error), 2 on a usage or setup error.

use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context};
use reqwest::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use uuid::Uuid;

const BODY: &str = r#"{"usageLocation":"DE","attributes":{"objectType":"CustomerUser"}}"#;

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(0) => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("http_floor: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Sends every request and prints the result line; returns how many failed.
async fn run() -> anyhow::Result<usize> {
    let args: Vec<String> = std::env::args().collect();
    let [_, urls_file, concurrency, token] = args.as_slice() else {
        bail!("usage: http_floor URLS_FILE CONCURRENCY TOKEN");
    };
    let concurrency: usize = concurrency
        .parse()
        .ok()
        .filter(|&c| c > 0)
        .with_context(|| format!("CONCURRENCY must be a positive integer, not {concurrency:?}"))?;
    // The file stays in memory as read (leaked: the tasks need it for the whole run), one
    // `&str` per URL into it, rather than a `String` per URL.
    let text: &'static str = std::fs::read_to_string(urls_file)
        .with_context(|| format!("cannot read {urls_file}"))?
        .leak();
    let urls: Arc<Vec<&'static str>> = Arc::new(
        text.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect(),
    );
    if urls.is_empty() {
        bail!("no URLs in {urls_file}");
    }
    let mut auth = HeaderValue::from_str(&format!("Bearer {token}"))
        .context("the token is not a valid header value")?;
    auth.set_sensitive(true);

    // bulkpatch's own HTTP client, with its default timeouts.
    let defaults = bulkpatch::Settings::with_defaults("-");
    let http = bulkpatch::send::http_client::client(&bulkpatch::send::http_client::HttpSettings {
        connect_timeout: defaults.connect_timeout,
        timeout: defaults.timeout,
        pool_size: concurrency,
        ca: None,
    })?;

    let next = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (http, urls, next, failed, auth) = (
                http.clone(),
                Arc::clone(&urls),
                Arc::clone(&next),
                Arc::clone(&failed),
                auth.clone(),
            );
            tokio::spawn(async move {
                while let Some(&url) = urls.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let request = http
                        .patch(url)
                        .header(AUTHORIZATION, auth.clone())
                        .header(ACCEPT, "application/json")
                        .header(CONTENT_TYPE, "application/json")
                        .header("MS-RequestId", Uuid::new_v4().to_string())
                        .header("MS-CorrelationId", Uuid::new_v4().to_string())
                        .body(BODY);
                    let ok = match request.send().await {
                        Ok(resp) => {
                            let success = resp.status().is_success();
                            resp.bytes().await.is_ok() && success
                        }
                        Err(_) => false,
                    };
                    if !ok {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.context("a worker task panicked")?;
    }
    let seconds = start.elapsed().as_secs_f64();

    let requests = urls.len();
    let failed = failed.load(Ordering::Relaxed);
    println!(
        "requests={requests} seconds={seconds:.3} per_second={:.0} failed={failed}",
        requests as f64 / seconds
    );
    Ok(failed)
}
