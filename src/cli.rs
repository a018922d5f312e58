//! The command line: clap definitions, help texts with examples, and their conversion to the plain values the core takes.
//! The flags of `run`, `audit`, `export` and `login` are made from the option table in `settings::options`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::settings::options::{with_options, CliValue};
use crate::settings::{CliOptions, RunArgs};
#[cfg(feature = "simulator")]
use crate::simulator::command::{DemoCmd, SimulateCmd, DEMO_EXAMPLES, SIMULATE_EXAMPLES};

const MAIN_EXAMPLES: &str = "\
Examples:
  bulkpatch demo                                   # try it against the built-in simulator
  bulkpatch login --tenant contoso.onmicrosoft.com --client-id <app id>   # sign in once (MFA)
  BULKPATCH_TOKEN=... bulkpatch run users.csv      # send the updates in users.csv
  bulkpatch run users.csv --dry-run                # validate and plan; sends nothing
  bulkpatch export --all-customers --out users.csv # every customer's users, to edit and run
  bulkpatch simulate --port 8400                   # a local Partner Center look-alike

Exit codes: 0 all rows updated (or planned); 1 some rows failed or were invalid;
2 usage, config, header or fatal error (including a refused token); 130 interrupted.";

const RUN_EXAMPLES: &str = "\
Input: a CSV with a header row. Columns (names are matched ignoring case, spaces, '-' and '_'):
  customer_id (customer_tenant_id, tenant_id)  user_id (id, object_id)
  usage_location  display_name  first_name (given_name)  last_name (surname)
  new_user_principal_name (new_upn: a rename)  password  force_change_password
With --target graph also: job_title department office_location company_name employee_id
  mobile_phone business_phones city state country postal_code street_address
  preferred_language account_enabled; a cell <clear> clears the field (sent as null).
Never sent, carried into the results as context: user_principal_name (upn), customer_domain,
and the columns named in --keep-columns. An Entra \"Download users\" export is read as it is.
An empty cell leaves that field unchanged. Delimiter ',', ';' or tab is detected.

The access token comes from --token-file, BULKPATCH_TOKEN, the config file, or the sign-in stored
by `bulkpatch login`; there is no flag for the token itself.

Examples:
  export BULKPATCH_TOKEN=\"$(cat ~/.config/bulkpatch/token)\"
  bulkpatch run migration.csv --rate 300/min --concurrency 8
  bulkpatch run migration.csv --dry-run --out plan.csv
  bulkpatch run users.csv --customer-id 0a6b1a8e-3c1f-4f0e-9a8e-1b2c3d4e5f60 --token-file token.txt
  bulkpatch run users.csv --config bulkpatch.toml --summary-json summary.json -q
  bulkpatch run migration.csv --resume            # continue after a crash or Ctrl-C
  bulkpatch run entra-users.csv --customer-id GUID --fields usage_location   # send only usageLocation

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

const LOGIN_EXAMPLES: &str = "\
The sign-in is stored in the system keyring when one answers, else in a private file (mode 0600)
<config dir>/bulkpatch/sign-in.json ($BULKPATCH_HOME/sign-in.json when BULKPATCH_HOME is set).
`run` and `audit` use it when no token is given otherwise.

Examples:
  bulkpatch login --tenant contoso.onmicrosoft.com --client-id 00000000-0000-0000-0000-000000000000
  bulkpatch login --device-code --config bulkpatch.toml   # [auth] tenant and client_id
  bulkpatch login --target graph --device-code --client-id 00000000-0000-0000-0000-000000000000
  bulkpatch status
  bulkpatch logout";

const EXPORT_EXAMPLES: &str = "\
Writes customer_id,customer_domain,user_id,user_principal_name,display_name,first_name,last_name,
usage_location: one row per user, each customer's users together. Edit it, then give it to `run`.
--out names the export file [default: users-export.csv]; an existing one is refused unless
--force (start again) or --resume (keep the customers it finished, list the others again).
The rate, concurrency, retries, timeouts and token are those of `run`.

Examples:
  bulkpatch export --all-customers --out users.csv
  bulkpatch export --customer contoso.onmicrosoft.com --customer 0a6b1a8e-3c1f-4f0e-9a8e-1b2c3d4e5f60
  bulkpatch export --customers-file customers.txt --out users.csv --resume

Exit codes: 0 every chosen customer exported; 1 some customers failed (listed in the summary);
2 usage, config or fatal error (including a refused token); 130 interrupted.";

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
    /// Sign in (with multi-factor authentication) and store the sign-in for later runs.
    #[command(after_help = LOGIN_EXAMPLES)]
    Login(LoginCmd),
    /// Remove the stored sign-in.
    Logout,
    /// Show who is signed in and when the stored tokens expire (never a token).
    Status,
    /// List customers' users into a CSV that `run` accepts (edit it, then run it).
    #[command(after_help = EXPORT_EXAMPLES)]
    Export(ExportCmd),
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

/// Options `run` and `audit` share: the input, the config file and the declared common options.
#[derive(Debug, Args)]
pub struct CommonArgs {
    /// The input CSV file.
    pub input: PathBuf,
    /// A TOML config file (see config.example.toml). Command-line values win over it.
    #[arg(long, env = "BULKPATCH_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub options: CommonOptions,
}

