//! Reads the input CSV as a stream: encoding checks, delimiter detection, header-to-column mapping, and raw records with their line numbers.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use std::sync::Arc;

use crate::core::digest::{Hashing, Sha256};
use crate::core::text::shorten;
use crate::targets::{Field, Target};
use csv::ByteRecord;

use crate::input::columns::{column_for, list_unknown, suggest};
pub use crate::input::columns::{normalize_header, Column, UnknownColumn};

/// A fatal problem with the input file as a whole: nothing is sent.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("cannot read input file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("input file {path} is not a regular file (a pipe, a device or a directory): it is read twice, so save it to a file first")]
    NotAFile { path: PathBuf },
    #[error("input file {path} is empty: it needs a header row (for example `customer_id,user_id,usage_location`) and data rows")]
    Empty { path: PathBuf },
    #[error("input file {path} is UTF-16 encoded: save it as UTF-8 (in Excel: File > Save As > \"CSV UTF-8\")")]
    Utf16 { path: PathBuf },
    #[error("input file {path}: the header row is not valid UTF-8: save the file as UTF-8")]
    HeaderNotUtf8 { path: PathBuf },
    #[error("input file {path}: unknown column{} {}; use --ignore-unknown-columns to skip columns the tool does not use{}", if columns.len() > 1 { "s" } else { "" }, list_unknown(columns), if columns.iter().any(|c| c.not_changeable_through.is_some()) { " (or --fields to choose the fields sent: columns that cannot be changed are then left aside), or --keep-columns to carry a column into the results" } else { "" })]
    UnknownColumns {
        path: PathBuf,
        /// Every unknown column of the header, in order.
        columns: Vec<UnknownColumn>,
    },
    #[error("input file {path}: columns {first} (\"{first_name}\") and {second} (\"{second_name}\") both mean {column}: keep one")]
    DuplicateColumn {
        path: PathBuf,
        column: &'static str,
        first: usize,
        first_name: String,
        second: usize,
        second_name: String,
    },
    #[error(
        "input file {path}: no user_id column (accepted names: user_id, userid, id, objectid) and no user_principal_name column to find the users by"
    )]
    MissingUserId { path: PathBuf },
    #[error("input file {path}: no customer_id column (accepted names: customer_id, customer_tenant_id, tenant_id) and no --customer-id given")]
    MissingCustomer { path: PathBuf },
    #[error("input file {path}: no column to update: add at least one of {fields} (or use --generate-passwords)")]
    NothingToUpdate {
        path: PathBuf,
        /// The target's field columns, listed.
        fields: String,
    },
    #[error("input file {path}: --fields names {field}, but the file has no {field} column")]
    MissingField { path: PathBuf, field: &'static str },
    #[error(
        "input file {path}: --keep-columns names \"{name}\", but the header has no such column"
    )]
    MissingKeptColumn { path: PathBuf, name: String },
    #[error("input file {path}: --keep-columns cannot keep the column \"{name}\" ({why})")]
    NotKeepable {
        path: PathBuf,
        name: String,
        why: &'static str,
    },
    #[error("input file {path} has a password column and --generate-passwords was given: use one or the other")]
    PasswordColumnAndGeneration { path: PathBuf },
    #[error("input file {path} has old Mac line ends (CR only): save it with Windows (CRLF) or Unix (LF) line ends")]
    CrLineEnds { path: PathBuf },
    #[error(
        "input file {path}: the header row has a quote (\") that is never closed: fix the header"
    )]
    HeaderQuote { path: PathBuf },
    #[error("input file {path}: cannot detect the delimiter of the header row: pass --delimiter")]
    NoDelimiter { path: PathBuf },
}

