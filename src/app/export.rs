//! `bulkpatch export`: lists the partner's customers once, picks those chosen (by GUID or by
//! domain; a domain two customers share is refused naming both), then lists each chosen
//! customer's users (several customers at once, at most `--concurrency`) into the export file
//! through the run's pacer, retries and tokens. A customer that fails is recorded and the others
//! go on; a stopped export is finished with `--resume`. Returns the summary; never prints.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::listing::{ListError, Lister};
use super::{blocking, signals, Error};
use crate::core::run_state::{Counters, Outcome, Stop, StopReason};
use crate::output::export_file::{ExportFile, ExportFileError};
use crate::output::progress::Progress;
use crate::output::summary::exit;
use crate::settings::export::{Choice, ExportSettings, Selection};
use crate::targets::CustomerItem;

/// A customer the export could not list, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailedCustomer {
    /// The customer as chosen or listed: its GUID (and domain), or the domain given.
    pub customer: String,
    pub reason: String,
}

/// What an export did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportSummary {
    pub out: PathBuf,
    /// Customers whose users were all written by this export.
    pub customers: u64,
    pub users: u64,
    /// Customers an earlier export already finished (`--resume`).
    pub already_done: u64,
    pub failed: Vec<FailedCustomer>,
    /// Customers not finished because the export stopped.
    pub not_finished: u64,
    /// Items of the answers left out as malformed.
    pub malformed: u64,
    pub requests: u64,
    pub throttled: u64,
    pub elapsed: Duration,
    pub stopped: Option<String>,
    pub exit_code: u8,
}

impl ExportSummary {
    /// The summary as shown on stderr (escape it for the terminal: it holds server texts).
    pub fn to_text(&self) -> String {
        let mut t = format!(
            "Exported {} users of {} customers to {} in {:.1}s ({} requests, {} answered 429).\n",
            self.users,
            self.customers,
            self.out.display(),
            self.elapsed.as_secs_f64(),
            self.requests,
            self.throttled
        );
        if self.already_done > 0 {
            t += &format!(
                "{} customers were already done by an earlier export.\n",
                self.already_done
            );
        }
        if self.malformed > 0 {
            t += &format!(
                "{} malformed items in the answers were left out.\n",
                self.malformed
            );
        }
        if !self.failed.is_empty() {
            t += &format!("{} customers failed:\n", self.failed.len());
            for f in &self.failed {
                t += &format!("  {}: {}\n", f.customer, f.reason);
            }
        }
        if let Some(reason) = &self.stopped {
            t += &format!("Stopped: {reason}.\n");
        }
        if self.not_finished > 0 || !self.failed.is_empty() {
            t += &format!(
                "To list the customers not done again, run the same command with --resume (the file keeps the {} customers done).\n",
                self.customers + self.already_done
            );
        }
        t
    }
}

/// Runs an export; see the module doc.
pub async fn export(mut settings: ExportSettings) -> Result<ExportSummary, Error> {
    let started = Instant::now();
    crate::output::paths::check_export(&settings.run)?;
    let named = named_tenants(&settings)?;
    let stop = Arc::new(Stop::default());
    let counters = Arc::new(Counters::default());
    let lister = Lister::for_settings(&mut settings.run, stop.clone(), counters.clone()).await?;
    let (tokens, lister) = (lister.tokens.clone(), Arc::new(lister));
    let signals = signals::watch_signals(stop.clone(), settings.run.grace_period);
    let mut summary = ExportSummary {
        out: settings.run.out.clone(),
        customers: 0,
        users: 0,
        already_done: 0,
        failed: Vec::new(),
        not_finished: 0,
        malformed: 0,
        requests: 0,
        throttled: 0,
        elapsed: Duration::ZERO,
        stopped: None,
        exit_code: exit::OK,
    };
    let outcome = match named {
        Some((mut tenants, domains)) => {
            summary.failed = tenants_of_domains(&lister, &domains, &mut tenants).await;
            export_users(&settings, &lister, tenants, &mut summary).await
        }
        None => list_and_export(&settings, &lister, &mut summary).await,
    };
    signals.abort();
    outcome?;
    summary.requests = counters.attempts.load(std::sync::atomic::Ordering::Relaxed);
    summary.throttled = counters
        .throttled
        .load(std::sync::atomic::Ordering::Relaxed);
    summary.elapsed = started.elapsed();
    summary.stopped = stop.reason().map(ToString::to_string);
    summary.exit_code = exit_code(stop.reason(), &summary);
    if let Some(problem) = tokens.not_saved() {
        summary.exit_code = exit::FATAL;
        summary.stopped = Some(problem);
    }
    Ok(summary)
}

