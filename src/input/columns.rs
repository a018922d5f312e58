//! The input's column vocabulary: the columns the tool understands, how a header cell is
//! normalised and matched (the target's aliases included), and the suggestion for an unknown
//! column. Uses `core` and `targets`.

use crate::targets::{Field, Target};

/// A column the tool understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Column {
    CustomerId,
    UserId,
    UsageLocation,
    DisplayName,
    FirstName,
    LastName,
    /// The user's current UPN: context, never sent.
    UserPrincipalName,
    /// A new UPN (a rename): sent as the user principal name.
    NewUserPrincipalName,
    /// The customer's domain: context, never sent.
    CustomerDomain,
    Password,
    ForceChangePassword,
}

impl Column {
    pub const ALL: [Column; 11] = [
        Column::CustomerId,
        Column::UserId,
        Column::UsageLocation,
        Column::DisplayName,
        Column::FirstName,
        Column::LastName,
        Column::UserPrincipalName,
        Column::NewUserPrincipalName,
        Column::CustomerDomain,
        Column::Password,
        Column::ForceChangePassword,
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
            Column::NewUserPrincipalName => "new_user_principal_name",
            Column::CustomerDomain => "customer_domain",
            Column::Password => "password",
            Column::ForceChangePassword => "force_change_password",
        }
    }

    /// Accepted header spellings, already normalised (lower case, no spaces, `-` or `_`); a
    /// target adds the names of its own exports (`Target::column_alias`).
    pub fn aliases(self) -> &'static [&'static str] {
        match self {
            Column::CustomerId => &["customerid", "customertenantid", "tenantid"],
            Column::UserId => &["userid"],
            Column::UsageLocation => &["usagelocation"],
            Column::DisplayName => &["displayname"],
            Column::FirstName => &["firstname"],
            Column::LastName => &["lastname"],
            Column::UserPrincipalName => &["userprincipalname", "upn"],
            Column::NewUserPrincipalName => &["newuserprincipalname", "newupn"],
            Column::CustomerDomain => &["customerdomain"],
            Column::Password => &["password"],
            Column::ForceChangePassword => &["forcechangepassword", "forcechangepasswordnextlogin"],
        }
    }

    /// The field the column changes, if it changes one on its own (not the ids, the context
    /// columns or `force_change_password`, which qualifies a password).
    pub fn field(self) -> Option<Field> {
        Some(match self {
            Column::UsageLocation => Field::UsageLocation,
            Column::DisplayName => Field::DisplayName,
            Column::FirstName => Field::FirstName,
            Column::LastName => Field::LastName,
            Column::NewUserPrincipalName => Field::UserPrincipalName,
            Column::Password => Field::Password,
            _ => return None,
        })
    }

    /// Whether the column carries a change on its own.
    pub fn is_update(self) -> bool {
        self.field().is_some()
    }

    pub(crate) const COUNT: usize = 11;

    pub(crate) fn index(self) -> usize {
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

pub(crate) fn column_for(normalized: &str, target: &dyn Target) -> Option<Column> {
    let own = |n: &str| Column::ALL.into_iter().find(|c| c.aliases().contains(&n));
    own(normalized).or_else(|| target.column_alias(normalized).and_then(own))
}

/// How alike (normalised Damerau-Levenshtein, 1 = equal) an unknown name must be to a known
/// one to be suggested: about one edit in five characters (`usagelocaton` is 0.92 from
/// `usagelocation`; `username` is 0.75 from `surname`, an alias of last_name: not suggested).
const SUGGEST_AT_LEAST: f64 = 0.8;

/// The closest known column to an unknown header name, when it looks like a typo of one.
pub(crate) fn suggest(normalized: &str) -> Option<Column> {
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
    /// A user property the target cannot change (`jobTitle`), named by the target's title:
    /// not a typo.
    pub not_changeable_through: Option<&'static str>,
}

/// Unknown columns named in the message; the rest are counted.
const UNKNOWN_NAMED: usize = 10;

/// `"a" (column 3), did you mean "b"?; "c" (column 5)`, then `; and N more`.
pub(crate) fn list_unknown(columns: &[UnknownColumn]) -> String {
    let mut items: Vec<String> = columns
        .iter()
        .take(UNKNOWN_NAMED)
        .map(|c| {
            let hint = match (c.not_changeable_through, c.suggestion) {
                (Some(title), _) => format!(": not changeable through {title}"),
                (None, Some(s)) => format!(", did you mean \"{}\"?", s.name()),
                (None, None) => String::new(),
            };
            format!("\"{}\" (column {}){hint}", c.name, c.position)
        })
        .collect();
    if columns.len() > UNKNOWN_NAMED {
        items.push(format!("and {} more", columns.len() - UNKNOWN_NAMED));
    }
    items.join("; ")
}
