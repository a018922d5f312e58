//! Reads the input CSV as a stream: encoding checks, delimiter detection, header-to-column mapping, and raw records with their line numbers.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::core::text::shorten;
use crate::targets::Field;
use csv::ByteRecord;

/// A column the tool understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Column {
    CustomerId,
    UserId,
    UsageLocation,
    DisplayName,
    FirstName,
    LastName,
    UserPrincipalName,
    Password,
    ForceChangePassword,
    // Microsoft Graph's own fields (see `targets::graph::fields`).
    JobTitle,
    Department,
    OfficeLocation,
    CompanyName,
    EmployeeId,
    MobilePhone,
    BusinessPhones,
    City,
    State,
    Country,
    PostalCode,
    StreetAddress,
    PreferredLanguage,
    AccountEnabled,
}

impl Column {
    pub const ALL: [Column; 23] = [
        Column::CustomerId,
        Column::UserId,
        Column::UsageLocation,
        Column::DisplayName,
        Column::FirstName,
        Column::LastName,
        Column::UserPrincipalName,
        Column::Password,
        Column::ForceChangePassword,
        Column::JobTitle,
        Column::Department,
        Column::OfficeLocation,
        Column::CompanyName,
        Column::EmployeeId,
        Column::MobilePhone,
        Column::BusinessPhones,
        Column::City,
        Column::State,
        Column::Country,
        Column::PostalCode,
        Column::StreetAddress,
        Column::PreferredLanguage,
        Column::AccountEnabled,
    ];

