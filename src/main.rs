//! The `bulkpatch` binary: parses arguments, sets up logging, calls the library, maps the outcome to an exit code.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use bulkpatch::cli::{Cli, Command, GlobalArgs, LogFormat};
use bulkpatch::core::redact::for_terminal;
use bulkpatch::{exit, Settings};

fn main() -> ExitCode {
    bulkpatch::core::redact::register_proxy_passwords();
    std::panic::set_hook(Box::new(|info| {
        eprintln!("error: {}", bulkpatch::core::redact::panic_text(info));
    }));
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    init_tracing(&cli.global);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(exit::FATAL);
        }
    };
    let quiet = cli.global.quiet > 0;
    let json_logs = matches!(cli.global.log_format, LogFormat::Json);
    let show = Show { quiet, json_logs };
    if json_logs {
        bulkpatch::output::progress::log_lines_only();
    }
    let outcome = runtime.block_on(dispatch(cli.command, quiet, show));
    match outcome {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let message = bulkpatch::error_chain(&e);
            if json_logs {
                tracing::error!(error = %message, exit_code = exit::FATAL, "fatal");
            } else {
                eprintln!("error: {}", for_terminal(&message));
            }
            ExitCode::from(exit::FATAL)
        }
    }
}

/// Runs the command; its exit code, or the fatal error.
async fn dispatch(command: Command, quiet: bool, show: Show) -> Result<u8, bulkpatch::Error> {
    match command {
        Command::Run(cmd) => run(Settings::resolve(cmd.into_args(quiet))?, show).await,
        Command::Audit(cmd) => run(Settings::resolve(cmd.into_args(quiet))?, show).await,
        Command::Login(cmd) => login(cmd, show).await,
        Command::Logout => logout(),
        Command::Status => status(),
        Command::Export(cmd) => {
            let settings = bulkpatch::settings::export::resolve(cmd.into_args(quiet))?;
            let summary = bulkpatch::app::export::export(settings).await?;
            if !(quiet && summary.exit_code == exit::OK) {
                eprint!("{}", for_terminal(&summary.to_text()));
            }
            Ok(summary.exit_code)
        }
        Command::Report(cmd) => {
            let (html, markdown) = (cmd.html.as_deref(), cmd.markdown.as_deref());
            let markdown = bulkpatch::report::write_reports(&cmd.results, html, markdown)?;
            if let Some(markdown) = markdown {
                print!("{markdown}");
            }
            Ok(exit::OK)
        }
        #[cfg(feature = "simulator")]
        Command::Demo(cmd) => {
            let options = bulkpatch::demo::DemoOptions {
                out: cmd.out,
                show_progress: !quiet,
            };
            let summary = bulkpatch::demo::run(options).await?;
            // The demo printed its summaries. It worked if it ran to the end; its rows are meant to include failures.
            Ok(match summary.stopped {
                None => exit::OK,
                Some(_) => summary.exit_code,
            })
        }
        #[cfg(feature = "simulator")]
        Command::Simulate(cmd) => {
            let config = cmd
                .to_config()
                .map_err(|m| bulkpatch::Error::Other(anyhow::anyhow!(m)))?;
            bulkpatch::simulator::command::simulate(config, cmd.port).await?;
            Ok(exit::OK)
        }
    }
}

/// `bulkpatch logout`.
fn logout() -> Result<u8, bulkpatch::Error> {
    let removed = bulkpatch::app::signin::logout()?;
    eprintln!(
        "{}",
        if removed {
            "Signed out: the stored sign-in is removed."
        } else {
            "Not signed in: nothing to remove."
        }
    );
    Ok(exit::OK)
}

/// `bulkpatch status`: exit 1 when not signed in.
fn status() -> Result<u8, bulkpatch::Error> {
    match bulkpatch::app::signin::status()? {
        Some(lines) => {
            for line in lines {
                println!("{}", for_terminal(&line));
            }
            Ok(exit::OK)
        }
        None => {
            eprintln!("Not signed in: run `bulkpatch login`.");
            Ok(exit::ROWS_FAILED)
        }
    }
}

