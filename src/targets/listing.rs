//! What a target lists for `export` and for name resolution: the collections (a partner's
//! customers, a customer's users), one page of items as read from a (hostile) answer, and the
//! request for the next page. Plain data; each target fills it from its own API. Uses only
//! `core` and `targets`.

use uuid::Uuid;

/// The longest text kept from a listed item (a name, a domain, a UPN); an item with a longer
/// one is skipped as malformed rather than cut (a cut name sent back would rename the user).
pub const MAX_ITEM_TEXT: usize = 1024;
/// The most items one page may hold; a page with more is refused.
pub const MAX_PAGE_ITEMS: usize = 1000;
/// The most pages one collection may take: a server that never ends a listing is stopped here.
pub const MAX_PAGES: usize = 10_000;

/// A collection a target can list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Collection {
    /// The partner's customers.
    Customers,
    /// One customer's users.
    Users { customer: Uuid },
}

/// One customer as a listing shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CustomerItem {
    pub id: Uuid,
    /// The customer's (initial) domain, `contoso.onmicrosoft.com`.
    pub domain: String,
    pub name: String,
}

/// One user as a listing shows it; a text the answer lacked is empty.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserItem {
    pub id: Uuid,
    pub user_principal_name: String,
    pub display_name: String,
    pub first_name: String,
    pub last_name: String,
    pub usage_location: String,
}

/// One page of a collection.
#[derive(Clone, Debug, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Items left out because they were malformed (no GUID id, a text too long, ...).
    pub malformed: usize,
    /// Where the next page is; None on the last page.
    pub next: Option<NextLink>,
}

/// The next page of a collection, as the answer named it: checked to stay in the same
/// collection, with the headers it must carry (a continuation token).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NextLink {
    /// Appended to the base URL: `/v1/customers?size=100&seekOperation=Next`.
    pub path_and_query: String,
    /// Header names in lower case.
    pub headers: Vec<(&'static str, String)>,
}

/// Why a page could not be read (the whole page: its listing stops there).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PageError(pub String);

/// The answer of a target that cannot list.
pub fn unsupported(what: &str) -> PageError {
    PageError(format!("this target cannot list {what}"))
}
