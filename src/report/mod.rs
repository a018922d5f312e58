//! Renders the reports a person reads, from a results file or an audit file: a self-contained HTML page (inline CSS and SVG charts) and Markdown for a ticket.

pub mod customers;
pub mod markdown;
pub mod plan;

use crate::targets::Target;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use charts_rs::{BarChart, Series};
use serde::Serialize;

use crate::output::reader::{Header, Layout, ResumeError, Row, RowReader};

use crate::core::run_state::Outcome;
use crate::output::resume::Meta;

/// Example rows kept per failure group.
const EXAMPLES_PER_GROUP: usize = 5;
/// Distinct (field, current, desired) changes counted before the rest go under "other values".
const MAX_TRANSITIONS: usize = 20_000;
/// Transitions and already-set values shown per field.
const SHOWN_PER_FIELD: usize = 15;

/// A fatal problem rendering a report.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("cannot read {path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error("{path} is neither a results file nor an audit file of bulkpatch (its header does not match)")]
    NotAResultsFile { path: PathBuf },
    #[error("cannot write the report to {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot render the report: {0}")]
    Template(String),
    #[error(transparent)]
    Paths(#[from] crate::output::paths::PathError),
}

/// Which kind of file the report is made from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Run,
    Audit,
}

/// Plain-English meaning of a group of problem rows: by outcome, then by the target's
/// explanation of the error code or HTTP status.
pub fn explain(
    outcome: Outcome,
    code: Option<&str>,
    status: Option<u16>,
    target: &dyn Target,
) -> &'static str {
    match outcome {
        Outcome::Invalid => "The row failed validation and was not sent: each line's message says why.",
        Outcome::Interrupted => "The run was stopped while the request was in flight: it may or may not have been applied; a resume sends it again.",
        _ => target.explain(code, status),
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Card {
    pub label: String,
    pub value: u64,
    pub class: &'static str,
}

#[derive(Clone, Debug, Serialize)]
pub struct Example {
    pub line: String,
    pub customer_id: String,
    pub user_id: String,
    pub message: String,
    /// The row's context (empty in a file from before the context columns).
    pub user_principal_name: String,
    pub customer_domain: String,
    pub context: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct FailureGroup {
    pub outcome: String,
    pub http_status: String,
    pub error_code: String,
    pub explanation: &'static str,
    pub count: u64,
    pub examples: Vec<Example>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Transition {
    pub current: String,
    pub desired: String,
    pub count: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct FieldChanges {
    pub field: String,
    pub changing: u64,
    pub already: u64,
    pub transitions: Vec<Transition>,
    pub already_values: Vec<Transition>,
}

/// Everything a report shows.
#[derive(Clone, Debug, Serialize)]
pub struct ReportData {
    pub kind: Kind,
    /// What the report is: "Plan" (a dry run), "Audit plan" or "Run report".
    pub heading: &'static str,
    /// A dry run or an audit: the report shows the plan.
    pub is_plan: bool,
    pub title: String,
    /// The input file's SHA-256 and data rows, from the results file's `.meta` (empty when
    /// unknown).
    pub input_sha256: String,
    pub input_rows: String,
    pub plan: plan::Plan,
    pub input: String,
    pub results: String,
    pub generated_at: String,
    pub version: &'static str,
    pub run_id: String,
    pub rows: u64,
    pub cards: Vec<Card>,
    pub outcomes: Vec<(String, u64)>,
    pub failures: Vec<FailureGroup>,
    pub fields: Vec<FieldChanges>,
    pub attempts: u64,
    pub throttled: u64,
    pub first_finished: String,
    pub last_finished: String,
    pub outcome_chart: String,
    pub throughput_chart: String,
    pub latency_chart: String,
    /// Per customer: rows, updated, problems, 429s and pace (run reports show it).
    pub customers: customers::CustomerTable,
}

/// What a report counts while it reads a file, record by record.
#[derive(Default)]
struct Accumulator {
    outcomes: BTreeMap<usize, u64>,
    groups: BTreeMap<(usize, String, String), (u64, Vec<Example>)>,
    transitions: HashMap<(String, String, String), u64>,
    already: HashMap<(String, String), u64>,
    other_transitions: HashMap<String, u64>,
    finished: Vec<(u64, u32)>,
    latencies: [u64; LATENCY_BUCKETS.len() + 1],
    attempts: u64,
    throttled: u64,
    rows: u64,
    customers: customers::CustomerTally,
    plan: plan::PlanTally,
    /// The line of the record before: an audit row spans one record per field.
    last_line: String,
}

/// Upper bounds (ms) of the latency histogram's buckets; the last bucket is everything above.
const LATENCY_BUCKETS: [u64; 8] = [100, 250, 500, 1_000, 2_000, 5_000, 10_000, 30_000];

/// Where the columns a report shows are in the file (`None` when it has no such column).
struct Columns {
    line: Option<usize>,
    customer: Option<usize>,
    user: Option<usize>,
    status: Option<usize>,
    code: Option<usize>,
    message: Option<usize>,
    attempts: Option<usize>,
    elapsed: Option<usize>,
    finished: Option<usize>,
    throttled: Option<usize>,
    field: Option<usize>,
    current: Option<usize>,
    desired: Option<usize>,
    upn: Option<usize>,
    domain: Option<usize>,
    context: Option<usize>,
    body: Option<usize>,
}

impl Columns {
    fn of(header: &Header) -> Columns {
        Columns {
            line: header.at("line"),
            customer: header.at("customer_id"),
            user: header.at("user_id"),
            status: header.at("http_status"),
            code: header.at("error_code"),
            message: header.at("message"),
            attempts: header.at("attempts"),
            elapsed: header.at("elapsed_ms"),
            finished: header.at("finished_at"),
            throttled: header.at("throttled"),
            field: header.at("field"),
            current: header.at("current"),
            desired: header.at("desired"),
            upn: header.at("user_principal_name"),
            domain: header.at("customer_domain"),
            context: header.at("context"),
            body: header.at("body"),
        }
    }
}

/// Reads a results or audit file (streaming, through `output::reader`: a torn or malformed
/// record is left out as a resume leaves it out) into what the report shows.
/// `target` explains the error codes.
pub fn load(path: &Path, target: &dyn Target) -> Result<ReportData, RenderError> {
    let fail = |e: ResumeError| match e {
        ResumeError::NotResults { .. } => RenderError::NotAResultsFile {
            path: path.to_owned(),
        },
        ResumeError::Io { source, .. } => RenderError::Read {
            path: path.to_owned(),
            message: source.to_string(),
        },
        other => RenderError::Read {
            path: path.to_owned(),
            message: other.to_string(),
        },
    };
    let rows = RowReader::open(path).map_err(fail)?;
    let kind = match rows.header().layout {
        Layout::Results => Kind::Run,
        Layout::Audit => Kind::Audit,
    };
    let columns = Columns::of(rows.header());
    let mut acc = Accumulator::default();
    rows.for_each(|row| acc.add(kind, &columns, &row, target))
        .map_err(fail)?;
    Ok(finish(kind, path, acc, target))
}

impl Accumulator {
    /// Counts one record: an audit's field change, and the row once (an audit row spans one
    /// record per field).
    fn add(&mut self, kind: Kind, cols: &Columns, row: &Row<'_>, target: &dyn Target) {
        let line = row.cell(cols.line).to_string();
        if kind == Kind::Audit {
            self.add_change(cols, row);
            let (field, desired) = (row.cell(cols.field), row.cell(cols.desired));
            self.plan.add_audit_field(row.outcome, field, desired);
        }
        if kind == Kind::Audit && line == self.last_line {
            return;
        }
        self.last_line = line.clone();
        self.rows += 1;
        *self.outcomes.entry(row.outcome.index()).or_default() += 1;
        // Crafted values saturate: a sum never overflows.
        self.attempts = self
            .attempts
            .saturating_add(row.count(cols.attempts, u64::MAX));
        let throttled = row.count(cols.throttled, u32::MAX.into()) as u32;
        self.throttled = self.throttled.saturating_add(u64::from(throttled));
        self.add_timing(cols, row, throttled);
        self.customers.add(
            row.cell(cols.customer),
            row.outcome,
            throttled.into(),
            row.time(cols.finished),
        );
        self.customers
            .name(row.cell(cols.customer), &redacted(row.cell(cols.domain)));
        let listed = || plan::InvalidRow {
            line: line.clone(),
            customer_id: row.cell(cols.customer).to_string(),
            user_id: row.cell(cols.user).to_string(),
            reason: row.cell(cols.message).to_string(),
        };
        self.plan
            .add_row(row.outcome, row.cell(cols.body), target, listed);
        if row.outcome.is_problem() {
            self.add_problem(cols, row, line);
        }
    }

    /// An audit record's field: a change (current to desired) or a value already as desired.
    fn add_change(&mut self, cols: &Columns, row: &Row<'_>) {
        let field = row.cell(cols.field).to_string();
        if field.is_empty() {
            return;
        }
        let (current, desired) = (row.cell(cols.current), row.cell(cols.desired));
        if row.outcome == Outcome::Unchanged {
            *self
                .already
                .entry((field, desired.to_string()))
                .or_default() += 1;
            return;
        }
        let key = (field, current.to_string(), desired.to_string());
        if self.transitions.len() < MAX_TRANSITIONS || self.transitions.contains_key(&key) {
            *self.transitions.entry(key).or_default() += 1;
        } else {
            *self.other_transitions.entry(key.0).or_default() += 1;
        }
    }

    /// When a sent row finished and how long it took, for the throughput and latency charts.
    fn add_timing(&mut self, cols: &Columns, row: &Row<'_>, throttled: u32) {
        let Some(at) = row.time(cols.finished) else {
            return;
        };
        if row.outcome == Outcome::Invalid || row.outcome == Outcome::Planned {
            return;
        }
        let ms = at
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        self.finished.push((ms, throttled));
        let elapsed = row.count(cols.elapsed, u64::MAX);
        let bucket = LATENCY_BUCKETS
            .iter()
            .position(|b| elapsed < *b)
            .unwrap_or(LATENCY_BUCKETS.len());
        self.latencies[bucket] += 1;
    }

    /// A problem row, grouped by outcome, HTTP status and error code, with a few examples.
    fn add_problem(&mut self, cols: &Columns, row: &Row<'_>, line: String) {
        let key = (
            row.outcome.index(),
            row.cell(cols.status).to_string(),
            row.cell(cols.code).to_string(),
        );
        let group = self.groups.entry(key).or_default();
        group.0 += 1;
        if group.1.len() < EXAMPLES_PER_GROUP {
            group.1.push(Example {
                line,
                customer_id: row.cell(cols.customer).to_string(),
                user_id: row.cell(cols.user).to_string(),
                // Redacted again: the file may come from an older version or be edited.
                message: crate::core::redact::redact(row.cell(cols.message)).into_owned(),
                user_principal_name: redacted(row.cell(cols.upn)),
                customer_domain: redacted(row.cell(cols.domain)),
                context: redacted(row.cell(cols.context)),
            });
        }
    }
}

/// A context cell as a report shows it: redacted, without a spreadsheet's formula prefix.
fn redacted(cell: &str) -> String {
    let cell = match cell.strip_prefix('\'') {
        Some(rest) if rest.starts_with(['=', '+', '-', '@', '\t', '\r']) => rest,
        _ => cell,
    };
    crate::core::redact::redact(cell).into_owned()
}

/// Turns what was counted into what the report shows.
fn finish(kind: Kind, path: &Path, mut acc: Accumulator, target: &dyn Target) -> ReportData {
    let meta = Meta::read(path);
    let input = meta
        .as_ref()
        .map(|m| m.fingerprint.input.display().to_string())
        .unwrap_or_default();
    let title_name = Path::new(&input)
        .file_name()
        .or(path.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let count = |o: Outcome| acc.outcomes.get(&o.index()).copied().unwrap_or(0);
    let outcomes: Vec<(String, u64)> = Outcome::ALL
        .iter()
        .filter(|o| count(**o) > 0)
        .map(|o| (o.as_str().to_string(), count(*o)))
        .collect();
    // A dry run's file holds only planned and invalid rows (an older version's `.meta` does
    // not say it was a dry run).
    let only_planned = count(Outcome::Planned) > 0
        && count(Outcome::Planned) + count(Outcome::Invalid) == acc.rows;
    let dry_run = only_planned || meta.as_ref().is_some_and(|m| m.fingerprint.dry_run);
    let (heading, is_plan) = match kind {
        Kind::Audit => ("Audit plan", true),
        Kind::Run if dry_run => ("Plan", true),
        Kind::Run => ("Run report", false),
    };
    let cards = cards(kind, is_plan, acc.rows, count);
    let fingerprint = meta.as_ref().map(|m| &m.fingerprint);
    let customers = std::mem::take(&mut acc.customers).table();
    let failures = failure_groups(std::mem::take(&mut acc.groups), target);
    let fields = field_changes(
        std::mem::take(&mut acc.transitions),
        std::mem::take(&mut acc.other_transitions),
        std::mem::take(&mut acc.already),
    );
    acc.finished.sort_unstable();
    let (first_finished, last_finished) = finished_between(&acc);
    let [outcome_chart, throughput_chart, latency_chart] = charts(kind, &outcomes, &acc);
    ReportData {
        kind,
        heading,
        is_plan,
        title: title_name,
        input_sha256: fingerprint
            .and_then(|f| f.input_sha256.clone())
            .unwrap_or_default(),
        input_rows: fingerprint.map(|f| f.rows.to_string()).unwrap_or_default(),
        plan: std::mem::take(&mut acc.plan).finish(),
        input,
        results: path.display().to_string(),
        generated_at: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
        version: env!("CARGO_PKG_VERSION"),
        run_id: meta
            .and_then(|m| m.run_id)
            .map(|u| u.to_string())
            .unwrap_or_default(),
        rows: acc.rows,
        cards,
        outcomes,
        failures,
        fields,
        attempts: acc.attempts,
        throttled: acc.throttled,
        first_finished,
        last_finished,
        outcome_chart,
        throughput_chart,
        latency_chart,
        customers,
    }
}

/// When the first and the last row finished (rows sorted by when they finished), as RFC 3339.
fn finished_between(acc: &Accumulator) -> (String, String) {
    let at = |f: Option<&(u64, _)>| {
        f.map(|f| {
            let when = SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(f.0);
            humantime::format_rfc3339_seconds(when).to_string()
        })
        .unwrap_or_default()
    };
    (at(acc.finished.first()), at(acc.finished.last()))
}

/// The outcomes chart, and for a run the throughput and latency charts (empty otherwise).
fn charts(kind: Kind, outcomes: &[(String, u64)], acc: &Accumulator) -> [String; 3] {
    let outcome_chart = bar_chart(
        "rows",
        outcomes.iter().map(|(k, _)| k.clone()).collect(),
        vec![("rows", outcomes.iter().map(|(_, n)| *n as f32).collect())],
    );
    if kind == Kind::Run && !acc.finished.is_empty() {
        let throughput = throughput(&acc.finished);
        [outcome_chart, throughput, latency(&acc.latencies)]
    } else {
        [outcome_chart, String::new(), String::new()]
    }
}

/// The number cards at the top: rows, then the outcomes that matter for `kind`.
fn cards(kind: Kind, plan: bool, rows: u64, count: impl Fn(Outcome) -> u64) -> Vec<Card> {
    let card = |label: &str, value: u64, class: &'static str| Card {
        label: label.to_string(),
        value,
        class,
    };
    let mut cards = vec![card("rows", rows, "neutral")];
    if kind == Kind::Run && plan {
        cards.push(card("planned", count(Outcome::Planned), "neutral"));
        cards.push(card("invalid", count(Outcome::Invalid), "bad"));
        return cards;
    }
    match kind {
        Kind::Run => {
            cards.push(card("updated", count(Outcome::Updated), "good"));
            if count(Outcome::Unchanged) > 0 {
                cards.push(card("unchanged", count(Outcome::Unchanged), "good"));
            }
            if count(Outcome::Planned) > 0 {
                cards.push(card("planned", count(Outcome::Planned), "neutral"));
            }
        }
        Kind::Audit => {
            cards.push(card("would change", count(Outcome::WouldChange), "neutral"));
            cards.push(card("unchanged", count(Outcome::Unchanged), "good"));
            cards.push(card(
                "not found / forbidden",
                count(Outcome::NotFound) + count(Outcome::Forbidden),
                "bad",
            ));
        }
    }
    cards.push(card("failed", count(Outcome::Failed), "bad"));
    cards.push(card("invalid", count(Outcome::Invalid), "bad"));
    cards
}

/// The problem groups, largest first, each with the target's explanation.
fn failure_groups(
    groups: BTreeMap<(usize, String, String), (u64, Vec<Example>)>,
    target: &dyn Target,
) -> Vec<FailureGroup> {
    let mut failures: Vec<FailureGroup> = groups
        .into_iter()
        .map(|((outcome, status, code), (n, examples))| FailureGroup {
            outcome: Outcome::ALL[outcome].as_str().to_string(),
            explanation: explain(
                Outcome::ALL[outcome],
                crate::core::text::error_code(&code).as_deref(),
                status.parse().ok(),
                target,
            ),
            http_status: status,
            error_code: code,
            count: n,
            examples,
        })
        .collect();
    failures.sort_by_key(|g| std::cmp::Reverse(g.count));
    failures
}

/// An audit's changes per field, in field order: the most frequent transitions and
/// already-set values of each.
fn field_changes(
    transitions: HashMap<(String, String, String), u64>,
    other_transitions: HashMap<String, u64>,
    already: HashMap<(String, String), u64>,
) -> Vec<FieldChanges> {
    let mut fields: BTreeMap<String, FieldChanges> = BTreeMap::new();
    let entry = |fields: &mut BTreeMap<String, FieldChanges>, f: &str| {
        let new = || FieldChanges {
            field: f.to_string(),
            changing: 0,
            already: 0,
            transitions: Vec::new(),
            already_values: Vec::new(),
        };
        fields.entry(f.to_string()).or_insert_with(new);
    };
    for ((field, current, desired), n) in transitions {
        entry(&mut fields, &field);
        let f = fields.get_mut(&field).expect("just inserted");
        f.changing += n;
        f.transitions.push(Transition {
            current,
            desired,
            count: n,
        });
    }
    for (field, n) in other_transitions {
        entry(&mut fields, &field);
        let f = fields.get_mut(&field).expect("just inserted");
        f.changing += n;
        f.transitions.push(Transition {
            current: "(other values)".into(),
            desired: String::new(),
            count: n,
        });
    }
    for ((field, value), n) in already {
        entry(&mut fields, &field);
        let f = fields.get_mut(&field).expect("just inserted");
        f.already += n;
        f.already_values.push(Transition {
            current: value.clone(),
            desired: value,
            count: n,
        });
    }
    for f in fields.values_mut() {
        f.transitions
            .sort_by(|a, b| b.count.cmp(&a.count).then(a.current.cmp(&b.current)));
        f.transitions.truncate(SHOWN_PER_FIELD);
        f.already_values
            .sort_by(|a, b| b.count.cmp(&a.count).then(a.current.cmp(&b.current)));
        f.already_values.truncate(SHOWN_PER_FIELD);
    }
    fields.into_values().collect()
}

/// A bar chart as inline SVG (labels are the tool's own words and numbers; charts-rs escapes text).
fn bar_chart(_unit: &str, labels: Vec<String>, series: Vec<(&str, Vec<f32>)>) -> String {
    if labels.is_empty() {
        return String::new();
    }
    let mut chart = BarChart::new(
        series
            .into_iter()
            .map(|(name, data)| Series::new(name.to_string(), data))
            .collect(),
        labels,
    );
    chart.base.width = 720.0;
    chart.base.height = 260.0;
    chart.base.font_family = "sans-serif".into();
    chart.svg().unwrap_or_default()
}

/// Rows finished per time bucket, with the 429s of those rows beside them.
fn throughput(finished: &[(u64, u32)]) -> String {
    let first = finished[0].0;
    let span_ms = finished[finished.len() - 1].0 - first + 1;
    let bucket_ms = [
        1_000u64, 5_000, 10_000, 30_000, 60_000, 300_000, 900_000, 3_600_000,
    ]
    .into_iter()
    .find(|b| span_ms / b < 40)
    .unwrap_or(86_400_000)
    // However far apart the times (a crafted year 9999), at most about 40 bars.
    .max(span_ms.div_ceil(40));
    let buckets = (span_ms / bucket_ms + 1) as usize;
    let mut rows = vec![0f32; buckets];
    let mut throttled = vec![0f32; buckets];
    for (ms, t) in finished {
        let i = ((ms - first) / bucket_ms) as usize;
        rows[i] += 1.0;
        throttled[i] += *t as f32;
    }
    let unit = if bucket_ms >= 60_000 {
        format!("{}m", bucket_ms / 60_000)
    } else {
        format!("{}s", bucket_ms / 1_000)
    };
    let labels = (0..buckets)
        .map(|i| {
            let secs = i as u64 * bucket_ms / 1000;
            format!(
                "+{}",
                humantime::format_duration(std::time::Duration::from_secs(secs))
            )
        })
        .collect();
    bar_chart(
        &unit,
        labels,
        vec![
            ("rows finished per bucket", rows),
            ("429 answers", throttled),
        ],
    )
}

fn latency(counts: &[u64]) -> String {
    let mut labels: Vec<String> = Vec::new();
    let mut lower = 0;
    for b in LATENCY_BUCKETS {
        labels.push(format!("{}-{} ms", lower, b));
        lower = b;
    }
    labels.push(format!("> {lower} ms"));
    bar_chart(
        "rows",
        labels,
        vec![("rows", counts.iter().map(|c| *c as f32).collect())],
    )
}

const HTML_TEMPLATE: &str = include_str!("report.html.j2");
const MARKDOWN_TEMPLATE: &str = include_str!("report.md.j2");

fn render(name: &str, template: &str, data: &ReportData) -> Result<String, RenderError> {
    let mut env = minijinja::Environment::new();
    // `.html` templates escape every value for HTML; in the Markdown one every value printed
    // passes `markdown::escape`, so data never renders as markup.
    if name.ends_with(".md") {
        env.set_formatter(|out, _state, value| {
            if !value.is_none() && !value.is_undefined() {
                out.write_str(&crate::report::markdown::escape(&value.to_string()))?;
            }
            Ok(())
        });
    }
    env.add_template(name, template)
        .map_err(|e| RenderError::Template(e.to_string()))?;
    env.get_template(name)
        .and_then(|t| t.render(data))
        .map_err(|e| RenderError::Template(e.to_string()))
}

/// The self-contained HTML report.
pub fn html(data: &ReportData) -> Result<String, RenderError> {
    render("report.html", HTML_TEMPLATE, data)
}

/// The Markdown report.
pub fn markdown(data: &ReportData) -> Result<String, RenderError> {
    render("report.md", MARKDOWN_TEMPLATE, data)
}

/// `bulkpatch report`: writes the HTML and Markdown reports of a results or audit file where
/// asked; with neither asked, returns the Markdown for the caller to print.
pub fn write_reports(
    results: &Path,
    html_out: Option<&Path>,
    markdown_out: Option<&Path>,
) -> Result<Option<String>, RenderError> {
    crate::output::paths::check_report(results, html_out, markdown_out)?;
    // The target that wrote the file (its sidecar names it) explains its error codes.
    let target = crate::output::resume::Meta::read(results)
        .and_then(|meta| crate::targets::choose(&meta.fingerprint.target))
        .unwrap_or_else(crate::targets::default_target);
    let data = load(results, &*target)?;
    let write = |path: &Path, text: String| {
        std::fs::write(path, text).map_err(|source| RenderError::Write {
            path: path.to_owned(),
            source,
        })
    };
    if let Some(p) = html_out {
        write(p, html(&data)?)?;
        tracing::info!("HTML report written to {}", p.display());
    }
    if let Some(p) = markdown_out {
        write(p, markdown(&data)?)?;
        tracing::info!("Markdown report written to {}", p.display());
    }
    if html_out.is_none() && markdown_out.is_none() {
        return Ok(Some(markdown(&data)?));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A results file as a killed run and an older version leave it: a record cut inside a
    /// quote in the middle (new records appended after it) and a torn last record.
    fn torn_results(dir: &Path) -> PathBuf {
        let record = |line: u64, outcome: &str, message: &str| {
            format!("{line},c,u,{outcome},400,,{message},2,5,,,2026-11-21T00:00:00.000Z,,{line:016x},0\n")
        };
        let mut text = crate::output::reader::COLUMNS[..15].join(",") + "\n";
        text += &record(2, "updated", "");
        text += "3,c,u,failed,502,,\"<html>Bad gateway, \"\"upstream\"\" said\n";
        for line in 3..=6 {
            text += &record(line, "updated", "\"a, \"\"quoted\"\" message\"");
        }
        text += record(7, "failed", "torn").trim_end();
        let path = dir.join("out.csv");
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn the_report_reads_a_results_file_as_a_resume_does() {
        let dir = tempfile::tempdir().unwrap();
        let path = torn_results(dir.path());
        let mut resumed = Vec::new();
        crate::output::reader::read(&path, 100, |_, e| resumed.push(e.line)).unwrap();
        assert_eq!(resumed, [2, 3, 4, 5, 6]);
        let data = load(&path, &*crate::targets::default_target()).unwrap();
        assert_eq!(
            data.rows,
            resumed.len() as u64,
            "the rows a resume finds finished"
        );
        assert_eq!(data.outcomes, [("updated".to_string(), 5)]);
        assert_eq!(data.attempts, 10);
        assert!(data.failures.is_empty(), "neither torn record is counted");
    }
}