/// Where each understood column sits in a record.
#[derive(Clone, Debug)]
pub struct Header {
    positions: [Option<usize>; Column::COUNT],
    /// Number of fields in the header row; every data row must have as many.
    pub width: usize,
    /// Column names exactly as written, for messages.
    pub names: Vec<String>,
    /// Columns with an empty name (from trailing delimiters): their cells must stay empty.
    pub unnamed: Vec<usize>,
    /// FNV-1a of the header row, for the results file's fingerprint.
    pub hash: u64,
    /// The fields sent (`--fields`); None: every field the file has a column for.
    pub chosen: Option<Vec<Field>>,
    /// Columns carried as context besides the UPN and the domain (`--keep-columns`, and the
    /// field columns `--fields` leaves out): the name as written and the position.
    pub kept: Vec<(Arc<str>, usize)>,
}

impl Header {
    fn empty() -> Header {
        Header {
            positions: [None; Column::COUNT],
            width: 0,
            names: Vec::new(),
            unnamed: Vec::new(),
            hash: 0,
            chosen: None,
            kept: Vec::new(),
        }
    }

    /// Maps the header row to columns, or explains what is wrong with it.
    pub fn parse(
        path: &Path,
        record: &ByteRecord,
        options: &ReadOptions,
    ) -> Result<Header, InputError> {
        let target = options.target();
        let keep: Vec<String> = options
            .keep_columns
            .iter()
            .map(|k| normalize_header(k))
            .collect();
        let mut header = Header::empty();
        let mut unknown = Vec::new();
        for (i, raw) in record.iter().enumerate() {
            let name = std::str::from_utf8(raw)
                .map_err(|_| InputError::HeaderNotUtf8 {
                    path: path.to_owned(),
                })?
                .trim()
                .to_string();
            let normalized = normalize_header(&name);
            match column_for(&normalized, &*target) {
                Some(col) => {
                    if let Some(first) = header.positions[col.index()] {
                        return Err(InputError::DuplicateColumn {
                            path: path.to_owned(),
                            column: col.name(),
                            first: first + 1,
                            first_name: header.names[first].clone(),
                            second: i + 1,
                            second_name: name,
                        });
                    }
                    header.positions[col.index()] = Some(i);
                }
                None if !normalized.is_empty() && keep.contains(&normalized) => {
                    header.kept.push((Arc::from(name.as_str()), i));
                }
                None if options.ignore_unknown_columns => {}
                // A column of the target's own exports that it cannot change: left aside when
                // the run says which fields it sends, else named as such (not as a typo).
                None if target.unchangeable_column(&normalized) => {
                    if options.fields.is_none() {
                        unknown.push(UnknownColumn {
                            suggestion: None,
                            not_changeable_through: Some(target.title()),
                            name: shorten(&name, 60),
                            position: i + 1,
                        });
                    }
                }
                // Unnamed columns come from trailing delimiters (Excel writes them): they are
                // accepted as long as they stay empty (a row with a value in one is invalid).
                None if normalized.is_empty() => header.unnamed.push(i),
                None => unknown.push(UnknownColumn {
                    suggestion: suggest(&normalized, &*target),
                    not_changeable_through: None,
                    name: shorten(&name, 60),
                    position: i + 1,
                }),
            }
            header.names.push(name);
        }
        if !unknown.is_empty() {
            return Err(InputError::UnknownColumns {
                path: path.to_owned(),
                columns: unknown,
            });
        }
        header.width = record.len();
        header.hash = crate::core::hash::fnv1a(record.iter().map(<[u8]>::trim_ascii));
        header.choose(path, options)?;
        header.check(path, options)?;
        Ok(header)
    }

