//! Turns a raw CSV record into a validated update (`Row`) or the reason it cannot be sent, and finds repeated (customer, user) pairs.

use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};

use csv::ByteRecord;
use secrecy::SecretString;
use uuid::Uuid;

use std::path::Path;

use crate::input::context::{self, Context};
use crate::input::csv::{Column, CsvSource, Header, InputError, ReadOptions};

use crate::core::digest::Sha256;
use crate::core::ids::parse_guid;
use crate::core::text::shorten;
use crate::input::passwords;
use crate::targets::{Changes, Field, Target, CLEAR};

/// A row ready to send.
#[derive(Clone, Debug)]
pub struct Row {
    /// Line of the input file where the row starts (the header is line 1).
    pub line: u64,
    pub customer: Uuid,
    pub user: Uuid,
    pub changes: Changes,
    /// FNV-1a of the row's (trimmed) fields, to recognise it on a resume.
    pub hash: u64,
    /// What names the user and tenant besides the GUIDs; never sent.
    pub context: Context,
}

/// A row that will not be sent, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invalid {
    pub line: u64,
    /// The customer and user cells as written (shortened), for the results file.
    pub customer: String,
    pub user: String,
    pub reason: String,
    /// FNV-1a of the row's fields.
    pub hash: u64,
    /// What names the user and tenant (empty for a misshapen record: its cells may be shifted).
    pub context: Box<Context>,
}

use crate::core::text::is_invisible;

fn invisible_name(c: char) -> &'static str {
    match c {
        '\u{00AD}' => ", soft hyphen",
        '\u{200B}' => ", zero-width space",
        '\u{200C}' => ", zero-width non-joiner",
        '\u{200D}' => ", zero-width joiner",
        '\u{200E}' => ", left-to-right mark",
        '\u{200F}' => ", right-to-left mark",
        '\u{FEFF}' => ", byte order mark",
        _ => "",
    }
}

/// Validates one data record against the header. `default_customer` stands in for a missing customer column.
/// With `generating`, a password will be generated for the row, so it needs no other change.
/// `target` says which fields may change and checks their values.
pub fn validate(
    line: u64,
    record: &ByteRecord,
    header: &Header,
    default_customer: Option<Uuid>,
    generating: bool,
    target: &dyn Target,
) -> Result<Row, Invalid> {
    let cell_text = |col: Column| -> String {
        header
            .position(col)
            .and_then(|i| record.get(i))
            .map(|b| shorten(String::from_utf8_lossy(b).trim(), 60))
            .unwrap_or_default()
    };
    let hash = crate::core::hash::fnv1a(record.iter().map(<[u8]>::trim_ascii));
    let row_context = || context_of(record, header);
    let invalid = |reason: String| Invalid {
        context: Box::new(row_context()),
        hash,
        line,
        customer: match header.position(Column::CustomerId) {
            Some(_) => cell_text(Column::CustomerId),
            None => default_customer.map(|c| c.to_string()).unwrap_or_default(),
        },
        user: cell_text(Column::UserId),
        reason,
    };
    // A record joined across lines or with the wrong number of fields: its id cells may hold
    // another column's value (a password), so they are kept only when they look like ids.
    let misshapen = |reason: String| {
        let mut row = invalid(reason);
        row.context = Box::default();
        for cell in [&mut row.customer, &mut row.user] {
            if !cell
                .chars()
                .all(|c| c.is_ascii_hexdigit() || "-{}".contains(c))
            {
                cell.clear();
            }
        }
        row
    };
    check_shape(line, record, header).map_err(misshapen)?;
    let cells = clean_cells(record, header).map_err(invalid)?;
    let (customer, user) = ids(&cells, header, default_customer).map_err(invalid)?;
    let changes = changes(&cells, header, generating, target).map_err(invalid)?;
    Ok(Row {
        line,
        customer,
        user,
        changes,
        hash,
        context: row_context(),
    })
}

/// Each known column's cell, trimmed (`None` when empty or when the header has no such column).
type Cells<'r> = [Option<&'r str>; Column::COUNT];

