//! The second pass over the input: each record validated and checked for duplicates, skipped
//! when an earlier run finished it, given its password (generated ones written to the secrets
//! file first), then queued for the workers or recorded (invalid rows; planned rows in a dry run).
//! Rows for the workers pass through a bounded look-ahead that takes them round-robin across
//! customers (`input::interleave`), so a file grouped by customer is sent interleaved. Read to
//! its end, the file must still have the first pass's SHA-256, or the run stops there.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use csv::ByteRecord;
use tokio::sync::mpsc;
use uuid::Uuid;

use super::Error;
use crate::core::digest::Sha256;
use crate::core::run_state::{Counters, Outcome, Stop, StopReason};
use crate::input::csv as input;
use crate::input::csv::CsvSource;
use crate::input::passwords;
use crate::input::rows::{self as validate, Duplicates, Row};
use crate::output::results::{Record, Sink};
use crate::output::resume;
use crate::settings::Settings;

/// Generates each row's password, writing it to the secrets file first.
pub struct Generator {
    length: usize,
    /// Passwords an earlier run wrote for unfinished rows, by line (with the user they were for).
    earlier: std::collections::HashMap<u64, (Uuid, secrecy::SecretString)>,
    /// None in a dry run: nothing is sent, so nothing is kept.
    secrets: Option<crate::output::secrets::SecretsFile>,
}

impl Generator {
    /// The generator a run needs, if it generates passwords. A dry run keeps no secrets file;
    /// a resume adds to the earlier one and reuses its passwords for rows that never got an
    /// outcome (they may have been set).
    pub fn for_run(
        settings: &Settings,
        finished: &resume::Finished,
    ) -> Result<Option<Generator>, Error> {
        let Some(g) = &settings.generate_passwords else {
            return Ok(None);
        };
        if settings.dry_run {
            return Ok(Some(Generator {
                length: g.length,
                earlier: Default::default(),
                secrets: None,
            }));
        }
        let resuming = settings.resume && g.secrets_out.exists();
        Ok(Some(Generator {
            length: g.length,
            earlier: if resuming {
                crate::output::secrets::earlier_passwords(&g.secrets_out, finished)?
            } else {
                Default::default()
            },
            secrets: Some(if resuming {
                crate::output::secrets::SecretsFile::append(&g.secrets_out)?
            } else {
                crate::output::secrets::SecretsFile::create(&g.secrets_out)?
            }),
        }))
    }

    /// The row's password: an earlier run's for the same line and user, or a new one kept in the
    /// secrets file (flushed and synced) before it can be sent.
    fn password_for(
        &mut self,
        row: &Row,
    ) -> Result<secrecy::SecretString, crate::output::secrets::SecretsError> {
        if let Some((user, password)) = self.earlier.remove(&row.line) {
            if user == row.user {
                return Ok(password);
            }
        }
        let password = passwords::generate(self.length);
        if let Some(secrets) = &mut self.secrets {
            secrets.record(
                row.line,
                &row.customer.to_string(),
                &row.user.to_string(),
                [
                    sign_in_name(row),
                    &row.context.customer_domain,
                    &row.context.kept_cell(),
                ],
                &password,
            )?;
        }
        Ok(password)
    }
}

/// The name the user signs in with once the row is applied: the new UPN of a rename, else the
/// row's `user_principal_name`.
fn sign_in_name(row: &Row) -> &str {
    row.changes
        .user_principal_name
        .as_deref()
        .unwrap_or(&row.context.upn)
}

/// The second pass over the input.
pub struct Reader {
    pub duplicates: Duplicates,
    pub default_customer: Option<Uuid>,
    pub target: Arc<dyn crate::targets::Target>,
    pub dry_run: bool,
    pub generator: Option<Generator>,
    /// What earlier runs finished (a resume); rows in it are skipped.
    pub finished: resume::Finished,
    pub counters: Arc<Counters>,
    /// The input's SHA-256 from the first pass: read to its end, the file must still have it.
    pub input_sha256: Sha256,
    /// Finds the GUIDs of customers named by domain and users named by UPN (None: no row
    /// names any, or a dry run).
    pub resolver: Option<Arc<super::resolve::Resolver>>,
    /// `--protect-file`: users never changed.
    pub protect: crate::input::protect_list::ProtectList,
}