    /// Applies `--fields` (the other field columns become context) and checks `--keep-columns`.
    fn choose(&mut self, path: &Path, options: &ReadOptions) -> Result<(), InputError> {
        for name in &options.keep_columns {
            let n = normalize_header(name);
            let col = column_for(&n, &*options.target());
            let why = match col {
                Some(Column::Password | Column::ForceChangePassword) => {
                    Some("passwords are never copied into another file")
                }
                Some(
                    Column::CustomerId
                    | Column::UserId
                    | Column::UserPrincipalName
                    | Column::CustomerDomain,
                ) => Some("this column is in the results already"),
                Some(c) if c.field().is_some() && options.fields.is_none() => {
                    Some("it is a field the run sends (choose the fields sent with --fields)")
                }
                _ => None,
            };
            if let Some(why) = why {
                return Err(InputError::NotKeepable {
                    path: path.to_owned(),
                    name: name.clone(),
                    why,
                });
            }
            let present = col.is_some_and(|c| self.position(c).is_some())
                || self.kept.iter().any(|(k, _)| normalize_header(k) == n);
            if !present {
                return Err(InputError::MissingKeptColumn {
                    path: path.to_owned(),
                    name: name.clone(),
                });
            }
        }
        let Some(chosen) = &options.fields else {
            return Ok(());
        };
        for field in chosen {
            let col = Column::ALL.into_iter().find(|c| c.field() == Some(*field));
            let has = col.is_some_and(|c| self.position(c).is_some());
            // A generated password needs no column.
            let generated = *field == Field::Password && options.generate_passwords;
            if !(has || generated) {
                return Err(InputError::MissingField {
                    path: path.to_owned(),
                    field: field.column(),
                });
            }
        }
        for col in Column::ALL {
            let left_out = col.field().is_some_and(|f| !chosen.contains(&f));
            if let (true, Some(i)) = (left_out && col != Column::Password, self.position(col)) {
                self.kept.push((Arc::from(self.names[i].as_str()), i));
            }
        }
        self.kept.sort_by_key(|(_, i)| *i);
        self.chosen = Some(chosen.clone());
        Ok(())
    }

    /// The columns every run needs.
    fn check(&self, path: &Path, options: &ReadOptions) -> Result<(), InputError> {
        let path = || path.to_owned();
        // Without user_id, users are found by user_principal_name (`input::names`).
        if self.position(Column::UserId).is_none()
            && self.position(Column::UserPrincipalName).is_none()
        {
            return Err(InputError::MissingUserId { path: path() });
        }
        if self.position(Column::CustomerId).is_none() && !options.has_default_customer {
            return Err(InputError::MissingCustomer { path: path() });
        }
        if options.generate_passwords && self.position(Column::Password).is_some() {
            return Err(InputError::PasswordColumnAndGeneration { path: path() });
        }
        if !options.generate_passwords && !Column::ALL.into_iter().any(|c| self.sends(c)) {
            let target = options.target();
            let fields: Vec<&str> = target.fields().iter().map(|f| f.column()).collect();
            return Err(InputError::NothingToUpdate {
                path: path(),
                fields: fields.join(", "),
            });
        }
        Ok(())
    }

    /// Whether the file has the column and the run sends what it holds.
    pub fn sends(&self, col: Column) -> bool {
        let chosen = |f: Field| self.chosen.as_ref().is_none_or(|c| c.contains(&f));
        self.position(col).is_some() && col.field().is_some_and(chosen)
    }

    /// The record index of a column, if the file has it.
    pub fn position(&self, col: Column) -> Option<usize> {
        self.positions[col.index()]
    }

    /// This header with a `user_id` column after the others (rows whose users were found by
    /// user principal name carry the id there); None when it has one.
    pub fn with_user_id(&self) -> Option<Header> {
        if self.position(Column::UserId).is_some() {
            return None;
        }
        let mut header = self.clone();
        header.positions[Column::UserId.index()] = Some(self.width);
        header.width += 1;
        header.names.push(Column::UserId.name().to_string());
        Some(header)
    }
}

