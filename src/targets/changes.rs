//! What a row asks to change and how a field compares with the live user: the vocabulary every
//! target shares. Uses only `targets::Field`.

use secrecy::SecretString;

use crate::targets::Field;

/// The cell that asks to clear a field (sent as JSON `null` by the targets that allow it); an
/// empty cell still means "unchanged".
pub const CLEAR: &str = "<clear>";

/// The fields a row changes; `None` means "leave unchanged" and is not sent.
#[derive(Clone, Debug, Default)]
pub struct Changes {
    pub usage_location: Option<String>,
    pub display_name: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub user_principal_name: Option<String>,
    /// A new password (a secret: `Debug` shows it redacted).
    pub password: Option<SecretString>,
    /// Whether the user must change the password at the next sign-in (sent with the password).
    pub force_change_password: bool,
    /// In column order: a target's own fields beyond the ones above (Graph's `jobTitle`, ...),
    /// each checked, and the fields the row clears (None: a [`CLEAR`] cell). A boxed slice, to
    /// keep a row small.
    pub more: Box<[(Field, Option<String>)]>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.usage_location.is_none()
            && self.display_name.is_none()
            && self.first_name.is_none()
            && self.last_name.is_none()
            && self.user_principal_name.is_none()
            && self.password.is_none()
            && self.more.is_empty()
    }
}

/// One field of a row, live against desired.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldChange {
    /// The API's name of the field (`usageLocation`, ...).
    pub field: &'static str,
    /// The live value; None when the user has none, or it cannot be read (a password).
    pub current: Option<String>,
    /// The desired value; None for a password, which is never shown.
    pub desired: Option<String>,
    /// Whether sending the row would change this field.
    pub changes: bool,
}
