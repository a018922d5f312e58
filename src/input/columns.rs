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
    // Fields only some targets change (Microsoft Graph's; see `targets::graph::fields`).
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
    pub const ALL: [Column; 25] = [
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
            Column::NewUserPrincipalName => "new_user_principal_name",
            Column::CustomerDomain => "customer_domain",
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
            Column::ForceChangePassword => &[
                "forcechangepassword",
                "forcechangepasswordnextlogin",
                "forcechangepasswordnextsignin",
            ],
            Column::JobTitle => &["jobtitle"],
            Column::Department => &["department"],
            Column::OfficeLocation => &["officelocation"],
            Column::CompanyName => &["companyname"],
            Column::EmployeeId => &["employeeid"],
            Column::MobilePhone => &["mobilephone"],
            Column::BusinessPhones => &["businessphones"],
            Column::City => &["city"],
            Column::State => &["state"],
            Column::Country => &["country"],
            Column::PostalCode => &["postalcode"],
            Column::StreetAddress => &["streetaddress"],
            Column::PreferredLanguage => &["preferredlanguage"],
            Column::AccountEnabled => &["accountenabled"],
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
            Column::CustomerId
            | Column::UserId
            | Column::UserPrincipalName
            | Column::CustomerDomain
            | Column::ForceChangePassword => return None,
        })
    }

    /// Whether the column carries a change on its own.
    pub fn is_update(self) -> bool {
        self.field().is_some()
    }

    /// Whether a run through `target` can use the column: every column that changes no
    /// field, and the columns of the target's fields (`job_title` only through Graph).
    pub fn usable_with(self, target: &dyn Target) -> bool {
        self.field().is_none_or(|f| target.fields().contains(&f))
    }

    pub(crate) const COUNT: usize = 25;

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

/// The column a (normalised) header name means for a run through `target`: one of its own
/// spellings or the target's export name for it. A field column the target cannot change and
/// knows as such is none: through Partner Center `job_title` is a column it cannot change (as
/// an Entra export's `jobTitle` is), not a field a row may fill.
pub(crate) fn column_for(normalized: &str, target: &dyn Target) -> Option<Column> {
    let own = |n: &str| Column::ALL.into_iter().find(|c| c.aliases().contains(&n));
    own(normalized)
        .or_else(|| target.column_alias(normalized).and_then(own))
        .filter(|c| c.usable_with(target) || !target.unchangeable_column(normalized))
}

/// How alike (normalised Damerau-Levenshtein, 1 = equal) an unknown name must be to a known
/// one to be suggested: about one edit in five characters (`usagelocaton` is 0.92 from
/// `usagelocation`; `username` is 0.75 from `surname`, an alias of last_name: not suggested).
const SUGGEST_AT_LEAST: f64 = 0.8;

/// The closest column `target` reads to an unknown header name, when it looks like a typo of one.
pub(crate) fn suggest(normalized: &str, target: &dyn Target) -> Option<Column> {
    let mut best: Option<(f64, Column)> = None;
    for col in Column::ALL.into_iter().filter(|c| c.usable_with(target)) {
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
