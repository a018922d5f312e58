//! Property tests of the row parser and validator: arbitrary bytes never panic, and a valid row round-trips to its exact request body.

use std::path::Path;

use bulkpatch::input::csv::{CsvSource, ReadOptions};
use bulkpatch::input::rows as validate;
use proptest::prelude::*;
use uuid::Uuid;

/// Reads a file the way a run does (header, first pass, validation of every record); returns
/// the number of valid rows, or None when the file is refused as a whole.
fn read_all(path: &Path, options: &ReadOptions) -> Option<usize> {
    let scanned = validate::scan(path, options, None).ok()?;
    let (rows, mut duplicates) = (scanned.rows, scanned.duplicates);
    let mut source = CsvSource::open(path, options).ok()?;
    let mut record = csv::ByteRecord::new();
    let mut valid = 0;
    let mut seen = 0;
    while let Ok(Some(line)) = source.next_record(&mut record) {
        seen += 1;
        if let Ok(row) = validate::validate(
            line,
            &record,
            &source.header,
            None,
            false,
            &*bulkpatch::targets::default_target(),
        ) {
            if duplicates.check(line, row.customer, row.user).is_none() {
                valid += 1;
            }
        }
    }
    assert_eq!(
        seen, rows,
        "the first pass and the second pass see the same records"
    );
    Some(valid)
}

const HEADER: &str =
    "customer_id,user_id,usage_location,display_name,first_name,last_name,new_upn,password";

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..2048), with_header in any::<bool>()) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.csv");
        let mut bytes = Vec::new();
        if with_header {
            bytes.extend_from_slice(HEADER.as_bytes());
            bytes.push(b'\n');
        }
        bytes.extend_from_slice(&body);
        std::fs::write(&path, &bytes).unwrap();
        for options in [ReadOptions::default(), ReadOptions { ignore_unknown_columns: true, ..ReadOptions::default() }] {
            let _ = read_all(&path, &options);
        }
    }

    #[test]
    fn arbitrary_cells_never_panic(cells in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 8..=9)) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.csv");
        let mut w = csv::WriterBuilder::new().flexible(true).from_path(&path).unwrap();
        w.write_record(HEADER.split(',')).unwrap();
        w.write_record(&cells).unwrap();
        w.flush().unwrap();
        let _ = read_all(&path, &ReadOptions::default());
    }

    #[test]
    fn a_valid_row_round_trips_to_its_exact_body(
        customer in any::<u128>(),
        user in any::<u128>(),
        country in proptest::sample::select(vec!["de", "DE", "Fr", "us", "GB", "nl", "jp", "BR"]),
        display in proptest::option::of("[A-Za-z][A-Za-z0-9 ,.'\"&;-]{0,40}[A-Za-z0-9]"),
        first in proptest::option::of("[A-Za-z][A-Za-z' -]{0,20}[a-z]"),
        last in proptest::option::of("[A-Za-z][A-Za-z' -]{0,20}[a-z]"),
        upn in proptest::option::of("[a-z0-9][a-z0-9._-]{0,15}@[a-z0-9-]{1,10}[.][a-z]{2,5}"),
        password in proptest::option::of("[A-Z][a-z]{4,10}[0-9]{2}[!#%*+=?@]"),
        delimiter in proptest::sample::select(vec![b',', b';', b'\t']),
        crlf in any::<bool>(),
        pad in "[ ]{0,2}",
    ) {
        let (customer, user) = (Uuid::from_u128(customer), Uuid::from_u128(user));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.csv");
        {
            let mut w = csv::WriterBuilder::new()
                .delimiter(delimiter)
                .terminator(if crlf { csv::Terminator::CRLF } else { csv::Terminator::Any(b'\n') })
                .from_path(&path)
                .unwrap();
            w.write_record(HEADER.split(',')).unwrap();
            let padded = |v: &Option<String>| v.as_ref().map(|v| format!("{pad}{v}{pad}")).unwrap_or_default();
            w.write_record([
                customer.to_string(),
                user.simple().to_string(),
                format!("{pad}{country}"),
                padded(&display),
                padded(&first),
                padded(&last),
                padded(&upn),
                password.clone().unwrap_or_default(),
            ])
            .unwrap();
            w.flush().unwrap();
        }
        let mut source = CsvSource::open(&path, &ReadOptions::default()).unwrap();
        let mut record = csv::ByteRecord::new();
        let line = source.next_record(&mut record).unwrap().unwrap();
        prop_assert_eq!(line, 2);
        let row = validate::validate(line, &record, &source.header, None, false, &*bulkpatch::targets::default_target())
            .map_err(|e| TestCaseError::fail(e.reason))?;
        prop_assert_eq!(row.customer, customer);
        prop_assert_eq!(row.user, user);

        let mut expected = serde_json::Map::new();
        expected.insert("usageLocation".into(), country.to_uppercase().into());
        for (key, value) in [("displayName", &display), ("firstName", &first), ("lastName", &last), ("userPrincipalName", &upn)] {
            if let Some(v) = value {
                expected.insert(key.into(), v.trim().into());
            }
        }
        if let Some(p) = &password {
            expected.insert("passwordProfile".into(), serde_json::json!({"password": p, "forceChangePassword": true}));
        }
        expected.insert("attributes".into(), serde_json::json!({"objectType": "CustomerUser"}));
        let body: serde_json::Value = serde_json::from_slice(&row.changes.to_body()).unwrap();
        prop_assert_eq!(body, serde_json::Value::Object(expected));
    }
}