/// Options for reading the input.
#[derive(Clone, Debug, Default)]
pub struct ReadOptions {
    pub delimiter: Option<u8>,
    pub ignore_unknown_columns: bool,
    pub has_default_customer: bool,
    /// Passwords are generated, so rows need no update column of their own.
    pub generate_passwords: bool,
    /// The fields sent (`--fields`); None: every field column of the file.
    pub fields: Option<Vec<Field>>,
    /// Columns carried into the results as context (`--keep-columns`).
    pub keep_columns: Vec<String>,
    /// The API whose export names and fields the header is read with; None: the default one.
    pub target: Option<Arc<dyn Target>>,
}

impl ReadOptions {
    fn target(&self) -> Arc<dyn Target> {
        self.target
            .clone()
            .unwrap_or_else(crate::targets::default_target)
    }
}

/// An open input file positioned after its header.
pub struct CsvSource {
    reader: csv::Reader<BufReader<Hashing<File>>>,
    pub path: PathBuf,
    pub header: Header,
    pub delimiter: u8,
    /// Bytes the reader reads (after a BOM).
    len: u64,
    /// Whether the last line ends with a line break.
    ends_with_newline: bool,
    /// Whether the records were read to the end of the file (the digest is then the file's).
    at_end: bool,
}

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// The first MiB of `file` (to tell its encoding, delimiter and line ends) and the length of
/// its UTF-8 BOM (0 or 3). Refuses UTF-16, a file with nothing but white space, and lines
/// ended by `\r` alone.
fn sniff(path: &Path, file: &mut File) -> Result<(Vec<u8>, usize), InputError> {
    let mut head = Vec::with_capacity(64 * 1024);
    file.take(1024 * 1024)
        .read_to_end(&mut head)
        .map_err(|source| InputError::Io {
            path: path.to_owned(),
            source,
        })?;
    let path = path.to_owned();
    if head.starts_with(b"\xFF\xFE") || head.starts_with(b"\xFE\xFF") || looks_like_utf16(&head) {
        return Err(InputError::Utf16 { path });
    }
    let skip = if head.starts_with(UTF8_BOM) { 3 } else { 0 };
    let body = &head[skip..];
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(InputError::Empty { path });
    }
    if body.contains(&b'\r') && !body.contains(&b'\n') && body.len() < head.capacity() {
        return Err(InputError::CrLineEnds { path });
    }
    Ok((head, skip))
}

/// Whether the file's last byte is a line feed.
fn ends_with_newline(file: &mut File) -> bool {
    let mut last = [0u8];
    file.seek(SeekFrom::End(-1)).is_ok() && file.read_exact(&mut last).is_ok() && last[0] == b'\n'
}

impl CsvSource {
    /// Opens the file, checks its encoding, detects the delimiter and maps the header.
    pub fn open(path: &Path, options: &ReadOptions) -> Result<CsvSource, InputError> {
        CsvSource::open_with(path, options, false)
    }

    /// Like [`CsvSource::open`], and hashes the file as it is read (see [`CsvSource::sha256`]).
    pub fn open_hashed(path: &Path, options: &ReadOptions) -> Result<CsvSource, InputError> {
        CsvSource::open_with(path, options, true)
    }

