//! Shows progress: live counters, an indicatif bar on a terminal or a log line every few seconds elsewhere, and a log writer that never breaks the bar.

use std::io::{IsTerminal, Write};
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio_util::sync::CancellationToken;

use crate::core::run_state::Counters;
use crate::core::run_state::Outcome;
use crate::core::run_state::PaceNow;

/// Rows per second done by this run (rows an earlier run finished, skipped on a resume, are
/// not counted), and the seconds left for the rest at that rate, if it can be told.
pub fn rate_and_eta(done: u64, skipped: u64, total: u64, secs: f64) -> (f64, Option<f64>) {
    let rate = done.saturating_sub(skipped) as f64 / secs.max(0.001);
    let left = total.saturating_sub(done);
    let eta = (rate > 0.0 && left > 0).then(|| (left as f64 / rate).round());
    (rate, eta)
}

fn counters_done_reader(counters: &Arc<Counters>) -> impl Fn() -> u64 + Clone + Send + 'static {
    let counters = counters.clone();
    move || counters.done.load(Ordering::Relaxed)
}

/// Set when every stderr line must be a log line (`--log-format json`): no bar even on a terminal.
static LOG_LINES_ONLY: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Shows progress as periodic log lines only, never as a bar (for JSON logs).
pub fn log_lines_only() {
    LOG_LINES_ONLY.store(true, Ordering::Relaxed);
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
        let text = crate::core::redact::redact(&text);
        let text = match self.colours {
            true => text,
            false => {
                std::borrow::Cow::Owned(crate::core::redact::escape_controls(&text).into_owned())
            }
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

/// The counts part of a progress line ("updated 12 · failed 1 · pace 7.5/s").
type CountsLine = Arc<dyn Fn() -> String + Send + Sync>;

/// Reads the pace the workers are held to now, in requests per second.
pub type PaceReading = Arc<dyn Fn() -> PaceNow + Send + Sync>;

impl Progress {
    /// Starts the bar (stderr is a terminal) or periodic info lines (it is not); nothing when
    /// `show` is false. `pace` reads the adaptive pace (None until the workers start, or when
    /// the pace is at its ceiling).
    pub fn start(
        total: u64,
        counters: Arc<Counters>,
        pace: PaceReading,
        show: bool,
        interval: Duration,
    ) -> Progress {
        let done = CancellationToken::new();
        if !show {
            return Progress {
                bar: None,
                done,
                ticker: None,
            };
        }
        let line: CountsLine = {
            let counters = counters.clone();
            Arc::new(move || {
                let mut line = counts_line(&counters);
                pace_and_customers(&mut line, &counters, &pace());
                line
            })
        };
        if std::io::stderr().is_terminal() && !LOG_LINES_ONLY.load(Ordering::Relaxed) {
            Progress::bar(total, counters, line, done)
        } else {
            Progress::log_lines(total, counters, line, interval, done)
        }
    }

    /// A bar on the terminal, redrawn five times a second.
    fn bar(
        total: u64,
        counters: Arc<Counters>,
        line: CountsLine,
        done: CancellationToken,
    ) -> Progress {
        let counters_done = counters_done_reader(&counters);
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} rows · {rate} · {msg}",
            )
            .expect("a valid template")
            .with_key(
                "rate",
                move |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                    let (rate, eta) = rate_and_eta(
                        state.pos(),
                        counters.skipped.load(Ordering::Relaxed),
                        state.len().unwrap_or(0),
                        state.elapsed().as_secs_f64(),
                    );
                    let eta = eta.map_or_else(|| "-".into(), |e| format!("{e}s"));
                    let _ = write!(w, "{rate:.1} rows/s · ETA {eta}");
                },
            )
            .progress_chars("=> "),
        );
        if let Ok(mut active) = ACTIVE_BAR.write() {
            *active = Some(bar.clone());
        }
        let ticker = {
            let (bar, done) = (bar.clone(), done.clone());
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
    }

    /// An info line every `interval` (no terminal: cron, a pipe, a log file).
    fn log_lines(
        total: u64,
        counters: Arc<Counters>,
        line: CountsLine,
        interval: Duration,
        done: CancellationToken,
    ) -> Progress {
        let counters_done = counters_done_reader(&counters);
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
                    let skipped = counters.skipped.load(Ordering::Relaxed);
                    let (rate, eta) =
                        rate_and_eta(n, skipped, total, started.elapsed().as_secs_f64());
                    let eta = eta.map_or_else(|| "-".into(), |e| format!("{e}s"));
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

/// "updated 12 · failed 1 · 429s 3": the counts so far (updated, failed and invalid always).
/// Appends the adapted pace, customers done of all, and the customers throttled on their own
/// (the slowest first) to a progress line.
fn pace_and_customers(line: &mut String, c: &Counters, pace: &PaceNow) {
    use std::fmt::Write as _;
    if let Some(rate) = pace.pool {
        let _ = write!(line, " · pace {rate:.1}/s");
    }
    if let Some((done, total)) = c.customers_done().filter(|(_, total)| *total > 1) {
        let _ = write!(line, " · customers {done}/{total} done");
    }
    if let Some((customer, rate)) = pace.slowest.first() {
        let id = customer.to_string();
        let _ = write!(
            line,
            " · {} throttled alone, slowest {}… {rate:.1}/s",
            pace.customers_paced,
            &id[..8]
        );
    }
}

fn counts_line(c: &Counters) -> String {
    let always: &[Outcome] = if c.is_audit() {
        &[
            Outcome::WouldChange,
            Outcome::Unchanged,
            Outcome::Failed,
            Outcome::Invalid,
        ]
    } else {
        &[Outcome::Updated, Outcome::Failed, Outcome::Invalid]
    };
    let mut parts: Vec<String> = Outcome::ALL
        .iter()
        .filter(|o| always.contains(o) || c.count(**o) > 0)
        .map(|o| format!("{} {}", o.as_str().replace('_', " "), c.count(*o)))
        .collect();
    let skipped = c.skipped.load(Ordering::Relaxed);
    if skipped > 0 {
        parts.push(format!("already done {skipped}"));
    }
    let throttled = c.throttled.load(Ordering::Relaxed);
    if throttled > 0 {
        parts.push(format!("429s {throttled}"));
    }
    parts.join(" · ")
}

#[cfg(test)]
mod tests {
    use super::rate_and_eta;

    #[test]
    fn rate_after_a_resume_counts_only_this_runs_rows() {
        // 900 rows skipped at once, 10 done in 5 s: 2 rows/s, 90 left take 45 s.
        let (rate, eta) = rate_and_eta(910, 900, 1000, 5.0);
        assert!((rate - 2.0).abs() < 1e-9, "{rate}");
        assert_eq!(eta, Some(45.0));
        assert_eq!(rate_and_eta(900, 900, 1000, 1.0), (0.0, None));
        assert_eq!(rate_and_eta(10, 0, 10, 2.0), (5.0, None));
    }

    #[test]
    fn an_audits_line_shows_audit_outcomes() {
        let counters = super::Counters::for_audit();
        counters.record(super::Outcome::WouldChange);
        counters.record(super::Outcome::NotFound);
        let line = super::counts_line(&counters);
        assert_eq!(
            line,
            "unchanged 0 · would change 1 · not found 1 · failed 0 · invalid 0"
        );
        assert!(super::counts_line(&super::Counters::default()).starts_with("updated 0"));
    }
}
