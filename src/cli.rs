//! The command line: clap definitions, help texts with examples, and their conversion to the plain values the core takes.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::settings::RunArgs;
#[cfg(feature = "simulator")]
use crate::simulator::command::{DemoCmd, SimulateCmd, DEMO_EXAMPLES, SIMULATE_EXAMPLES};

const MAIN_EXAMPLES: &str = "\
Examples:
  bulkpatch demo                                   # try it against the built-in simulator
  BULKPATCH_TOKEN=... bulkpatch run users.csv      # send the updates in users.csv
  bulkpatch run users.csv --dry-run                # validate and plan; sends nothing
  bulkpatch simulate --port 8400                   # a local Partner Center look-alike

Exit codes: 0 all rows updated (or planned); 1 some rows failed or were invalid;
2 usage, config, header or fatal error (including a refused token); 130 interrupted.";

const RUN_EXAMPLES: &str = "\
Input: a CSV with a header row. Columns (names are matched ignoring case, spaces, '-' and '_'):
  customer_id (customer_tenant_id, tenant_id)  user_id (id, object_id)
  usage_location  display_name  first_name (given_name)  last_name (surname)
  user_principal_name (upn)
An empty cell leaves that field unchanged. Delimiter ',', ';' or tab is detected.

The access token comes from BULKPATCH_TOKEN or --token-file; there is no flag for the token itself.

Examples:
  export BULKPATCH_TOKEN=\"$(cat ~/.config/bulkpatch/token)\"
  bulkpatch run migration.csv --rate 300/min --concurrency 8
  bulkpatch run migration.csv --dry-run --out plan.csv
  bulkpatch run users.csv --customer-id 0a6b1a8e-3c1f-4f0e-9a8e-1b2c3d4e5f60 --token-file token.txt
  bulkpatch run users.csv --config bulkpatch.toml --summary-json summary.json -q
  bulkpatch run migration.csv --resume            # continue after a crash or Ctrl-C

Exit codes: 0 all rows updated (or planned); 1 some rows failed or were invalid;
2 usage, config, header or fatal error (including a refused token); 130 interrupted.";

const AUDIT_EXAMPLES: &str = "\
Outcomes per row: unchanged, would_change (each field: current -> desired), not_found, forbidden,
invalid, failed. Passwords cannot be read back: they show as a change without any value.
The audit file has one line per field a row sets: line,customer_id,user_id,outcome,field,current,desired,...

Examples:
  bulkpatch audit migration.csv --report audit.html
  bulkpatch audit migration.csv --out before-change-board.csv --rate 300/min

Exit codes: 0 every row unchanged or would change; 1 some rows not found, forbidden, invalid or
failed; 2 usage, config, header or fatal error; 130 interrupted.";

const REPORT_EXAMPLES: &str = "\
Examples:
  bulkpatch report migration.results.csv --html report.html
  bulkpatch report migration.audit.csv --markdown ticket.md --html audit.html";

/// Apply bulk user updates through the Microsoft Partner Center REST API.
///
/// Reads a CSV of users, sends one PATCH per row at a steady rate with retries, and writes a
/// results file with each row's outcome.
#[derive(Debug, Parser)]
#[command(name = "bulkpatch", version, about, long_about, after_help = MAIN_EXAMPLES)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// More log output (-v debug, -vv trace). RUST_LOG, when set, overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Less output: warnings and errors only, no progress display.
    #[arg(short, long, action = clap::ArgAction::Count, global = true, conflicts_with = "verbose")]
    pub quiet: u8,
    /// Log format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Send the updates in a CSV file (or plan them with --dry-run).
    #[command(after_help = RUN_EXAMPLES)]
    Run(RunCmd),
    /// Read each user's live values and write what a run would change; sends no write.
    #[command(after_help = AUDIT_EXAMPLES)]
    Audit(AuditCmd),
    /// Render a report (HTML and/or Markdown) from a results file or an audit file.
    #[command(after_help = REPORT_EXAMPLES)]
    Report(ReportCmd),
    /// Run the built-in Partner Center simulator in the foreground.
    #[cfg(feature = "simulator")]
    #[command(after_help = SIMULATE_EXAMPLES)]
    Simulate(SimulateCmd),
    /// Run the sample file against the built-in simulator, to see the tool work.
    #[cfg(feature = "simulator")]
    #[command(after_help = DEMO_EXAMPLES)]
    Demo(DemoCmd),
}