/// The record's shape against the header: one line, the header's number of fields (extra
/// empty ones allowed) and no value under an unnamed column; else the reason.
fn check_shape(line: u64, record: &ByteRecord, header: &Header) -> Result<(), String> {
    // A quoted value spanning lines: legitimate CSV, but no field takes a line break, and an
    // unbalanced quote produces exactly this by joining the lines up to the next quote.
    let breaks = record.iter().flatten().filter(|b| **b == b'\n').count() as u64;
    // A quote left open to the end of the file holds the file's last line break too.
    let trailing = record
        .iter()
        .next_back()
        .is_some_and(|f| f.ends_with(b"\n"));
    let breaks = breaks - u64::from(trailing);
    if breaks > 0 {
        return Err(format!(
            "lines {line}-{} were read as one row: a quoted value spans lines (an unbalanced quote?); nothing in them was sent",
            line + breaks
        ));
    }
    let blank = |f: &[u8]| f.iter().all(u8::is_ascii_whitespace);
    // Extra fields are accepted when empty (trailing delimiters).
    let extra_filled = record.iter().skip(header.width).any(|f| !blank(f));
    if record.len() < header.width || extra_filled {
        return Err(format!(
            "expected {} fields as in the header, found {}",
            header.width,
            record.len()
        ));
    }
    if let Some(i) = header
        .unnamed
        .iter()
        .find(|i| record.get(**i).is_some_and(|f| !blank(f)))
    {
        return Err(format!(
            "column {} has a value but no name in the header: name the column, or remove the value",
            i + 1
        ));
    }
    Ok(())
}

/// The row's context: its UPN and domain cells and the kept columns, read leniently.
fn context_of(record: &ByteRecord, header: &Header) -> Context {
    let cell = |i: Option<usize>| {
        i.and_then(|i| record.get(i))
            .map(context::clean)
            .unwrap_or_default()
    };
    Context {
        upn: cell(header.position(Column::UserPrincipalName)),
        customer_domain: cell(header.position(Column::CustomerDomain)),
        kept: header
            .kept
            .iter()
            .map(|(name, i)| (name.clone(), cell(Some(*i))))
            .filter(|(_, v)| !v.is_empty())
            .collect(),
    }
}

/// The cells of the ids and of the columns sent, as trimmed text; the reason when one is not
/// UTF-8 or holds an invisible or control character. Context columns are not checked.
fn clean_cells<'r>(record: &'r ByteRecord, header: &Header) -> Result<Cells<'r>, String> {
    let mut cells: Cells<'r> = [None; Column::COUNT];
    for col in Column::ALL {
        // force_change_password goes with a password sent or generated, not one left aside.
        let password_left_aside =
            header.position(Column::Password).is_some() && !header.sends(Column::Password);
        let checked = matches!(col, Column::CustomerId | Column::UserId)
            || (col == Column::ForceChangePassword && !password_left_aside)
            || header.sends(col);
        if let Some(i) = header.position(col).filter(|_| checked) {
            let raw = record.get(i).unwrap_or_default();
            let text = std::str::from_utf8(raw).map_err(|e| {
                format!(
                    "{} is not valid UTF-8 (byte {} of the cell): save the file as UTF-8",
                    col.name(),
                    e.valid_up_to() + 1
                )
            })?;
            let text = text.trim();
            if let Some(c) = text.chars().find(|c| is_invisible(*c)) {
                return Err(format!(
                    "{} contains an invisible character (U+{:04X}{}): retype the value",
                    col.name(),
                    c as u32,
                    invisible_name(c)
                ));
            }
            if text.chars().any(char::is_control) {
                return Err(format!("{} contains a control character", col.name()));
            }
            cells[col as usize] = (!text.is_empty()).then_some(text);
        }
    }
    Ok(cells)
}