    /// The name used in documentation and messages.
    pub fn name(self) -> &'static str {
        match self {
            Column::CustomerId => "customer_id",
            Column::UserId => "user_id",
            Column::UsageLocation => "usage_location",
            Column::DisplayName => "display_name",
            Column::FirstName => "first_name",
            Column::LastName => "last_name",
            Column::UserPrincipalName => "user_principal_name",
            Column::Password => "password",
            Column::ForceChangePassword => "force_change_password",
            Column::JobTitle => "job_title",
            Column::Department => "department",
            Column::OfficeLocation => "office_location",
            Column::CompanyName => "company_name",
            Column::EmployeeId => "employee_id",
            Column::MobilePhone => "mobile_phone",
            Column::BusinessPhones => "business_phones",
            Column::City => "city",
            Column::State => "state",
            Column::Country => "country",
            Column::PostalCode => "postal_code",
            Column::StreetAddress => "street_address",
            Column::PreferredLanguage => "preferred_language",
            Column::AccountEnabled => "account_enabled",
        }
    }

    /// Accepted header spellings, already normalised (lower case, no spaces, `-` or `_`).
    pub fn aliases(self) -> &'static [&'static str] {
        match self {
            Column::CustomerId => &["customerid", "customertenantid", "tenantid"],
            Column::UserId => &["userid", "id", "objectid"],
            Column::UsageLocation => &["usagelocation"],
            Column::DisplayName => &["displayname"],
            Column::FirstName => &["firstname", "givenname"],
            Column::LastName => &["lastname", "surname"],
            Column::UserPrincipalName => &["userprincipalname", "upn"],
            Column::Password => &["password"],
            Column::ForceChangePassword => &[
                "forcechangepassword",
                "forcechangepasswordnextlogin",
                "forcechangepasswordnextsignin",
            ],
            Column::JobTitle => &["jobtitle", "title"],
            Column::Department => &["department"],
            Column::OfficeLocation => &["officelocation", "office", "physicaldeliveryofficename"],
            Column::CompanyName => &["companyname"],
            Column::EmployeeId => &["employeeid"],
            Column::MobilePhone => &["mobilephone", "mobile"],
            Column::BusinessPhones => &[
                "businessphones",
                "businessphone",
                "officephone",
                "telephonenumber",
            ],
            Column::City => &["city"],
            Column::State => &["state", "stateorprovince"],
            Column::Country => &["country", "countryorregion"],
            Column::PostalCode => &["postalcode", "ziporpostalcode"],
            Column::StreetAddress => &["streetaddress"],
            Column::PreferredLanguage => &["preferredlanguage"],
            Column::AccountEnabled => &["accountenabled"],
        }
    }

    /// Whether the column carries a change on its own (as opposed to identifying the user, or qualifying a password).
    pub fn is_update(self) -> bool {
        !matches!(
            self,
            Column::CustomerId | Column::UserId | Column::ForceChangePassword
        )
    }

    pub(crate) const COUNT: usize = 23;

    /// The field the column changes (None for the ids and `force_change_password`).
    pub fn field(self) -> Option<Field> {
        Some(match self {
            Column::CustomerId | Column::UserId | Column::ForceChangePassword => return None,
            Column::UsageLocation => Field::UsageLocation,
            Column::DisplayName => Field::DisplayName,
            Column::FirstName => Field::FirstName,
            Column::LastName => Field::LastName,
            Column::UserPrincipalName => Field::UserPrincipalName,
            Column::Password => Field::Password,
            Column::JobTitle => Field::JobTitle,
            Column::Department => Field::Department,
            Column::OfficeLocation => Field::OfficeLocation,
            Column::CompanyName => Field::CompanyName,
            Column::EmployeeId => Field::EmployeeId,
            Column::MobilePhone => Field::MobilePhone,
            Column::BusinessPhones => Field::BusinessPhones,
            Column::City => Field::City,
            Column::State => Field::State,
            Column::Country => Field::Country,
            Column::PostalCode => Field::PostalCode,
            Column::StreetAddress => Field::StreetAddress,
            Column::PreferredLanguage => Field::PreferredLanguage,
            Column::AccountEnabled => Field::AccountEnabled,
        })
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Lower-cases and removes spaces, `-` and `_`: the form header names are matched in.
pub fn normalize_header(name: &str) -> String {
    name.chars()
        .filter(|c| !matches!(c, ' ' | '-' | '_' | '\t'))
        .flat_map(char::to_lowercase)
        .collect()
}

fn column_for(normalized: &str) -> Option<Column> {
    Column::ALL
        .into_iter()
        .find(|c| c.aliases().contains(&normalized))
}

/// How alike (normalised Damerau-Levenshtein, 1 = equal) an unknown name must be to a known
/// one to be suggested: about one edit in five characters (`usagelocaton` is 0.92 from
/// `usagelocation`; `username` is 0.75 from `surname`, an alias of last_name: not suggested).
const SUGGEST_AT_LEAST: f64 = 0.8;

/// The closest known column to an unknown header name, when it looks like a typo of one.
fn suggest(normalized: &str) -> Option<Column> {
    let mut best: Option<(f64, Column)> = None;
    for col in Column::ALL {
        for alias in col.aliases() {
            let score = strsim::normalized_damerau_levenshtein(normalized, alias);
            let long_enough = normalized.len() >= 3 || alias.len() <= 3;
            if long_enough && score >= SUGGEST_AT_LEAST && best.is_none_or(|(b, _)| score > b) {
                best = Some((score, col));
            }
        }
    }
    best.map(|(_, c)| c)
}

/// A header name that matches no column.
#[derive(Clone, Debug)]
pub struct UnknownColumn {
    pub name: String,
    /// 1-based.
    pub position: usize,
    /// The known column it is close to, if any.
    pub suggestion: Option<Column>,
}

/// Unknown columns named in the message; the rest are counted.
const UNKNOWN_NAMED: usize = 10;

/// `"a" (column 3), did you mean "b"?; "c" (column 5)`, then `; and N more`.
fn list_unknown(columns: &[UnknownColumn]) -> String {
    let mut items: Vec<String> = columns
        .iter()
        .take(UNKNOWN_NAMED)
        .map(|c| {
            let hint = c
                .suggestion
                .map(|s| format!(", did you mean \"{}\"?", s.name()))
                .unwrap_or_default();
            format!("\"{}\" (column {}){hint}", c.name, c.position)
        })
        .collect();
    if columns.len() > UNKNOWN_NAMED {
        items.push(format!("and {} more", columns.len() - UNKNOWN_NAMED));
    }
    items.join("; ")
}

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
    #[error("input file {path}: unknown column{} {}; use --ignore-unknown-columns to skip columns the tool does not use", if columns.len() > 1 { "s" } else { "" }, list_unknown(columns))]
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
        "input file {path}: no user_id column (accepted names: user_id, userid, id, objectid)"
    )]
    MissingUserId { path: PathBuf },
    #[error("input file {path}: no customer_id column (accepted names: customer_id, customer_tenant_id, tenant_id) and no --customer-id given")]
    MissingCustomer { path: PathBuf },
    #[error("input file {path}: no column to update: add at least one of usage_location, display_name, first_name, last_name, user_principal_name, password (or use --generate-passwords)")]
    NothingToUpdate { path: PathBuf },
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
}

impl Header {
    fn empty() -> Header {
        Header {
            positions: [None; Column::COUNT],
            width: 0,
            names: Vec::new(),
            unnamed: Vec::new(),
            hash: 0,
        }
    }