    fn open_with(path: &Path, options: &ReadOptions, hash: bool) -> Result<CsvSource, InputError> {
        let io = |source| InputError::Io {
            path: path.to_owned(),
            source,
        };
        // Before opening: opening a FIFO with no writer blocks, and a pipe cannot be read twice.
        if !std::fs::metadata(path).map_err(io)?.is_file() {
            return Err(InputError::NotAFile {
                path: path.to_owned(),
            });
        }
        let mut file = File::open(path).map_err(io)?;
        let (head, skip) = sniff(path, &mut file)?;
        let body = &head[skip..];
        // The header is the first line that is not blank.
        let first_line = body
            .split(|b| *b == b'\n')
            .find(|l| !l.iter().all(u8::is_ascii_whitespace))
            .unwrap_or(body);
        let delimiter = match options.delimiter {
            Some(d) => d,
            None => detect_delimiter(first_line).ok_or_else(|| InputError::NoDelimiter {
                path: path.to_owned(),
            })?,
        };
        let len = file
            .metadata()
            .map_err(io)?
            .len()
            .saturating_sub(skip as u64);
        let ends_with_newline = len == 0 || ends_with_newline(&mut file);
        file.seek(SeekFrom::Start(skip as u64)).map_err(io)?;
        let reader = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .has_headers(false)
            .flexible(true)
            // Records end at `\n` only (a `\r` before it is white space, trimmed with the
            // rest by validation), and fields are kept as written, so a record's line breaks
            // can be counted (see `next_record`).
            .terminator(csv::Terminator::Any(b'\n'))
            .trim(csv::Trim::None)
            // With `hash`, every byte passes the hash once, as it is read (the BOM skipped
            // above included).
            .from_reader(BufReader::with_capacity(
                64 * 1024,
                match hash {
                    true => Hashing::new(file, &head[..skip]),
                    false => Hashing::off(file),
                },
            ));
        let mut source = CsvSource {
            reader,
            path: path.to_owned(),
            header: Header::empty(),
            delimiter,
            len,
            ends_with_newline,
            at_end: false,
        };
        let mut record = ByteRecord::new();
        if source.next_record(&mut record)?.is_none() {
            return Err(InputError::Empty {
                path: path.to_owned(),
            });
        }
        if record.iter().any(|f| f.contains(&b'\n')) {
            return Err(InputError::HeaderQuote {
                path: path.to_owned(),
            });
        }
        source.header = Header::parse(path, &record, options)?;
        Ok(source)
    }

    /// Reads the next data record into `record`; returns the line (1-based) it starts on, or
    /// None at the end. Blank lines, and rows with nothing but delimiters and white space, are
    /// skipped.
    ///
    /// The line is worked out from where the record ends, less the line breaks inside it: the
    /// position csv gives for a record's start is taken before it skips empty lines.
    pub fn next_record(&mut self, record: &mut ByteRecord) -> Result<Option<u64>, InputError> {
        loop {
            match self.reader.read_byte_record(record) {
                Ok(true) if record.iter().all(|f| f.iter().all(u8::is_ascii_whitespace)) => {
                    continue
                }
                Ok(true) => {
                    let after = self.reader.position();
                    // The record ends with a line break of its own unless it is the last one and
                    // the file has none, or the file's last line break is inside an open quote.
                    let at_end = after.byte() >= self.len;
                    let open_quote_at_end = record
                        .iter()
                        .next_back()
                        .is_some_and(|f| f.ends_with(b"\n"));
                    let terminated = !(at_end && (!self.ends_with_newline || open_quote_at_end));
                    let breaks = record.iter().flatten().filter(|b| **b == b'\n').count() as u64;
                    let start = after.line() - u64::from(terminated) - breaks;
                    return Ok(Some(start.max(1)));
                }
                Ok(false) => {
                    self.at_end = true;
                    return Ok(None);
                }
                Err(e) => {
                    return Err(InputError::Io {
                        path: self.path.clone(),
                        source: csv_io(e),
                    })
                }
            }
        }
    }
}

impl CsvSource {
    /// The SHA-256 of the whole file, once its records have been read to the end; None before,
    /// and for a source not opened with [`CsvSource::open_hashed`].
    pub fn sha256(self) -> Option<Sha256> {
        let at_end = self.at_end;
        let digest = self.reader.into_inner().into_inner().finish()?;
        at_end.then_some(digest)
    }
}

fn csv_io(e: csv::Error) -> std::io::Error {
    match e.into_kind() {
        csv::ErrorKind::Io(e) => e,
        other => std::io::Error::other(format!("{other:?}")),
    }
}