/// The row's customer (its cell, or `default_customer` without the column) and user.
fn ids(
    cells: &Cells<'_>,
    header: &Header,
    default_customer: Option<Uuid>,
) -> Result<(Uuid, Uuid), String> {
    let cell = |col: Column| cells[col as usize];
    let customer = match (
        cell(Column::CustomerId),
        header.position(Column::CustomerId),
    ) {
        (Some(t), _) => parse_guid(t).map_err(|e| format!("customer_id {e}"))?,
        (None, Some(_)) => return Err("customer_id is empty".into()),
        (None, None) => default_customer
            .ok_or_else(|| "no customer_id column and no --customer-id".to_string())?,
    };
    let user = match cell(Column::UserId) {
        Some(t) => parse_guid(t).map_err(|e| format!("user_id {e}"))?,
        None => return Err("user_id is empty".into()),
    };
    Ok((customer, user))
}

/// The changes the row asks for, each checked by `target`; with `generating`, a row may ask
/// for none (a password is generated for it). A `<clear>` cell clears its field where the
/// target allows it.
fn changes(
    cells: &Cells<'_>,
    header: &Header,
    generating: bool,
    target: &dyn Target,
) -> Result<Changes, String> {
    let cell = |col: Column| cells[col as usize];
    let mut changes = Changes::default();
    let mut more = Vec::new();
    for col in Column::ALL {
        let (Some(field), Some(v)) = (col.field(), cell(col)) else {
            continue;
        };
        if !target.fields().contains(&field) {
            return Err(format!(
                "{} cannot be changed through {}",
                col.name(),
                target.name()
            ));
        }
        if v == CLEAR {
            if !target.can_clear(field) {
                return Err(format!(
                    "{} cannot be cleared ({CLEAR}) through {}",
                    col.name(),
                    target.name()
                ));
            }
            more.push((field, None));
            continue;
        }
        let slot = match field {
            Field::UsageLocation => &mut changes.usage_location,
            Field::DisplayName => &mut changes.display_name,
            Field::FirstName => &mut changes.first_name,
            Field::LastName => &mut changes.last_name,
            Field::UserPrincipalName => &mut changes.user_principal_name,
            Field::Password => {
                passwords::check(v).map_err(|reason| reason.to_string())?;
                changes.password = Some(SecretString::from(v.to_owned()));
                continue;
            }
            other => {
                let checked = target.check(other, v)?;
                more.push((other, Some(checked)));
                continue;
            }
        };
        *slot = Some(target.check(field, v)?);
    }
    changes.more = more.into();
    changes.force_change_password =
        passwords::parse_force_change(cell(Column::ForceChangePassword))?;
    if cell(Column::ForceChangePassword).is_some() && changes.password.is_none() && !generating {
        return Err("force_change_password is set but there is no password to go with it".into());
    }
    if changes.is_empty() && !generating {
        let which = if header.chosen.is_some() {
            "column chosen with --fields"
        } else {
            "update column"
        };
        return Err(format!(
            "nothing to change: every {which} of this row is empty"
        ));
    }
    Ok(changes)
}

/// The 64-bit key of a (customer, user) pair, for the duplicate check's first pass.
pub fn pair_key(customer: Uuid, user: Uuid) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (customer, user).hash(&mut h);
    h.finish()
}

/// Finds the second and later rows for the same (customer, user) pair.
///
/// The first pass collects one 64-bit key per row (`pair_key`) and keeps only those seen twice;
/// the second pass remembers the first line of just those pairs, so memory holds no whole rows.
#[derive(Clone, Debug, Default)]
pub struct Duplicates {
    repeated: HashSet<u64>,
    first_line: HashMap<(Uuid, Uuid), u64>,
}

impl Duplicates {
    /// Builds the checker from every row's key (the vector is sorted in place and dropped).
    pub fn from_keys(mut keys: Vec<u64>) -> Duplicates {
        keys.sort_unstable();
        let repeated = keys
            .windows(2)
            .filter(|w| w[0] == w[1])
            .map(|w| w[0])
            .collect();
        Duplicates {
            repeated,
            first_line: HashMap::new(),
        }
    }

    /// For a row in input order: the line of an earlier row with the same pair, if any.
    pub fn check(&mut self, line: u64, customer: Uuid, user: Uuid) -> Option<u64> {
        if !self.repeated.contains(&pair_key(customer, user)) {
            return None;
        }
        match self.first_line.entry((customer, user)) {
            std::collections::hash_map::Entry::Occupied(e) => Some(*e.get()),
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(line);
                None
            }
        }
    }
}