    /// Maps the header row to columns, or explains what is wrong with it.
    pub fn parse(
        path: &Path,
        record: &ByteRecord,
        options: &ReadOptions,
    ) -> Result<Header, InputError> {
        let ignore_unknown = options.ignore_unknown_columns;
        let has_default_customer = options.has_default_customer;
        let mut positions: [Option<usize>; Column::COUNT] = [None; Column::COUNT];
        let mut names: Vec<String> = Vec::with_capacity(record.len());
        let mut unnamed = Vec::new();
        let mut unknown = Vec::new();
        for (i, raw) in record.iter().enumerate() {
            let name = std::str::from_utf8(raw)
                .map_err(|_| InputError::HeaderNotUtf8 {
                    path: path.to_owned(),
                })?
                .trim()
                .to_string();
            let normalized = normalize_header(&name);
            let known = |col: &Column| match (col.field(), options.fields) {
                (Some(field), Some(fields)) => !ignore_unknown || fields.contains(&field),
                _ => true,
            };
            match column_for(&normalized).filter(known) {
                Some(col) => {
                    if let Some(first) = positions[col.index()] {
                        return Err(InputError::DuplicateColumn {
                            path: path.to_owned(),
                            column: col.name(),
                            first: first + 1,
                            first_name: names[first].clone(),
                            second: i + 1,
                            second_name: name,
                        });
                    }
                    positions[col.index()] = Some(i);
                }
                None if ignore_unknown => {}
                // Unnamed columns come from trailing delimiters (Excel writes them): they are
                // accepted as long as they stay empty (a row with a value in one is invalid).
                None if normalized.is_empty() => unnamed.push(i),
                None => unknown.push(UnknownColumn {
                    suggestion: suggest(&normalized),
                    name: shorten(&name, 60),
                    position: i + 1,
                }),
            }
            names.push(name);
        }
        if !unknown.is_empty() {
            return Err(InputError::UnknownColumns {
                path: path.to_owned(),
                columns: unknown,
            });
        }
        let header = Header {
            positions,
            width: record.len(),
            names,
            unnamed,
            hash: crate::core::hash::fnv1a(record.iter().map(<[u8]>::trim_ascii)),
        };
        if header.position(Column::UserId).is_none() {
            return Err(InputError::MissingUserId {
                path: path.to_owned(),
            });
        }
        if header.position(Column::CustomerId).is_none() && !has_default_customer {
            return Err(InputError::MissingCustomer {
                path: path.to_owned(),
            });
        }
        if options.generate_passwords && header.position(Column::Password).is_some() {
            return Err(InputError::PasswordColumnAndGeneration {
                path: path.to_owned(),
            });
        }
        if !options.generate_passwords
            && !Column::ALL
                .into_iter()
                .any(|c| c.is_update() && header.position(c).is_some())
        {
            return Err(InputError::NothingToUpdate {
                path: path.to_owned(),
            });
        }
        Ok(header)
    }

    /// The record index of a column, if the file has it.
    pub fn position(&self, col: Column) -> Option<usize> {
        self.positions[col.index()]
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
    /// The fields the target can change: with `ignore_unknown_columns`, a column of any other
    /// field is skipped too (an Entra export's `department` through Partner Center); without,
    /// a row that fills it is invalid. None: every column is known.
    pub fields: Option<&'static [Field]>,
}

/// An open input file positioned after its header.
pub struct CsvSource {
    reader: csv::Reader<BufReader<File>>,
    pub path: PathBuf,
    pub header: Header,
    pub delimiter: u8,
    /// Bytes the reader reads (after a BOM).
    len: u64,
    /// Whether the last line ends with a line break.
    ends_with_newline: bool,
}

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

impl CsvSource {
    /// Opens the file, checks its encoding, detects the delimiter and maps the header.
    pub fn open(path: &Path, options: &ReadOptions) -> Result<CsvSource, InputError> {
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
        let mut head = Vec::with_capacity(64 * 1024);
        (&mut file)
            .take(1024 * 1024)
            .read_to_end(&mut head)
            .map_err(io)?;
        if head.starts_with(b"\xFF\xFE") || head.starts_with(b"\xFE\xFF") || looks_like_utf16(&head)
        {
            return Err(InputError::Utf16 {
                path: path.to_owned(),
            });
        }
        let skip = if head.starts_with(UTF8_BOM) { 3 } else { 0 };
        let body = &head[skip..];
        if body.iter().all(|b| b.is_ascii_whitespace()) {
            return Err(InputError::Empty {
                path: path.to_owned(),
            });
        }
        if body.contains(&b'\r') && !body.contains(&b'\n') && body.len() < head.capacity() {
            return Err(InputError::CrLineEnds {
                path: path.to_owned(),
            });
        }
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
        let ends_with_newline = {
            let mut last = [0u8];
            len == 0
                || (file.seek(SeekFrom::End(-1)).is_ok()
                    && file.read_exact(&mut last).is_ok()
                    && last[0] == b'\n')
        };
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
            .from_reader(BufReader::with_capacity(64 * 1024, file));
        let mut source = CsvSource {
            reader,
            path: path.to_owned(),
            header: Header::empty(),
            delimiter,
            len,
            ends_with_newline,
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
                Ok(false) => return Ok(None),
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
        let e = header(&["customer_id", "upn"]).unwrap_err();
        assert!(matches!(e, InputError::MissingUserId { .. }), "{e}");
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
