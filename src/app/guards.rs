//! What refuses a run before anything is sent: the input's SHA-256 against `--expect-sha256`,
//! and the rows the run would write against `--max-changes` (counted by one more pass over
//! the input, with the reader's own validation and duplicate check, less the rows a resume
//! finds finished). Uses `input`, `output::resume`, `settings` and `core`.

use std::path::PathBuf;
use std::sync::Arc;

use csv::ByteRecord;
use uuid::Uuid;

use super::rows::{check_row, RowChecks};
use super::Error;
use crate::core::digest::Sha256;
use crate::core::run_state::Operation;
use crate::input::csv::{CsvSource, ReadOptions};
use crate::input::rows::Duplicates;
use crate::output::resume::Finished;
use crate::settings::Settings;
use crate::targets::Target;

/// `--expect-sha256`: the input must be the file that was approved.
pub fn check_digest(settings: &Settings, actual: Sha256) -> Result<(), Error> {
    match settings.expect_sha256 {
        Some(expected) if expected != actual => Err(Error::InputDigest {
            path: settings.input.clone(),
            expected: expected.to_string(),
            actual: actual.to_string(),
        }),
        _ => Ok(()),
    }
}

/// `--max-changes`: refuses a run that would write more rows than allowed. Rows are counted
/// after validation (invalid and duplicate rows do not count) and without the rows an earlier
/// run finished. When users are read first (`--skip-unchanged`, `--undo-file`) and more valid
/// rows than the limit remain, rows already as desired may bring the count under it: the
/// count is then made after reading, by the pool's gate (the limit is returned). A dry run
/// writes nothing: it only warns. Reads the input once more (only when the option is given);
/// gives `finished` back for the reader.
pub async fn check_max_changes(
    settings: &Settings,
    options: &ReadOptions,
    duplicates: &Duplicates,
    finished: Finished,
) -> Result<(Finished, Option<u64>), Error> {
    let Some(limit) = settings.max_changes else {
        return Ok((finished, None));
    };
    let Operation::Patch { skip_unchanged } = settings.operation else {
        return Ok((finished, None));
    };
    let reads_first = skip_unchanged || settings.undo_file.is_some();
    let count = Count {
        input: settings.input.clone(),
        options: options.clone(),
        duplicates: duplicates.clone(),
        checks: (settings.customer_id, settings.generate_passwords.is_some()),
        target: settings.target.clone(),
    };
    let (rows, finished) = super::blocking(move || {
        let rows = count.rows_to_write(&finished)?;
        Ok::<_, Error>((rows, finished))
    })
    .await?;
    if rows <= limit {
        tracing::info!(rows, limit, "rows to write within --max-changes");
        return Ok((finished, None));
    }
    if settings.dry_run {
        tracing::warn!(
            rows,
            limit,
            "{rows} rows would be written, more than --max-changes {limit}: a run with these settings would refuse to start"
        );
        return Ok((finished, None));
    }
    if reads_first {
        tracing::info!(
            rows,
            limit,
            "{rows} valid rows, more than --max-changes {limit}: every user is read before anything is written, and the rows already as desired are not counted"
        );
        return Ok((finished, Some(limit)));
    }
    Err(Error::TooManyChanges { rows, limit })
}

/// What the count reads the input with (owned: it runs on a blocking thread).
struct Count {
    input: PathBuf,
    options: ReadOptions,
    /// The first pass's duplicate check, cloned: the count must not claim the reader's pairs.
    duplicates: Duplicates,
    /// The default customer, and whether passwords are generated.
    checks: (Option<Uuid>, bool),
    target: Arc<dyn Target>,
}

impl Count {
    /// Valid rows not finished by an earlier run: the rows the run would send.
    fn rows_to_write(mut self, finished: &Finished) -> Result<u64, Error> {
        let mut source = CsvSource::open(&self.input, &self.options)?;
        let checks = RowChecks {
            default_customer: self.checks.0,
            generating: self.checks.1,
            target: &*self.target,
        };
        let mut record = ByteRecord::new();
        let mut rows = 0u64;
        while let Some(line) = source.next_record(&mut record)? {
            let row = check_row(&mut self.duplicates, &checks, line, &record, &source.header);
            if row.is_ok_and(|r| !finished.is_finished(line, r.hash)) {
                rows += 1;
            }
        }
        Ok(rows)
    }
}