/// The partner's customers listed, the chosen ones' users exported.
async fn list_and_export(
    settings: &ExportSettings,
    lister: &Arc<Lister>,
    summary: &mut ExportSummary,
) -> Result<(), Error> {
    match lister.customers().await {
        Ok((customers, listed)) => {
            summary.malformed += listed.malformed;
            let (chosen, failed) = choose(&settings.selection, customers);
            summary.failed = failed;
            export_users(settings, lister, chosen, summary).await
        }
        Err(ListError::Stopped) => Ok(()),
        Err(e) => Err(Error::Other(anyhow::anyhow!(
            "cannot list the partner's customers: {e}"
        ))),
    }
}

/// The tenants `domains` name, found through the authority's discovery document (Graph), added
/// to `tenants` (each once); the domains not found, with why.
async fn tenants_of_domains(
    lister: &Lister,
    domains: &[String],
    tenants: &mut Vec<CustomerItem>,
) -> Vec<FailedCustomer> {
    let mut failed = Vec::new();
    for domain in domains {
        let lower = domain.to_ascii_lowercase();
        match super::tenant_domain::tenant_of_domain(lister, &lower).await {
            Ok(id) if tenants.iter().all(|t| t.id != id) => tenants.push(CustomerItem {
                id,
                domain: lower,
                name: String::new(),
            }),
            Ok(_) => {}
            Err(unresolved) => failed.push(FailedCustomer {
                customer: domain.clone(),
                reason: unresolved.reason,
            }),
        }
    }
    failed
}

/// Named tenants and domains, to find before anything else is sent.
type Named = (Vec<CustomerItem>, Vec<String>);

/// With a target that cannot list customers (Graph: customer tenants are named, not listed),
/// the tenants named by GUID and the domains to find through the authority's discovery
/// document; `--all-customers`, or a domain when the target cannot find one, is refused before
/// anything is sent. None: the target lists its customers.
fn named_tenants(settings: &ExportSettings) -> Result<Option<Named>, Error> {
    let target = &settings.run.target;
    let nil = uuid::Uuid::nil();
    let probe = crate::targets::Ids {
        request: nil,
        correlation: nil,
    };
    let customers = crate::targets::Collection::Customers;
    let Err(why) = target.list_request(customers, None, probe) else {
        return Ok(None);
    };
    let refuse = |what: String| {
        Err(Error::Other(anyhow::anyhow!(
            "{what}: {why}; nothing was sent"
        )))
    };
    let Selection::These(choices) = &settings.selection else {
        return refuse("--all-customers cannot be exported".into());
    };
    let mut tenants: Vec<CustomerItem> = Vec::new();
    let mut domains: Vec<String> = Vec::new();
    for choice in choices {
        match choice {
            Choice::Id(id) if tenants.iter().all(|t| t.id != *id) => tenants.push(CustomerItem {
                id: *id,
                domain: String::new(),
                name: String::new(),
            }),
            Choice::Id(_) => {}
            Choice::Domain(d) if target.resolves_domains_by_discovery() => domains.push(d.clone()),
            Choice::Domain(d) => {
                let d = crate::core::text::shorten(d, 80);
                return refuse(format!("the customer {d} is a domain"));
            }
        }
    }
    Ok(Some((tenants, domains)))
}

fn exit_code(stopped: Option<&StopReason>, summary: &ExportSummary) -> u8 {
    match stopped {
        Some(StopReason::Interrupted) => exit::INTERRUPTED,
        Some(_) => exit::FATAL,
        None if !summary.failed.is_empty() => exit::ROWS_FAILED,
        None => exit::OK,
    }
}

/// The customers chosen, each once, and the choices that match none or several.
pub fn choose(
    selection: &Selection,
    customers: Vec<CustomerItem>,
) -> (Vec<CustomerItem>, Vec<FailedCustomer>) {
    let choices = match selection {
        Selection::All => return (customers, Vec::new()),
        Selection::These(choices) => choices,
    };
    let (mut chosen, mut failed) = (Vec::<CustomerItem>::new(), Vec::new());
    for choice in choices {
        let matches: Vec<&CustomerItem> = customers
            .iter()
            .filter(|c| match choice {
                Choice::Id(id) => c.id == *id,
                Choice::Domain(d) => c.domain.eq_ignore_ascii_case(d),
            })
            .collect();
        let reason = match (choice, matches.as_slice()) {
            (_, [one]) => {
                if chosen.iter().all(|c| c.id != one.id) {
                    chosen.push((*one).clone());
                }
                continue;
            }
            (Choice::Id(_), []) => "not among the partner's customers".to_string(),
            (Choice::Domain(_), []) => "no customer of the partner has this domain".to_string(),
            (_, several) => format!(
                "ambiguous: customers {} have this domain; name the one meant by its GUID",
                several
                    .iter()
                    .map(|c| c.id.to_string())
                    .collect::<Vec<_>>()
                    .join(" and ")
            ),
        };
        failed.push(FailedCustomer {
            customer: choice.to_string(),
            reason,
        });
    }
    (chosen, failed)
}