/// The reader's end of the row queue. It waits for a quarter of the queue to be free before
/// filling it again, so the scheduler's feeder wakes this thread once per batch, not per row.
struct Queue<'a> {
    tx: &'a mpsc::Sender<Row>,
    batch: usize,
    permits: Option<mpsc::PermitIterator<'a, Row>>,
}

impl<'a> Queue<'a> {
    fn new(tx: &'a mpsc::Sender<Row>) -> Queue<'a> {
        Queue {
            tx,
            batch: (tx.max_capacity() / 4).max(1),
            permits: None,
        }
    }

    /// Queues a row, waiting for room; false when the workers have gone.
    fn send(&mut self, row: Row) -> bool {
        loop {
            if let Some(permit) = self.permits.as_mut().and_then(Iterator::next) {
                permit.send(row);
                return true;
            }
            let reserve = self.tx.reserve_many(self.batch);
            match tokio::runtime::Handle::current().block_on(reserve) {
                Ok(permits) => self.permits = Some(permits),
                Err(_) => return false,
            }
        }
    }
}

impl Reader {
    /// Validates each record in order; invalid rows (and, in a dry run, planned rows) go straight
    /// to the results, valid rows to the workers. Skips rows an earlier run finished. Stops early
    /// when the run stops.
    pub fn read_rows(
        mut self,
        mut source: CsvSource,
        rows: &mpsc::Sender<Row>,
        sink: &Sink,
        stop: &Stop,
    ) -> Result<(), Error> {
        let mut record = ByteRecord::new();
        let mut queue = Queue::new(rows);
        let wide = source.header.with_user_id();
        while !stop.is_stopping() {
            let Some(line) = source.next_record(&mut record)? else {
                break;
            };
            let row = match self.resolve(line, &record, &source.header) {
                None => self.check(line, &record, &source.header),
                Some(Ok((rewritten, true))) => {
                    let header = wide.as_ref().unwrap_or(&source.header);
                    self.check(line, &rewritten, header)
                }
                Some(Ok((rewritten, false))) => self.check(line, &rewritten, &source.header),
                Some(Err(unresolved)) => {
                    sink.send_paced(unresolved);
                    continue;
                }
            };
            let hash = match &row {
                Ok(r) => r.hash,
                Err(i) => i.hash,
            };
            if self.finished.is_finished(line, hash) {
                self.counters.skipped.fetch_add(1, Ordering::Relaxed);
                self.counters.done.fetch_add(1, Ordering::Relaxed);
                match &row {
                    Ok(r) => self.counters.customer_id_row_done(r.customer),
                    Err(i) => self.counters.customer_row_done(&i.customer),
                }
                continue;
            }
            // A protected user gets no request and no password.
            let row = match row {
                Ok(r) if self.protect.protects(&r) => {
                    sink.send_paced(Record {
                        outcome: Outcome::Protected,
                        message: "not changed: the user is listed in --protect-file".into(),
                        ..Record::unsent(&r)
                    });
                    continue;
                }
                row => row,
            };
            let row = match (row, self.generator.as_mut()) {
                (Ok(mut row), Some(generator)) => match generator.password_for(&row) {
                    Ok(password) => {
                        row.changes.password = Some(password);
                        Ok(row)
                    }
                    Err(e) => {
                        stop.stop(StopReason::WriteFailed(e.to_string()));
                        return Err(e.into());
                    }
                },
                (row, _) => row,
            };
            match row {
                Err(invalid) => sink.send_paced(Record::invalid(&invalid)),
                Ok(row) if self.dry_run => sink.send_paced(planned(&row, &*self.target)),
                Ok(row) => {
                    if !queue.send(row) {
                        return Ok(()); // the workers have stopped
                    }
                }
            }
        }
        // At the end: the file read must be the one checked (rows still waiting are not sent).
        if let Some(now) = source.sha256().filter(|now| *now != self.input_sha256) {
            stop.stop(StopReason::InputChanged {
                first: self.input_sha256.to_string(),
                now: now.to_string(),
            });
        }
        Ok(())
    }