/// Distinct customers counted by the first pass (for the progress display); a file with more
/// shows progress for these only.
const CUSTOMERS_COUNTED: usize = 200_000;

/// What the first pass over the input found.
pub struct Scanned {
    pub rows: u64,
    pub duplicates: Duplicates,
    /// Each customer's rows (the first `CUSTOMERS_COUNTED` customers).
    pub rows_per_customer: std::collections::HashMap<Uuid, u64>,
    /// The file's SHA-256, as read.
    pub sha256: Sha256,
}

/// The first pass over the input: counts data rows (for the progress bar), builds the duplicate
/// check and hashes the file (SHA-256, as it is read). Holds one 64-bit key per row while it
/// runs, and no row.
pub fn scan(
    path: &Path,
    options: &ReadOptions,
    default_customer: Option<Uuid>,
) -> Result<Scanned, InputError> {
    let mut source = CsvSource::open_hashed(path, options)?;
    let customer_at = source.header.position(Column::CustomerId);
    let user_at = source.header.position(Column::UserId);
    let guid_at = |record: &ByteRecord, i: usize| {
        record
            .get(i)
            .and_then(|b| std::str::from_utf8(b).ok())
            .and_then(|t| parse_guid(t).ok())
    };
    let mut rows = 0u64;
    let mut keys = Vec::new();
    let mut customers = std::collections::HashMap::new();
    let mut record = ByteRecord::new();
    while source.next_record(&mut record)?.is_some() {
        rows += 1;
        let customer = match customer_at {
            Some(i) => guid_at(&record, i),
            None => default_customer,
        };
        let user = user_at.and_then(|i| guid_at(&record, i));
        if let (Some(c), Some(u)) = (customer, user) {
            keys.push(pair_key(c, u));
        }
        if let Some(c) = customer {
            if customers.len() < CUSTOMERS_COUNTED || customers.contains_key(&c) {
                *customers.entry(c).or_insert(0) += 1;
            }
        }
    }
    let sha256 = source.sha256().ok_or_else(|| InputError::Io {
        path: path.to_owned(),
        source: std::io::Error::other("the file was not read to its end"),
    })?;
    Ok(Scanned {
        rows,
        duplicates: Duplicates::from_keys(keys),
        rows_per_customer: customers,
        sha256,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const C: &str = "0a6b1a8e-3c1f-4f0e-9a8e-1b2c3d4e5f60";
    const U: &str = "4b10bf41-ab11-40e3-8c53-cd67849b50de";

    fn hdr(cells: &[&str]) -> Header {
        Header::parse(
            Path::new("t.csv"),
            &ByteRecord::from(cells.to_vec()),
            &ReadOptions::default(),
        )
        .unwrap()
    }

    fn check(cells: &[&str]) -> Result<Row, Invalid> {
        let h = hdr(&[
            "customer_id",
            "user_id",
            "usage_location",
            "display_name",
            "new_upn",
        ]);
        validate(
            2,
            &ByteRecord::from(cells.to_vec()),
            &h,
            None,
            false,
            &crate::targets::partner_center::PartnerCenter,
        )
    }

    #[test]
    fn body_has_only_changed_fields_in_camel_case() {
        let row = check(&[C, U, "de", "", ""]).unwrap();
        assert_eq!(
            String::from_utf8(row.changes.to_body()).unwrap(),
            r#"{"usageLocation":"DE","attributes":{"objectType":"CustomerUser"}}"#
        );
        let row = check(&[C, U, "", "Anna Berg", "anna@contoso.com"]).unwrap();
        assert_eq!(
            String::from_utf8(row.changes.to_body()).unwrap(),
            r#"{"displayName":"Anna Berg","userPrincipalName":"anna@contoso.com","attributes":{"objectType":"CustomerUser"}}"#
        );
    }

    #[test]
    fn guid_forms_are_normalised() {
        let braced = format!("{{{}}}", U.to_uppercase());
        let simple = U.replace('-', "");
        for form in [U.to_string(), braced, simple] {
            assert_eq!(parse_guid(&form).unwrap().to_string(), U);
        }
        assert!(parse_guid("urn:uuid:4b10bf41-ab11-40e3-8c53-cd67849b50de").is_err());
        assert!(parse_guid("not-a-guid").is_err());
    }

    #[test]
    fn each_kind_of_invalid_row_has_a_reason() {
        let cases: &[(&[&str], &str)] = &[
            (
                &["nope", U, "DE", "", ""],
                "customer_id \"nope\" is not a GUID",
            ),
            (&[C, "", "DE", "", ""], "user_id is empty"),
            (
                &[C, U, "XX", "", ""],
                "usage_location \"XX\" is not an ISO 3166-1",
            ),
            (&[C, U, "", "", "anna"], "does not look like local@domain"),
            (&[C, U, "", "", ""], "nothing to change"),
            (
                &[C, U, "DE", ""],
                "expected 5 fields as in the header, found 4",
            ),
            (
                &[C, U, "", "a\u{0}b", ""],
                "display_name contains a control character",
            ),
        ];
        for (cells, want) in cases {
            let e = check(cells).unwrap_err();
            assert!(e.reason.contains(want), "{cells:?}: {}", e.reason);
            assert_eq!(e.line, 2);
        }
        let long = "x".repeat(300);
        assert!(check(&[C, U, "", &long, ""])
            .unwrap_err()
            .reason
            .contains("limit is 256"));
    }

    #[test]
    fn invalid_utf8_is_a_row_error() {
        let h = hdr(&["customer_id", "user_id", "display_name"]);
        let rec = ByteRecord::from(vec![C.as_bytes(), U.as_bytes(), b"M\xFCller"]);
        let e = validate(
            7,
            &rec,
            &h,
            None,
            false,
            &crate::targets::partner_center::PartnerCenter,
        )
        .unwrap_err();
        assert!(e.reason.contains("not valid UTF-8"), "{}", e.reason);
        assert_eq!(e.line, 7);
    }

    #[test]
    fn passwords_go_in_a_password_profile_and_are_redacted_for_display() {
        let h = hdr(&[
            "customer_id",
            "user_id",
            "password",
            "force_change_password",
        ]);
        let row = |pw: &str, force: &str| {
            validate(
                3,
                &ByteRecord::from(vec![C, U, pw, force]),
                &h,
                None,
                false,
                &crate::targets::partner_center::PartnerCenter,
            )
        };
        let r = row("Renew456*", "").unwrap();
        assert_eq!(
            String::from_utf8(r.changes.to_body()).unwrap(),
            r#"{"passwordProfile":{"password":"Renew456*","forceChangePassword":true},"attributes":{"objectType":"CustomerUser"}}"#
        );
        assert_eq!(
            r.changes.to_redacted_body(),
            r#"{"passwordProfile":{"password":"<redacted>","forceChangePassword":true},"attributes":{"objectType":"CustomerUser"}}"#
        );
        assert!(!format!("{r:?}").contains("Renew456"));
        assert!(
            !row("Renew456*", "no")
                .unwrap()
                .changes
                .force_change_password
        );
        let weak = row("password", "").unwrap_err();
        assert!(weak.reason.contains("at least 3 of"), "{}", weak.reason);
        assert!(row("", "yes").unwrap_err().reason.contains("no password"));
        assert!(row("Renew456*", "maybe")
            .unwrap_err()
            .reason
            .contains("force_change_password"));
    }

    #[test]
    fn duplicates_name_the_earlier_line() {
        let c = Uuid::parse_str(C).unwrap();
        let u = Uuid::parse_str(U).unwrap();
        let other = Uuid::new_v4();
        let mut d = Duplicates::from_keys(vec![pair_key(c, u), pair_key(c, other), pair_key(c, u)]);
        assert_eq!(d.check(2, c, u), None);
        assert_eq!(d.check(3, c, other), None);
        assert_eq!(d.check(9, c, u), Some(2));
        assert_eq!(d.check(10, c, u), Some(2));
    }
}