/// Opens (or resumes) the export file and lists the chosen customers' users into it.
async fn export_users(
    settings: &ExportSettings,
    lister: &Arc<Lister>,
    chosen: Vec<CustomerItem>,
    summary: &mut ExportSummary,
) -> Result<(), Error> {
    let (out, delimiter, resume) = (
        settings.run.out.clone(),
        settings.delimiter,
        settings.run.resume,
    );
    let (file, done) = blocking(move || match resume {
        true => ExportFile::resume(&out, delimiter),
        false => ExportFile::create(&out, delimiter).map(|f| (f, HashSet::new())),
    })
    .await?;
    let todo: Vec<CustomerItem> = chosen
        .into_iter()
        .filter(|c| !done.contains(&c.id))
        .collect();
    summary.already_done = done.len() as u64;
    let progress = Progress::start(
        todo.len() as u64,
        lister.counters.clone(),
        Arc::new(Default::default),
        settings.run.show_progress,
        settings.run.progress_interval,
    );
    let file = Arc::new(Mutex::new(file));
    let limit = Arc::new(tokio::sync::Semaphore::new(settings.run.concurrency));
    let mut tasks = tokio::task::JoinSet::new();
    for customer in todo {
        let (lister, file, limit) = (lister.clone(), file.clone(), limit.clone());
        tasks.spawn(async move {
            let _permit = limit.acquire_owned().await;
            let outcome = export_customer(&lister, &file, &customer).await;
            (customer, outcome)
        });
    }
    let mut fatal = None;
    while let Some(joined) = tasks.join_next().await {
        let (customer, outcome) = joined.map_err(anyhow::Error::from)?;
        match outcome {
            Ok(Some((users, malformed))) => {
                if malformed > 0 {
                    tracing::warn!(customer = %customer.id, malformed, "malformed users in the answers were left out");
                }
                lister.counters.record(Outcome::Updated);
                summary.customers += 1;
                summary.users += users;
                summary.malformed += malformed;
            }
            Ok(None) => summary.not_finished += 1,
            Err(CustomerError::Listing(reason)) => {
                lister.counters.record(Outcome::Failed);
                let domain = crate::core::text::shorten(&customer.domain, 80);
                let label = match domain.is_empty() {
                    true => customer.id.to_string(),
                    false => format!("{} ({domain})", customer.id),
                };
                tracing::warn!(customer = %label, reason = %reason, "cannot list the customer's users");
                summary.failed.push(FailedCustomer {
                    customer: label,
                    reason,
                });
            }
            Err(CustomerError::File(e)) => {
                lister.stop.stop(StopReason::WriteFailed(e.to_string()));
                fatal.get_or_insert(e);
                summary.not_finished += 1;
            }
        }
    }
    progress.finish().await;
    fatal.map_or(Ok(()), |e| Err(e.into()))
}

enum CustomerError {
    /// The customer's listing failed: recorded, the others go on.
    Listing(String),
    /// The export file could not be written: the export stops.
    File(ExportFileError),
}

/// Lists one customer's users into its spool, then copies them into the export file. Ok(None)
/// when the export stopped first.
async fn export_customer(
    lister: &Lister,
    file: &Arc<Mutex<ExportFile>>,
    customer: &CustomerItem,
) -> Result<Option<(u64, u64)>, CustomerError> {
    if lister.stop.is_stopping() {
        return Ok(None);
    }
    let spool = file
        .lock()
        .map_err(|_| CustomerError::Listing("the export file's lock was poisoned".into()))?
        .spool(customer);
    let mut spool = spool.map_err(CustomerError::File)?;
    let mut write_error = None;
    let listed = lister
        .users(customer.id, |user| {
            spool.push(&user).map_err(|e| {
                let message = format!("cannot write the spool file: {e}");
                write_error = Some(e);
                ListError::Failed {
                    status: None,
                    code: None,
                    message,
                }
            })
        })
        .await;
    if let Some(source) = write_error {
        let path = PathBuf::from(format!("spool of customer {}", customer.id));
        return Err(CustomerError::File(ExportFileError::Write { path, source }));
    }
    let listed = match listed {
        Ok(listed) => listed,
        Err(ListError::Stopped) => return Ok(None),
        Err(e) => return Err(CustomerError::Listing(e.to_string())),
    };
    let (file, id) = (file.clone(), customer.id);
    let added = tokio::task::spawn_blocking(move || match file.lock() {
        Ok(mut file) => file.add(id, spool),
        Err(_) => Err(ExportFileError::Resume {
            path: PathBuf::new(),
            message: "the export file's lock was poisoned".into(),
        }),
    })
    .await;
    match added {
        Ok(Ok(users)) => Ok(Some((users, listed.malformed))),
        Ok(Err(e)) => Err(CustomerError::File(e)),
        Err(e) => Err(CustomerError::Listing(format!("the copy failed: {e}"))),
    }
}
