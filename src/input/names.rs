//! Rows that name their customer by domain and/or their user by user principal name instead of
//! by GUID: which rows do ([`names`]), what the whole input names (so listings keep only that),
//! and the record rewritten with the GUIDs once they are known ([`with_ids`]), so that the
//! ordinary validation then takes it. When a row has both a `user_id` and a UPN, the GUID is the
//! key and nothing is resolved. A UPN that found the user is its key, not a change: it is not
//! sent. Uses `core`, `targets` and the rest of `input`.

use std::collections::HashSet;
use std::path::Path;

use csv::ByteRecord;
use uuid::Uuid;

use crate::core::ids::parse_guid;
use crate::input::csv::{Column, CsvSource, Header, InputError, ReadOptions};

/// What a row names instead of GUIDs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Names {
    /// The customer cell when it is a domain (lower case); None when it is a GUID.
    pub customer_domain: Option<String>,
    /// The customer cell as written.
    pub customer: String,
    /// The UPN (lower case) when the row has no user_id; None when it has one.
    pub user_principal_name: Option<String>,
}

fn cell<'r>(record: &'r ByteRecord, header: &Header, col: Column) -> Option<&'r str> {
    let text = std::str::from_utf8(record.get(header.position(col)?)?).ok()?;
    Some(text.trim()).filter(|t| !t.is_empty())
}

/// A domain as a customer cell may give it: letters, digits, `-` and dots, with a dot.
fn is_domain(text: &str) -> bool {
    text.len() <= 253
        && text.contains('.')
        && !text.starts_with('.')
        && !text.ends_with('.')
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// What a row names instead of GUIDs; None when its ids need no resolution (or cannot have it:
/// the ordinary validation then says why).
pub fn names(record: &ByteRecord, header: &Header) -> Option<Names> {
    let customer = cell(record, header, Column::CustomerId);
    let customer_domain = customer
        .filter(|c| parse_guid(c).is_err() && is_domain(c))
        .map(str::to_ascii_lowercase);
    let user_principal_name = match cell(record, header, Column::UserId) {
        Some(_) => None,
        None => cell(record, header, Column::UserPrincipalName)
            .filter(|u| u.contains('@') && !u.chars().any(char::is_control))
            .map(str::to_lowercase),
    };
    // The user's id goes after the header's fields: a row with values past them is left to the
    // validation, which refuses it.
    let blank = |f: &[u8]| f.iter().all(u8::is_ascii_whitespace);
    let extra = record.iter().skip(header.width).any(|f| !blank(f));
    if extra && header.position(Column::UserId).is_none() {
        return None;
    }
    let customer_ok = customer_domain.is_some() || customer.is_some_and(|c| parse_guid(c).is_ok());
    if !customer_ok || (customer_domain.is_none() && user_principal_name.is_none()) {
        return None;
    }
    Some(Names {
        customer: customer.unwrap_or_default().to_string(),
        customer_domain,
        user_principal_name,
    })
}

/// What the whole input names (one pass, holding only the names).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Wanted {
    /// The UPNs (lower case) of rows without a user_id.
    pub upns: HashSet<String>,
    /// The customer cells of the rows that name something (domains and GUIDs).
    pub customers: HashSet<String>,
    /// Those of them whose users must be listed (rows naming a user by UPN).
    pub listed: HashSet<String>,
}

/// What the input at `path` names; empty when no row needs resolution.
pub fn wanted(path: &Path, options: &ReadOptions) -> Result<Wanted, InputError> {
    let mut source = CsvSource::open(path, options)?;
    let mut record = ByteRecord::new();
    let mut wanted = Wanted::default();
    while source.next_record(&mut record)?.is_some() {
        if let Some(names) = names(&record, &source.header) {
            let customer = names.customer_domain.unwrap_or(names.customer);
            if let Some(upn) = names.user_principal_name {
                wanted.upns.insert(upn);
                wanted.listed.insert(customer.clone());
            }
            wanted.customers.insert(customer);
        }
    }
    Ok(wanted)
}

