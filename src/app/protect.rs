//! Protected accounts: a password row whose user holds an administrative directory role is not
//! changed (recorded `protected` with the role), unless `--include-admins`; `--protected-roles`
//! narrows which roles count. The roles are read through the run's pacer, retries and tokens
//! (`app::listing`). Uses `core`, `input`, `send` and `app::listing`.

use std::future::Future;
use std::pin::Pin;

use crate::app::listing::{ListError, Lister};
use crate::input::rows::Row;
use crate::send::guard::{Guard, Guarded};

/// The check of a run that changes passwords.
pub struct Protection {
    pub lister: Lister,
    /// The roles that count, in lower case; empty: every role.
    pub roles: Vec<String>,
}

/// The first role of `held` that counts among `roles` (empty: every role counts).
fn counted<'a>(roles: &[String], held: &'a [String]) -> Option<&'a String> {
    held.iter()
        .find(|name| roles.is_empty() || roles.iter().any(|r| r.eq_ignore_ascii_case(name.trim())))
}

impl Guard for Protection {
    fn check<'a>(&'a self, row: &'a Row) -> Pin<Box<dyn Future<Output = Guarded> + Send + 'a>> {
        Box::pin(async move {
            match self.lister.roles(row.customer, row.user).await {
                Ok(held) => match counted(&self.roles, &held) {
                    Some(role) => Guarded::Protected(format!(
                        "not changed: the user holds the directory role {}; --include-admins changes administrators' passwords too",
                        crate::core::text::shorten(role, 100)
                    )),
                    None => Guarded::Allow,
                },
                Err(ListError::Stopped) => Guarded::Stopped,
                Err(ListError::Failed {
                    status,
                    code,
                    message,
                }) => Guarded::Unknown {
                    status,
                    code,
                    message,
                },
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::counted;

    #[test]
    fn every_role_counts_unless_narrowed() {
        let held = ["Directory Readers", "Company Administrator"].map(String::from);
        let roles = |r: &[&str]| r.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            counted(&[], &held).map(String::as_str),
            Some("Directory Readers")
        );
        let admin = roles(&["company administrator"]);
        assert_eq!(
            counted(&admin, &held).map(String::as_str),
            Some("Company Administrator")
        );
        assert_eq!(counted(&roles(&["Helpdesk Administrator"]), &held), None);
        assert_eq!(counted(&[], &[]), None, "no role: not protected");
    }
}