/// `--help` text: the declared help, and the declared default when there is one.
macro_rules! help_text {
    ($help:tt) => {
        $help
    };
    ($help:tt, $default:tt) => {
        concat!($help, " [default: ", $default, "]")
    };
}

/// The clap structs made from the option table in `settings::options`: `ApiOptions` (the `api`
/// group, flattened into `CommonOptions` and `LoginOptions`), `CommonOptions` (`run`, `audit`
/// and `export`), `RunOptions` (`run` only) and `LoginOptions` (`login`); the `file` group has
/// no flags.
macro_rules! clap_args {
    (api { $($api:tt)* } common { $($common:tt)* } run { $($run:tt)* } login { $($login:tt)* } file { $($file:tt)* }) => {
        clap_args!(@struct ApiOptions, "The declared options of every command that reaches an API, `login` included." [] $($api)*);
        clap_args!(@struct CommonOptions, "The declared options of `run`, `audit` and `export`." [api: ApiOptions] $($common)*);
        clap_args!(@struct RunOptions, "The declared options of `run` only." [] $($run)*);
        clap_args!(@struct LoginOptions, "The declared options of `login`." [api: ApiOptions] $($login)*);
    };
    (@struct $st:ident, $doc:tt [$($flat:ident : $flat_ty:ident)?] $(
        $name:ident : $ty:ty $(= $default:tt)? => $val:ty, parse $parse:expr, help $help:tt,
        cli($($clap:tt)*) $(, env $env:tt)? $(, toml $example:tt)? ;
    )*) => {
        #[doc = $doc]
        #[derive(Debug, Default, Args)]
        pub struct $st {
            $(
                #[command(flatten)]
                pub $flat: $flat_ty,
            )?
            $(
                #[arg($($clap)*, help = help_text!($help $(, $default)?) $(, env = $env)?)]
                pub $name: $ty,
            )*
        }

        impl $st {
            /// Copies every value given into the plain options the settings take.
            fn give(self, to: &mut CliOptions) {
                $( self.$flat.give(to); )?
                $( to.$name = CliValue::given(self.$name); )*
            }
        }
    };
}

with_options!(clap_args);

#[derive(Debug, Args)]
pub struct RunCmd {
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub run: RunOptions,
}

impl CommonArgs {
    /// The plain values the config resolution takes.
    fn into_args(self, run: RunOptions, audit: bool, quiet: bool) -> RunArgs {
        let mut options = CliOptions::default();
        self.options.give(&mut options);
        run.give(&mut options);
        RunArgs {
            input: self.input,
            config: self.config,
            audit,
            quiet,
            options,
        }
    }
}

impl RunCmd {
    /// The plain values the config resolution takes.
    pub fn into_args(self, quiet: bool) -> RunArgs {
        self.common.into_args(self.run, false, quiet)
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
        self.common.into_args(RunOptions::default(), true, quiet)
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

#[derive(Debug, Args)]
pub struct LoginCmd {
    /// A TOML config file: its target and [auth] tenant, client_id, authority and scope. Command-line values win over it.
    #[arg(long, env = "BULKPATCH_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Sign in with a code on another device (RFC 8628) instead of this machine's browser.
    #[arg(long)]
    pub device_code: bool,
    /// Print the sign-in URL instead of opening the browser.
    #[arg(long, conflicts_with = "device_code")]
    pub no_browser: bool,
    #[command(flatten)]
    pub options: LoginOptions,
}

impl LoginCmd {
    /// The plain values the login resolution takes.
    pub fn into_args(self) -> crate::settings::login::LoginArgs {
        let mut options = CliOptions::default();
        self.options.give(&mut options);
        crate::settings::login::LoginArgs {
            config: self.config,
            options,
            device_code: self.device_code,
            no_browser: self.no_browser,
        }
    }
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("customers").required(true).multiple(true)
    .args(["customer", "customers_file", "all_customers"])))]
pub struct ExportCmd {
    /// A customer whose users to export, by tenant GUID or domain; repeatable.
    #[arg(long, value_name = "GUID|DOMAIN")]
    pub customer: Vec<String>,
    /// A file naming one customer (GUID or domain) per line; `#` starts a comment line.
    #[arg(long, value_name = "FILE")]
    pub customers_file: Option<PathBuf>,
    /// Every customer of the partner.
    #[arg(long, conflicts_with_all = ["customer", "customers_file"])]
    pub all_customers: bool,
    /// Finish a stopped export: keep the customers it finished, list the others again.
    #[arg(long, conflicts_with = "force")]
    pub resume: bool,
    /// A TOML config file (see config.example.toml). Command-line values win over it.
    #[arg(long, env = "BULKPATCH_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub options: CommonOptions,
}

impl ExportCmd {
    /// The plain values the export's settings take.
    pub fn into_args(self, quiet: bool) -> crate::settings::export::ExportArgs {
        let mut options = CliOptions::default();
        let out = self.options.out.clone();
        self.options.give(&mut options);
        crate::settings::export::ExportArgs {
            out,
            config: self.config,
            quiet,
            customers: self.customer,
            customers_file: self.customers_file,
            all_customers: self.all_customers,
            resume: self.resume,
            options,
        }
    }
}