/// The record with the customer's and the user's GUIDs in place of their names (the user's in
/// the column `with_user_id` adds when the file has none), and the UPN that found the user
/// emptied: it is the row's key, not a change.
pub fn with_ids(
    record: &ByteRecord,
    header: &Header,
    names: &Names,
    customer: Uuid,
    user: Option<Uuid>,
) -> ByteRecord {
    let customer_at = header.position(Column::CustomerId);
    let user_at = header.position(Column::UserId);
    let upn_at = header.position(Column::UserPrincipalName);
    let customer = customer.to_string();
    let Some(user) = user.map(|u| u.to_string()) else {
        // The user is named by its GUID: only the customer's cell changes.
        let mut out = record.clone();
        if let Some(i) = customer_at.filter(|i| *i < record.len()) {
            out = record
                .iter()
                .enumerate()
                .map(|(j, f)| if j == i { customer.as_bytes() } else { f })
                .collect();
        }
        return out;
    };
    let mut out = ByteRecord::new();
    for (i, field) in record.iter().enumerate() {
        if Some(i) == customer_at {
            out.push_field(customer.as_bytes());
        } else if Some(i) == user_at {
            out.push_field(user.as_bytes());
        } else if Some(i) == upn_at && names.user_principal_name.is_some() {
            out.push_field(b"");
        } else {
            out.push_field(field);
        }
    }
    if user_at.is_none() {
        // The file has no user_id column: the id goes where `Header::with_user_id` puts it,
        // after the header's fields (and any empty trailing ones the row has).
        out.truncate(header.width);
        while out.len() < header.width {
            out.push_field(b"");
        }
        out.push_field(user.as_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(cells: &[&str]) -> Header {
        Header::parse(
            Path::new("t.csv"),
            &ByteRecord::from(cells.to_vec()),
            &ReadOptions::default(),
        )
        .unwrap()
    }

    #[test]
    fn rows_name_customers_by_domain_and_users_by_upn_unless_a_guid_is_there() {
        let c = "0a6b1a8e-3c1f-4f0e-9a8e-1b2c3d4e5f60";
        let u = "4b10bf41-ab11-40e3-8c53-cd67849b50de";
        let h = header(&[
            "customer_id",
            "user_id",
            "user_principal_name",
            "usage_location",
        ]);
        let r = |cells: &[&str]| ByteRecord::from(cells.to_vec());
        assert_eq!(names(&r(&[c, u, "a@b.c", "DE"]), &h), None);
        let n = names(&r(&["Contoso.COM", u, "a@b.c", "DE"]), &h).unwrap();
        assert_eq!(
            (n.customer_domain.as_deref(), n.user_principal_name),
            (Some("contoso.com"), None)
        );
        let n = names(&r(&[c, "", "A@B.c", "DE"]), &h).unwrap();
        assert_eq!(
            (n.customer_domain, n.user_principal_name.as_deref()),
            (None, Some("a@b.c"))
        );
        // Not names: left to the ordinary validation.
        assert_eq!(names(&r(&["not a domain", "", "a@b.c", "DE"]), &h), None);
        assert_eq!(names(&r(&[c, "", "no-at-sign", "DE"]), &h), None);

        let h = header(&["customer_id", "user_principal_name", "usage_location"]);
        let n = names(&r(&["x.example", "a@b.c", "DE"]), &h).unwrap();
        let (cid, uid) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let rewritten = with_ids(&r(&["x.example", "a@b.c", "DE"]), &h, &n, cid, Some(uid));
        let wide = h.with_user_id().unwrap();
        assert_eq!(wide.width, 4);
        assert_eq!(wide.position(Column::UserId), Some(3));
        let cells: Vec<&[u8]> = rewritten.iter().collect();
        assert_eq!(
            cells,
            [
                cid.to_string().as_bytes(),
                b"",
                b"DE",
                uid.to_string().as_bytes()
            ]
        );
    }
}