/// Options `run` and `audit` share: the input, the API, pacing, credentials, output.
#[derive(Debug, Args)]
pub struct CommonArgs {
    /// The input CSV file.
    pub input: PathBuf,
    /// A TOML config file (see config.example.toml). Command-line values win over it.
    #[arg(long, env = "BULKPATCH_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Partner Center API root [default: https://api.partnercenter.microsoft.com]
    #[arg(long, env = "BULKPATCH_BASE_URL", value_name = "URL")]
    pub base_url: Option<String>,
    /// Results file [default: <input-stem>.results.csv (audit: .audit.csv) beside the input]
    #[arg(short, long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Overwrite an existing results file.
    #[arg(long)]
    pub force: bool,
    /// Request rate ceiling: N/s, N/min or `unlimited` [default: 8/s]
    #[arg(long, env = "BULKPATCH_RATE", value_name = "RATE")]
    pub rate: Option<String>,
    /// A rate limit per customer tenant as well, N/s or N/min (Partner Center throttles per
    /// partner+customer too; about 500/min per customer)
    #[arg(long, env = "BULKPATCH_PER_CUSTOMER_RATE", value_name = "RATE")]
    pub per_customer_rate: Option<String>,
    /// Requests in flight at once [default: 8]
    #[arg(short, long, env = "BULKPATCH_CONCURRENCY", value_name = "N")]
    pub concurrency: Option<usize>,
    /// Attempts per row, the first included [default: 6]
    #[arg(long, env = "BULKPATCH_MAX_ATTEMPTS", value_name = "N")]
    pub max_attempts: Option<u32>,
    /// Time allowed for one request, such as 30s or 1500ms [default: 30s]
    #[arg(long, env = "BULKPATCH_TIMEOUT", value_name = "DURATION")]
    pub timeout: Option<String>,
    /// Customer tenant id for every row, when the CSV has no customer column.
    #[arg(long, env = "BULKPATCH_CUSTOMER_ID", value_name = "GUID")]
    pub customer_id: Option<String>,
    /// Skip columns the tool does not know instead of stopping.
    #[arg(long)]
    pub ignore_unknown_columns: bool,
    /// Field delimiter: `,` `;` `tab` or `|` [default: detected from the header]
    #[arg(long, value_name = "CHAR")]
    pub delimiter: Option<String>,
    /// Also write the summary as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub summary_json: Option<PathBuf>,
    /// Read the access token from this file (first line) instead of BULKPATCH_TOKEN.
    #[arg(long, env = "BULKPATCH_TOKEN_FILE", value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Trust the root certificates (PEM) in this file too, besides the operating system's
    /// (a TLS-inspecting proxy's root, say).
    #[arg(long, env = "BULKPATCH_CA_FILE", value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// Also write a self-contained HTML report to this file at the end.
    #[arg(long, value_name = "FILE.html")]
    pub report: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RunCmd {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Validate and write the planned requests to the results file; send nothing (no token needed).
    #[arg(short = 'n', long)]
    pub dry_run: bool,
    /// Read each user first and skip the rows already as desired (recorded `unchanged`).
    #[arg(long, conflicts_with = "dry_run")]
    pub skip_unchanged: bool,
    /// Give every row a new random password (from the OS CSPRNG); needs --secrets-out.
    #[arg(long)]
    pub generate_passwords: bool,
    /// Length of generated passwords, 8 to 256 [default: 16]
    #[arg(long, value_name = "N", requires = "generate_passwords")]
    pub password_length: Option<usize>,
    /// New file (mode 0600) that receives each generated password before its request is sent.
    #[arg(long, value_name = "FILE")]
    pub secrets_out: Option<PathBuf>,
    /// Continue an interrupted run: skip rows the results file already has as done, send the
    /// rest, and add their records to the same results file.
    #[arg(long)]
    pub resume: bool,
    /// With --resume, also send again rows that failed for good (404, 403, ...), not only those
    /// that failed transiently.
    #[arg(long, requires = "resume")]
    pub retry_failed: bool,
    /// Only rewrite the results file with one record per input row, in line order; send nothing.
    #[arg(long, conflicts_with_all = ["resume", "dry_run"])]
    pub compact: bool,
    /// After a first Ctrl-C, how long requests in flight may take before the run stops at once [default: 30s]
    #[arg(long, value_name = "DURATION")]
    pub grace_period: Option<String>,
}

impl CommonArgs {
    /// The plain values the config resolution takes.
    pub fn into_args(self, quiet: bool) -> RunArgs {
        RunArgs {
            input: self.input,
            config: self.config,
            base_url: self.base_url,
            out: self.out,
            force: self.force,
            rate: self.rate,
            per_customer_rate: self.per_customer_rate,
            concurrency: self.concurrency,
            max_attempts: self.max_attempts,
            timeout: self.timeout,
            customer_id: self.customer_id,
            ignore_unknown_columns: self.ignore_unknown_columns,
            delimiter: self.delimiter,
            summary_json: self.summary_json,
            token_file: self.token_file,
            ca_file: self.ca_file,
            report: self.report,
            quiet,
            ..RunArgs::default()
        }
    }
}

impl RunCmd {
    /// The plain values the config resolution takes.
    pub fn into_args(self, quiet: bool) -> RunArgs {
        RunArgs {
            dry_run: self.dry_run,
            skip_unchanged: self.skip_unchanged,
            generate_passwords: self.generate_passwords,
            password_length: self.password_length,
            secrets_out: self.secrets_out,
            resume: self.resume,
            retry_failed: self.retry_failed,
            compact: self.compact,
            grace_period: self.grace_period,
            ..self.common.into_args(quiet)
        }
    }
}

#[derive(Debug, Args)]
pub struct AuditCmd {
    #[command(flatten)]
    pub common: CommonArgs,
}

impl AuditCmd {
    /// The plain values the config resolution takes.
    pub fn into_args(self, quiet: bool) -> RunArgs {
        RunArgs {
            audit: true,
            ..self.common.into_args(quiet)
        }
    }
}

#[derive(Debug, Args)]
pub struct ReportCmd {
    /// A results file (from `run`) or an audit file (from `audit`).
    pub results: PathBuf,
    /// Write the HTML report here.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Write the Markdown report here.
    #[arg(long, value_name = "FILE")]
    pub markdown: Option<PathBuf>,
}