/// UTF-16 without a BOM: many NUL bytes in alternate positions of an ASCII-looking start.
fn looks_like_utf16(head: &[u8]) -> bool {
    let sample = &head[..head.len().min(64)];
    if sample.len() < 8 {
        return false;
    }
    let zeros_even = sample.iter().step_by(2).filter(|b| **b == 0).count();
    let zeros_odd = sample
        .iter()
        .skip(1)
        .step_by(2)
        .filter(|b| **b == 0)
        .count();
    let half = sample.len() / 2;
    zeros_even * 10 >= half * 8 || zeros_odd * 10 >= half * 8
}

/// Picks `,`, `;` or tab: the one that occurs most in the header line outside quotes.
pub fn detect_delimiter(text: &[u8]) -> Option<u8> {
    let mut counts = [0usize; 3];
    let mut in_quotes = false;
    for &b in text {
        match b {
            b'"' => in_quotes = !in_quotes,
            b'\n' | b'\r' if !in_quotes => break,
            b',' if !in_quotes => counts[0] += 1,
            b';' if !in_quotes => counts[1] += 1,
            b'\t' if !in_quotes => counts[2] += 1,
            _ => {}
        }
    }
    let candidates = [b',', b';', b'\t'];
    let (i, n) = counts
        .iter()
        .enumerate()
        .max_by_key(|(i, n)| (**n, std::cmp::Reverse(*i)))?;
    if *n == 0 {
        // A single-column header: any delimiter reads it the same way.
        return Some(b',');
    }
    Some(candidates[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(cells: &[&str]) -> Result<Header, InputError> {
        Header::parse(
            Path::new("in.csv"),
            &ByteRecord::from(cells.to_vec()),
            &ReadOptions::default(),
        )
    }

    #[test]
    fn aliases_and_normalisation() {
        let h = header(&["Customer Tenant ID", "Object-Id", "usage_location", "UPN"]).unwrap();
        assert_eq!(h.position(Column::CustomerId), Some(0));
        assert_eq!(h.position(Column::UserId), Some(1));
        assert_eq!(h.position(Column::UsageLocation), Some(2));
        assert_eq!(h.position(Column::UserPrincipalName), Some(3));
        assert_eq!(h.position(Column::DisplayName), None);
    }

    #[test]
    fn an_entra_export_s_names_come_from_the_target_and_its_other_columns_are_named() {
        let h = header(&[
            "id",
            "userPrincipalName",
            "givenName",
            "surname",
            "usageLocation",
            "customer_id",
        ])
        .unwrap();
        assert_eq!(h.position(Column::UserId), Some(0));
        assert_eq!(h.position(Column::UserPrincipalName), Some(1));
        assert_eq!(h.position(Column::FirstName), Some(2));
        assert_eq!(h.position(Column::LastName), Some(3));
        assert!(
            !h.sends(Column::UserPrincipalName),
            "a UPN names the user, never sent"
        );
        let e = header(&["id", "customer_id", "usageLocation", "jobTitle"]).unwrap_err();
        assert!(
            e.to_string()
                .contains("\"jobTitle\" (column 4): not changeable through Partner Center"),
            "{e}"
        );
        let fields = ReadOptions {
            fields: Some(vec![Field::UsageLocation]),
            ..ReadOptions::default()
        };
        let record = ByteRecord::from(vec![
            "id",
            "customer_id",
            "usageLocation",
            "displayName",
            "jobTitle",
        ]);
        let h = Header::parse(Path::new("in.csv"), &record, &fields).unwrap();
        assert!(h.sends(Column::UsageLocation) && !h.sends(Column::DisplayName));
        assert_eq!(
            h.kept.iter().map(|(n, i)| (&**n, *i)).collect::<Vec<_>>(),
            [("displayName", 3)]
        );
    }

    #[test]
    fn graph_s_columns_are_fields_through_graph_and_unchangeable_through_partner_center() {
        let graph = ReadOptions {
            target: crate::targets::choose("graph"),
            ..ReadOptions::default()
        };
        let parse = |cells: &[&str], options: &ReadOptions| {
            Header::parse(
                Path::new("in.csv"),
                &ByteRecord::from(cells.to_vec()),
                options,
            )
        };
        let cells = [
            "id",
            "customer_id",
            "jobTitle",
            "telephoneNumber",
            "job_titel",
        ];
        let e = parse(&cells, &graph).unwrap_err().to_string();
        assert!(
            e.contains("\"job_titel\" (column 5), did you mean \"job_title\"?"),
            "{e}"
        );
        let h = parse(&cells[..4], &graph).unwrap();
        assert_eq!(h.position(Column::JobTitle), Some(2));
        assert_eq!(h.position(Column::BusinessPhones), Some(3));
        assert!(h.sends(Column::JobTitle) && h.sends(Column::BusinessPhones));
        let e = parse(&["id", "customer_id", "job_title", "mail"], &graph).unwrap_err();
        let e = e.to_string();
        assert!(
            e.contains("\"mail\" (column 4): not changeable through Microsoft Graph"),
            "{e}"
        );
        assert!(!e.contains("job_title"), "{e}");
        // Through Partner Center: named as a column it cannot change, never suggested.
        let e = header(&[
            "id",
            "customer_id",
            "usage_location",
            "job_title",
            "job_titel",
        ]);
        let e = e.unwrap_err().to_string();
        assert!(
            e.contains("\"job_title\" (column 4): not changeable through Partner Center"),
            "{e}"
        );
        assert!(!e.contains("did you mean"), "{e}");
    }

    #[test]
    fn unknown_column_names_the_closest() {
        let e = header(&["customer_id", "user_id", "usage_locaton"]).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("\"usage_locaton\""), "{msg}");
        assert!(msg.contains("did you mean \"usage_location\""), "{msg}");
        let e = header(&["customer_id", "user_id", "usage_location", "notes"]).unwrap_err();
        assert!(!e.to_string().contains("did you mean"), "{e}");
        let e = header(&["customer_id", "user_id", "User Name", "usage_location"]).unwrap_err();
        assert!(!e.to_string().contains("did you mean"), "{e}");
    }

    #[test]
    fn every_unknown_column_is_named_at_once() {
        let e = header(&["customer_id", "Notes", "user_id", "usage_locaton", "Dept"]).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("unknown columns \"Notes\" (column 2); \"usage_locaton\" (column 4), did you mean \"usage_location\"?; \"Dept\" (column 5);"), "{msg}");
    }

    #[test]
    fn duplicate_and_missing_columns() {
        let e = header(&["customer_id", "user_id", "id", "upn"]).unwrap_err();
        assert!(
            matches!(
                e,
                InputError::DuplicateColumn {
                    first: 2,
                    second: 3,
                    ..
                }
            ),
            "{e}"
        );
        let e = header(&["customer_id", "usage_location"]).unwrap_err();
        assert!(matches!(e, InputError::MissingUserId { .. }), "{e}");
        // Without user_id the UPN finds the users: it is no change.
        let e = header(&["customer_id", "upn"]).unwrap_err();
        assert!(matches!(e, InputError::NothingToUpdate { .. }), "{e}");
        assert!(header(&["customer_id", "upn", "usage_location"]).is_ok());
        let e = header(&["user_id", "upn"]).unwrap_err();
        assert!(matches!(e, InputError::MissingCustomer { .. }), "{e}");
        let e = header(&["customer_id", "user_id"]).unwrap_err();
        assert!(matches!(e, InputError::NothingToUpdate { .. }), "{e}");
    }

    #[test]
    fn delimiter_detection() {
        assert_eq!(detect_delimiter(b"a,b,c\n1;2"), Some(b','));
        assert_eq!(detect_delimiter(b"a;b;c\r\n"), Some(b';'));
        assert_eq!(detect_delimiter(b"a\tb\tc"), Some(b'\t'));
        assert_eq!(detect_delimiter(b"\"a,b\";c;d\n"), Some(b';'));
    }
}
