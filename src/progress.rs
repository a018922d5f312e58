//! Shows progress: live counters, an indicatif bar on a terminal or a log line every few seconds elsewhere, and a log writer that never breaks the bar.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio_util::sync::CancellationToken;

use crate::results::Outcome;

/// Live counts shared by the workers, the results writer and the progress display.
#[derive(Debug, Default)]
pub struct Counters {
    pub done: AtomicU64,
    /// Rows recorded, by outcome (indexed like `Outcome::ALL`).
    outcomes: [AtomicU64; Outcome::ALL.len()],
    /// Rows an earlier run already finished (a resume).
    pub skipped: AtomicU64,
    /// Requests sent (all attempts).
    pub attempts: AtomicU64,
    /// Requests answered 429.
    pub throttled: AtomicU64,
}

impl Counters {
    /// Counts a recorded row.
    pub fn record(&self, outcome: Outcome) {
        self.done.fetch_add(1, Ordering::Relaxed);
        self.outcomes[outcome.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// Rows recorded with `outcome` so far.
    pub fn count(&self, outcome: Outcome) -> u64 {
        self.outcomes[outcome.index()].load(Ordering::Relaxed)
    }

    /// "updated 12 · failed 1 · 429s 3": the counts so far (updated, failed and invalid always).
    fn line(&self) -> String {
        let always = [Outcome::Updated, Outcome::Failed, Outcome::Invalid];
        let mut parts: Vec<String> = Outcome::ALL
            .iter()
            .filter(|o| always.contains(o) || self.count(**o) > 0)
            .map(|o| format!("{} {}", o.as_str().replace('_', " "), self.count(*o)))
            .collect();
        let skipped = self.skipped.load(Ordering::Relaxed);
        if skipped > 0 {
            parts.push(format!("already done {skipped}"));
        }
        let throttled = self.throttled.load(Ordering::Relaxed);
        if throttled > 0 {
            parts.push(format!("429s {throttled}"));
        }
        parts.join(" · ")
    }
}

fn counters_done_reader(counters: &Arc<Counters>) -> impl Fn() -> u64 + Clone + Send + 'static {
    let counters = counters.clone();
    move || counters.done.load(Ordering::Relaxed)
}

/// The bar currently on screen, if any: the log writer suspends it while printing.
static ACTIVE_BAR: RwLock<Option<ProgressBar>> = RwLock::new(None);

/// A `tracing` writer for stderr that hides the progress bar while a log line is printed.
/// Every line passes the redaction point; control characters are shown escaped, except when
/// `colours` is on: then tracing's own colour codes pass, and the data in them was escaped
/// field by field before formatting (see `main.rs`), so only tracing's codes remain.
#[derive(Clone, Copy, Debug, Default)]
pub struct LogWriter {
    colours: bool,
}

impl LogWriter {
    pub fn new(colours: bool) -> LogWriter {
        LogWriter { colours }
    }
}

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        let text = crate::redact::redact(&text);
        let text = match self.colours {
            true => text,
            false => std::borrow::Cow::Owned(crate::redact::escape_controls(&text).into_owned()),
        };
        let bar = ACTIVE_BAR.read().ok().and_then(|b| b.clone());
        match bar {
            Some(bar) => bar.suspend(|| std::io::stderr().write_all(text.as_bytes()))?,
            None => std::io::stderr().write_all(text.as_bytes())?,
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LogWriter;
    fn make_writer(&'a self) -> LogWriter {
        *self
    }
}

/// The progress display of one run.
pub struct Progress {
    bar: Option<ProgressBar>,
    done: CancellationToken,
    ticker: Option<tokio::task::JoinHandle<()>>,
}

impl Progress {
    /// Starts the bar (stderr is a terminal) or periodic info lines (it is not); nothing when
    /// `show` is false. `pace` gives the adaptive rate controller once the workers start.
    pub fn start(
        total: u64,
        counters: Arc<Counters>,
        pace: Arc<std::sync::Mutex<Option<Arc<crate::rate::Controller>>>>,
        show: bool,
        interval: Duration,
    ) -> Progress {
        let counters_done = counters_done_reader(&counters);
        let line = move || {
            let pace = pace
                .lock()
                .ok()
                .and_then(|c| c.as_ref().and_then(|c| c.rate()));
            match pace {
                Some(r) => format!("{} · pace {r:.1}/s", counters.line()),
                None => counters.line(),
            }
        };
        let done = CancellationToken::new();
        if !show {
            return Progress {
                bar: None,
                done,
                ticker: None,
            };
        }
        if std::io::stderr().is_terminal() {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} rows · {rate} · ETA {eta} · {msg}",
                )
                .expect("a valid template")
                .with_key(
                    "rate",
                    |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                        let _ = write!(w, "{:.1} rows/s", state.per_sec());
                    },
                )
                .progress_chars("=> "),
            );
            if let Ok(mut active) = ACTIVE_BAR.write() {
                *active = Some(bar.clone());
            }
            let ticker = {
                let bar = bar.clone();
                let done = done.clone();
                tokio::spawn(async move {
                    let mut tick = tokio::time::interval(Duration::from_millis(200));
                    loop {
                        tokio::select! {
                            _ = tick.tick() => {}
                            _ = done.cancelled() => break,
                        }
                        bar.set_position(counters_done());
                        bar.set_message(line());
                    }
                    bar.set_position(counters_done());
                    bar.set_message(line());
                })
            };
            Progress {
                bar: Some(bar),
                done,
                ticker: Some(ticker),
            }
        } else {
            let ticker = {
                let done = done.clone();
                tokio::spawn(async move {
                    let started = Instant::now();
                    let mut tick = tokio::time::interval(interval);
                    tick.tick().await;
                    loop {
                        tokio::select! {
                            _ = tick.tick() => {}
                            _ = done.cancelled() => break,
                        }
                        let n = counters_done();
                        let secs = started.elapsed().as_secs_f64();
                        let rate = n as f64 / secs.max(0.001);
                        let eta = if rate > 0.0 && total > n {
                            format!("{}s", ((total - n) as f64 / rate).round())
                        } else {
                            "-".into()
                        };
                        tracing::info!(
                            "progress: {n}/{total} rows, {rate:.1} rows/s, ETA {eta}, {}",
                            line()
                        );
                    }
                })
            };
            Progress {
                bar: None,
                done,
                ticker: Some(ticker),
            }
        }
    }

    /// Stops the display and clears the bar, so the summary prints cleanly.
    pub async fn finish(self) {
        self.done.cancel();
        if let Some(t) = self.ticker {
            let _ = t.await;
        }
        if let Some(bar) = self.bar {
            if let Ok(mut active) = ACTIVE_BAR.write() {
                *active = None;
            }
            bar.finish_and_clear();
        }
    }
}