    /// A row that names its customer by domain or its user by UPN: the record with their GUIDs
    /// (and whether the user's id was added after the header's fields), or its record when
    /// they cannot be found (in a dry run: planned, saying it needs resolution).
    fn resolve(
        &self,
        line: u64,
        record: &ByteRecord,
        header: &input::Header,
    ) -> Option<Result<(ByteRecord, bool), Record>> {
        use crate::input::names;
        let names = names::names(record, header)?;
        let unresolved = |outcome: Outcome, reason: String| {
            let invalid = validate::Invalid {
                context: Default::default(),
                line,
                customer: crate::core::text::shorten(&names.customer, 60),
                user: String::new(),
                reason,
                hash: crate::core::hash::fnv1a(record.iter().map(<[u8]>::trim_ascii)),
            };
            Record {
                outcome,
                ..Record::invalid(&invalid)
            }
        };
        let Some(resolver) = &self.resolver else {
            let (outcome, why) = match self.dry_run {
                true => (Outcome::Planned, "a dry run lists nothing"),
                false => (Outcome::Invalid, "no resolver"),
            };
            let reason = format!("names its customer by domain or its user by user principal name: found when sent ({why})");
            return Some(Err(unresolved(outcome, reason)));
        };
        let handle = tokio::runtime::Handle::current();
        let found = handle.block_on(async {
            let customer = resolver.customer(&names.customer).await?;
            let user = match &names.user_principal_name {
                Some(upn) => Some(resolver.user(customer, None, Some(upn)).await?),
                None => None,
            };
            Ok::<_, super::resolve::Unresolved>((customer, user))
        });
        Some(match found {
            Ok((customer, user)) => {
                let rewritten = names::with_ids(record, header, &names, customer, user);
                let widened = user.is_some() && header.position(input::Column::UserId).is_none();
                Ok((rewritten, widened))
            }
            Err(e) => Err(unresolved(e.outcome, e.reason)),
        })
    }

    /// Validation plus the duplicate check (see [`check_row`]).
    fn check(
        &mut self,
        line: u64,
        record: &ByteRecord,
        header: &input::Header,
    ) -> Result<Row, validate::Invalid> {
        let checks = RowChecks {
            default_customer: self.default_customer,
            generating: self.generator.is_some(),
            target: &*self.target,
        };
        check_row(&mut self.duplicates, &checks, line, record, header)
    }
}

/// What validating a row depends on besides the row.
pub struct RowChecks<'a> {
    pub default_customer: Option<Uuid>,
    /// A password is generated for each row.
    pub generating: bool,
    pub target: &'a dyn crate::targets::Target,
}

/// Validation plus the duplicate check, as the reader (and the `--max-changes` count) sees a
/// row. An invalid row still claims its (customer, user) pair, so a later row for the same
/// user is flagged.
pub fn check_row(
    duplicates: &mut Duplicates,
    checks: &RowChecks<'_>,
    line: u64,
    record: &ByteRecord,
    header: &input::Header,
) -> Result<Row, validate::Invalid> {
    match validate::validate(
        line,
        record,
        header,
        checks.default_customer,
        checks.generating,
        checks.target,
    ) {
        Ok(row) => match duplicates.check(line, row.customer, row.user) {
            Some(first) => Err(validate::Invalid {
                context: Box::new(row.context),
                hash: row.hash,
                line,
                customer: row.customer.to_string(),
                user: row.user.to_string(),
                reason: format!(
                    "the same customer and user as line {first}: each user may appear once per file"
                ),
            }),
            None => Ok(row),
        },
        Err(invalid) => {
            if let (Ok(c), Ok(u)) = (
                crate::core::ids::parse_guid(&invalid.customer),
                crate::core::ids::parse_guid(&invalid.user),
            ) {
                duplicates.check(line, c, u);
            }
            Err(invalid)
        }
    }
}

fn planned(row: &Row, target: &dyn crate::targets::Target) -> Record {
    Record {
        outcome: Outcome::Planned,
        body: Some(target.shown_body(&row.changes)),
        ..Record::unsent(row)
    }
}