/// A command line clap refuses: shown as clap shows it, or as one JSON error event when the
/// command line asks for JSON logs (so that every stderr line stays JSON).
fn usage_error(e: clap::Error) -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let json = args
        .windows(2)
        .any(|w| w[0] == "--log-format" && w[1] == "json")
        || args.iter().any(|a| a == "--log-format=json");
    if !json || !e.use_stderr() {
        e.exit();
    }
    tracing_subscriber::fmt()
        .json()
        .with_writer(std::io::stderr)
        .init();
    let message = e.to_string();
    tracing::error!(error = %message.trim_end(), exit_code = exit::FATAL, "fatal");
    ExitCode::from(exit::FATAL)
}

/// How the end of a run is shown.
#[derive(Clone, Copy)]
struct Show {
    /// -q: nothing on success, so that cron mails only failures.
    quiet: bool,
    /// --log-format json: the summary is one log event, not a text block.
    json_logs: bool,
}

async fn run(settings: Settings, show: Show) -> Result<u8, bulkpatch::Error> {
    let summary = bulkpatch::run(settings).await?;
    if show.json_logs {
        summary.log();
    } else if !(show.quiet && summary.exit_code == exit::OK) {
        eprint!("{}", for_terminal(&summary.to_text()));
    }
    Ok(summary.exit_code)
}

/// `bulkpatch login`: signs in, telling the person on stderr what to do (as log events with
/// `--log-format json`, so that every line stays JSON).
async fn login(cmd: bulkpatch::cli::LoginCmd, show: Show) -> Result<u8, bulkpatch::Error> {
    use bulkpatch::send::login::Prompt;
    let settings = bulkpatch::settings::login::LoginSettings::resolve(cmd.into_args())?;
    let tell = |text: String| {
        if show.json_logs {
            tracing::info!("{text}");
        } else {
            eprintln!("{}", for_terminal(&text));
        }
    };
    let prompt = |p: Prompt| match p {
        Prompt::OpenUrl(url) => tell(format!(
            "Open this URL in a browser to sign in:\n{url}\nWaiting for the sign-in..."
        )),
        Prompt::BrowserOpened(url) => tell(format!(
            "Sign in in the browser window that opened (or open {url}).\nWaiting for the sign-in..."
        )),
        Prompt::DeviceCode { uri, code } => tell(format!(
            "To sign in, open {uri} and enter the code {code}\nWaiting for the sign-in..."
        )),
    };
    let done = bulkpatch::app::signin::login(settings, &prompt).await?;
    tell(format!(
        "Signed in as {} (tenant {}); the sign-in is stored in {}.",
        done.account, done.tenant_id, done.saved_to
    ));
    Ok(exit::OK)
}

/// Logs go to stderr through the progress-aware writer. `RUST_LOG` wins over -v/-q.
fn init_tracing(global: &GlobalArgs) {
    let default = match (global.quiet, global.verbose) {
        (q, _) if q >= 2 => "error",
        (1, _) => "warn",
        (_, 0) => "bulkpatch=info,warn",
        (_, 1) => "bulkpatch=debug,info",
        _ => "bulkpatch=trace,debug",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let colours = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(bulkpatch::output::progress::LogWriter::new(colours))
        .with_ansi(colours)
        .with_target(false);
    match global.log_format {
        // JSON escapes every control character itself; the writer redacts each line.
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.fmt_fields(escaped_fields()).init(),
    }
}

/// Formats each field as `name=value` (the message alone) with its value redacted and its
/// control characters escaped before tracing adds its colour codes: so with colours on, the
/// only escape sequences on a line are tracing's own.
fn escaped_fields() -> impl for<'w> tracing_subscriber::fmt::FormatFields<'w> {
    use tracing_subscriber::field::MakeExt;
    tracing_subscriber::fmt::format::debug_fn(|w, field, value| {
        let text = format!("{value:?}");
        let text = bulkpatch::core::redact::redact(&text);
        let text = bulkpatch::core::redact::escape_controls_in_line(&text);
        match field.name() {
            "message" => write!(w, "{text}"),
            name => write!(w, "{name}={text}"),
        }
    })
    .delimited(" ")
}
