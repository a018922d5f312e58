//! The stored sign-in of `bulkpatch login`: what it holds (the refresh token, the last access
//! token and its expiry, who signed in, the authority, tenant and client it was issued by, when
//! the refresh token was last used) and where it lives: the operating system's keyring when
//! one answers, else a private file `<config dir>/bulkpatch/sign-in.json` (`BULKPATCH_HOME`
//! replaces that folder and forces the file). The file is created 0600 and replaced atomically,
//! never read through a symbolic link. Secrets are `secrecy` types, registered with the
//! redaction point as they are read. Uses `core` and `settings::credentials`.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use secrecy::{ExposeSecret, SecretString};

use super::credentials::{Credentials, RefreshGrant};

/// Overrides the folder of the stored sign-in and forces the file store.
pub const HOME_ENV: &str = "BULKPATCH_HOME";
/// The file's name in that folder.
pub const FILE_NAME: &str = "sign-in.json";
/// The keyring entry: service and user.
const KEYRING_SERVICE: &str = "bulkpatch";
const KEYRING_USER: &str = "sign-in";
/// A record is a few kilobytes; a bigger file is not one.
const MAX_RECORD: u64 = 256 * 1024;
/// A refresh token unused this long dies (Entra ID: AADSTS700082).
pub const REFRESH_TOKEN_IDLE_LIFETIME: Duration = Duration::from_secs(90 * 24 * 3600);

/// A stored sign-in cannot be read, written or removed.
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    #[error("cannot read the stored sign-in {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the stored sign-in {where_} is not readable ({problem}): run `bulkpatch logout`, then `bulkpatch login` again")]
    Corrupt { where_: String, problem: String },
    #[error("cannot save the sign-in to {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no folder for the stored sign-in: set {HOME_ENV} (neither the platform's config folder nor HOME is set)")]
    NoFolder,
}

/// Who signed in, where, and the tokens the sign-in gave.
pub struct SignIn {
    /// `https://login.microsoftonline.com`, without a trailing slash.
    pub authority: String,
    /// The tenant signed in to (an id, a domain or `organizations`): the token URL's.
    pub tenant: String,
    pub client_id: String,
    pub scope: String,
    /// The id token's `preferred_username`, `name` and `tid` (escaped and shortened).
    pub account: Option<String>,
    pub name: Option<String>,
    pub tenant_id: Option<String>,
    pub refresh_token: SecretString,
    /// The last access token and when it expires.
    pub access_token: Option<(SecretString, SystemTime)>,
    pub signed_in_at: SystemTime,
    /// When the refresh token was issued or last redeemed.
    pub refresh_used_at: SystemTime,
}

impl std::fmt::Debug for SignIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignIn")
            .field("authority", &self.authority)
            .field("tenant", &self.tenant)
            .field("account", &self.account)
            .finish_non_exhaustive()
    }
}

impl SignIn {
    /// `{authority}/{tenant}/oauth2/v2.0/{endpoint}` (`token`, `authorize`, `devicecode`).
    pub fn endpoint(&self, endpoint: &str) -> String {
        endpoint_url(&self.authority, &self.tenant, endpoint)
    }
}

/// `{authority}/{tenant}/oauth2/v2.0/{endpoint}`.
pub fn endpoint_url(authority: &str, tenant: &str, endpoint: &str) -> String {
    format!(
        "{}/{}/oauth2/v2.0/{endpoint}",
        authority.trim_end_matches('/'),
        tenant.trim()
    )
}

/// The record as stored (JSON): plain strings, only between the disk and [`SignIn`]; no Debug.
#[derive(serde::Serialize, serde::Deserialize)]
struct OnDisk {
    version: u32,
    authority: String,
    tenant: String,
    client_id: String,
    scope: String,
    account: Option<String>,
    name: Option<String>,
    tenant_id: Option<String>,
    refresh_token: String,
    access_token: Option<String>,
    access_expires_at: Option<u64>,
    signed_in_at: u64,
    refresh_used_at: u64,
}

fn secs(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn time(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH
        .checked_add(Duration::from_secs(secs))
        .unwrap_or(SystemTime::UNIX_EPOCH)
}

/// A stored text (a name, an account) as it may be kept: controls escaped, at most 200 characters.
pub fn tame(text: &str) -> String {
    let text = crate::core::redact::escape_controls_in_line(text);
    crate::core::text::shorten(&text, 200)
}

impl SignIn {
    fn to_json(&self) -> Vec<u8> {
        let stored = OnDisk {
            version: 1,
            authority: self.authority.clone(),
            tenant: self.tenant.clone(),
            client_id: self.client_id.clone(),
            scope: self.scope.clone(),
            account: self.account.clone(),
            name: self.name.clone(),
            tenant_id: self.tenant_id.clone(),
            refresh_token: self.refresh_token.expose_secret().to_owned(),
            access_token: self
                .access_token
                .as_ref()
                .map(|(t, _)| t.expose_secret().to_owned()),
            access_expires_at: self.access_token.as_ref().map(|(_, at)| secs(*at)),
            signed_in_at: secs(self.signed_in_at),
            refresh_used_at: secs(self.refresh_used_at),
        };
        let mut json = serde_json::to_vec_pretty(&stored).unwrap_or_default();
        json.push(b'\n');
        json
    }

    fn from_json(text: &[u8], where_: &str) -> Result<SignIn, SignInError> {
        let corrupt = |problem: String| SignInError::Corrupt {
            where_: where_.to_string(),
            problem,
        };
        // serde's message may quote a value (a secret): only where the fault is.
        let s: OnDisk = serde_json::from_slice(text).map_err(|e| {
            corrupt(format!(
                "not a sign-in record at line {}, column {}",
                e.line(),
                e.column()
            ))
        })?;
        if s.refresh_token.trim().is_empty() {
            return Err(corrupt("it holds no refresh token".into()));
        }
        crate::core::redact::register(&s.refresh_token);
        let access_token = match (s.access_token, s.access_expires_at) {
            (Some(token), Some(at)) if !token.is_empty() => {
                crate::core::redact::register(&token);
                Some((SecretString::from(token), time(at)))
            }
            _ => None,
        };
        Ok(SignIn {
            authority: s.authority,
            tenant: s.tenant,
            client_id: s.client_id,
            scope: s.scope,
            account: s.account.as_deref().map(tame),
            name: s.name.as_deref().map(tame),
            tenant_id: s.tenant_id.as_deref().map(tame),
            refresh_token: SecretString::from(s.refresh_token),
            access_token,
            signed_in_at: time(s.signed_in_at),
            refresh_used_at: time(s.refresh_used_at),
        })
    }
}

/// Where the sign-in is kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Store {
    /// Only this file (`BULKPATCH_HOME` set).
    File(PathBuf),
    /// The keyring when a keyring service answers, else this file.
    Keyring { file: PathBuf },
}

impl Store {
    /// The store this machine and environment give.
    pub fn locate() -> Result<Store, SignInError> {
        if let Some(home) = std::env::var_os(HOME_ENV).filter(|h| !h.is_empty()) {
            return Ok(Store::File(PathBuf::from(home).join(FILE_NAME)));
        }
        let dir = config_dir().ok_or(SignInError::NoFolder)?;
        Ok(Store::Keyring {
            file: dir.join("bulkpatch").join(FILE_NAME),
        })
    }

    /// The file used when no keyring answers.
    pub fn file(&self) -> &Path {
        match self {
            Store::File(f) | Store::Keyring { file: f } => f,
        }
    }

    /// The stored sign-in, if there is one.
    pub fn load(&self) -> Result<Option<SignIn>, SignInError> {
        if let Store::Keyring { .. } = self {
            match keyring(|e| e.get_password()) {
                Ok(text) => return SignIn::from_json(text.as_bytes(), "in the keyring").map(Some),
                Err(keyring::Error::NoEntry) => {}
                Err(e) => {
                    tracing::debug!("no keyring answered ({e}); looking for the sign-in file")
                }
            }
        }
        let path = self.file();
        let Some(bytes) = read_private(path)? else {
            return Ok(None);
        };
        SignIn::from_json(&bytes, &path.display().to_string()).map(Some)
    }

    /// Saves `sign_in` (replacing any earlier one); returns where it went, for a person.
    pub fn save(&self, sign_in: &SignIn) -> Result<String, SignInError> {
        let json = sign_in.to_json();
        if let Store::Keyring { file } = self {
            let text = String::from_utf8_lossy(&json).into_owned();
            match keyring(move |e| e.set_password(&text)) {
                Ok(()) => {
                    // An older file (from a time without a keyring) would only mislead.
                    let _ = std::fs::remove_file(file);
                    return Ok("the system keyring".into());
                }
                Err(e) => {
                    tracing::debug!("no keyring answered ({e}); saving the sign-in to a file")
                }
            }
        }
        let path = self.file();
        let write = |source| SignInError::Write {
            path: path.to_owned(),
            source,
        };
        if let Some(dir) = path.parent() {
            create_private_dir(dir).map_err(write)?;
        }
        crate::core::files::write_private_atomically(path, &json).map_err(write)?;
        Ok(path.display().to_string())
    }

    /// Removes the stored sign-in; whether there was one.
    pub fn remove(&self) -> Result<bool, SignInError> {
        let mut removed = false;
        if let Store::Keyring { .. } = self {
            match keyring(|e| e.delete_credential()) {
                Ok(()) => removed = true,
                Err(keyring::Error::NoEntry) => {}
                Err(e) => tracing::debug!("no keyring answered ({e})"),
            }
        }
        match std::fs::remove_file(self.file()) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(removed),
            Err(source) => Err(SignInError::Write {
                path: self.file().to_owned(),
                source,
            }),
        }
    }
}

/// Runs a keyring operation on a thread of its own: the keyring crate's D-Bus client runs its
/// own executor, which must not nest in the caller's.
fn keyring<T: Send + 'static>(
    op: impl FnOnce(&keyring::Entry) -> keyring::Result<T> + Send + 'static,
) -> keyring::Result<T> {
    std::thread::spawn(move || op(&keyring::Entry::new(KEYRING_SERVICE, KEYRING_USER)?))
        .join()
        .unwrap_or_else(|_| {
            Err(keyring::Error::PlatformFailure(
                "the keyring client panicked".into(),
            ))
        })
}

/// The file's bytes, None when it does not exist; never through a symbolic link.
fn read_private(path: &Path) -> Result<Option<Vec<u8>>, SignInError> {
    let error = |source| SignInError::Read {
        path: path.to_owned(),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    let file = match crate::core::files::no_follow(options.read(true)).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) if crate::core::files::is_symlink_refusal(&e) => {
            return Err(error(std::io::Error::other(
                "it is a symbolic link: refusing to follow it",
            )))
        }
        Err(e) => return Err(error(e)),
    };
    if !file.metadata().map_err(error)?.is_file() {
        return Err(error(std::io::Error::other("it is not a regular file")));
    }
    super::credentials::warn_if_readable_by_others(path);
    let mut bytes = Vec::new();
    file.take(MAX_RECORD)
        .read_to_end(&mut bytes)
        .map_err(error)?;
    Ok(Some(bytes))
}

/// Creates the folder (and its parents) if missing; a new folder only its owner can enter.
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// A stored sign-in and its store, as a run's credentials carry it.
#[derive(Debug)]
pub struct Stored {
    pub store: Store,
    pub sign_in: SignIn,
}

/// The credentials of the stored sign-in, if there is one: its refresh-token grant.
pub fn stored_credentials(default_scope: &str) -> Result<Option<Credentials>, SignInError> {
    let store = Store::locate()?;
    let Some(mut sign_in) = store.load()? else {
        return Ok(None);
    };
    let token_url =
        reqwest::Url::parse(&sign_in.endpoint("token")).map_err(|e| SignInError::Corrupt {
            where_: store.file().display().to_string(),
            problem: format!("its authority or tenant makes no URL: {e}"),
        })?;
    tracing::debug!(account = ?sign_in.account, "using the stored sign-in");
    let scope = scope_for_run(&mut sign_in, default_scope);
    Ok(Some(Credentials::Refresh(RefreshGrant {
        token_url,
        client_id: sign_in.client_id.clone(),
        client_secret: None,
        refresh_token: sign_in.refresh_token.clone(),
        refresh_token_file: None,
        scope,
        stored: Some(Box::new(Stored { store, sign_in })),
    })))
}

/// The scope a run redeems the stored sign-in with (`run_scope` is its target's): the sign-in's
/// own, unless that is another target's scope (signed in for Graph, running on Partner
/// Center): then `run_scope`, with a warning, and the stored access token (the other API's) is
/// set aside; the record, saved with the run's new token, then names `run_scope`. A scope
/// of no target's (`[auth] scope` at login) is kept as it is.
fn scope_for_run(sign_in: &mut SignIn, run_scope: &str) -> String {
    let signed = sign_in.scope.trim();
    if signed.is_empty() {
        return run_scope.to_string();
    }
    if signed == run_scope.trim() {
        return sign_in.scope.clone();
    }
    let Some(signed_for) = target_of(signed) else {
        return sign_in.scope.clone();
    };
    let run_for = target_of(run_scope).unwrap_or("this run's target");
    tracing::warn!(
        "the stored sign-in is for target {signed_for} (scope `{signed}`) and this run's is \
         {run_for}: asking the same sign-in for `{run_scope}`; if the token endpoint refuses \
         (the app has no consent for that API, AADSTS65001), run `bulkpatch login --target {run_for}`"
    );
    sign_in.access_token = None;
    sign_in.scope = run_scope.to_string();
    run_scope.to_string()
}

/// The name of the target whose own scope `scope` is.
fn target_of(scope: &str) -> Option<&'static str> {
    crate::targets::TARGETS
        .iter()
        .find(|(_, make)| make().oauth_scope() == scope)
        .map(|(name, _)| *name)
}

/// The platform's folder for configuration: `%APPDATA%`, `~/Library/Application Support`, or
/// `$XDG_CONFIG_HOME` (an absolute path) else `~/.config`.
fn config_dir() -> Option<PathBuf> {
    let env = |name| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if cfg!(windows) {
        return env("APPDATA");
    }
    if cfg!(target_os = "macos") {
        return env("HOME").map(|h| h.join("Library/Application Support"));
    }
    env("XDG_CONFIG_HOME")
        .filter(|p| p.is_absolute())
        .or_else(|| env("HOME").map(|h| h.join(".config")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> SignIn {
        SignIn {
            authority: "https://login.example".into(),
            tenant: "organizations".into(),
            client_id: "app".into(),
            scope: "s offline_access".into(),
            account: Some("a@b.example".into()),
            name: None,
            tenant_id: Some("t".into()),
            refresh_token: SecretString::from("refresh-SECRET".to_string()),
            access_token: Some((
                SecretString::from("access-SECRET".to_string()),
                time(2_000_000_000),
            )),
            signed_in_at: time(1_900_000_000),
            refresh_used_at: time(1_900_000_100),
        }
    }

    #[test]
    fn a_saved_sign_in_reads_back_from_a_private_file_and_debug_shows_no_secret() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::File(dir.path().join("sub").join(FILE_NAME));
        assert!(store.load().unwrap().is_none());
        store.save(&sample()).unwrap();
        let back = store.load().unwrap().unwrap();
        assert_eq!(back.refresh_token.expose_secret(), "refresh-SECRET");
        assert_eq!(back.access_token.unwrap().1, time(2_000_000_000));
        assert_eq!(back.refresh_used_at, time(1_900_000_100));
        let text = format!("{:?}", store.load().unwrap().unwrap());
        assert!(!text.contains("SECRET"), "{text}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(store.file())
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(store.remove().unwrap());
        assert!(!store.remove().unwrap());
        assert!(store.load().unwrap().is_none());
    }

    #[cfg(unix)]
    #[test]
    fn a_symbolic_link_in_place_of_the_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("elsewhere");
        std::fs::write(&target, sample().to_json()).unwrap();
        let path = dir.path().join(FILE_NAME);
        std::os::unix::fs::symlink(&target, &path).unwrap();
        let e = Store::File(path).load().unwrap_err().to_string();
        assert!(e.contains("symbolic link"), "{e}");
    }

    #[test]
    fn a_damaged_record_is_an_error_that_says_what_to_do_without_its_contents() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        std::fs::write(&path, "{\"refresh_token\": \"leak-SECRET\"").unwrap();
        let e = Store::File(path).load().unwrap_err().to_string();
        assert!(
            e.contains("bulkpatch login") && !e.contains("SECRET"),
            "{e}"
        );
    }

    #[test]
    fn a_run_on_another_target_asks_for_its_own_scope_and_sets_the_access_token_aside() {
        use crate::targets::{graph, partner_center};
        let mut custom = sample();
        assert_eq!(scope_for_run(&mut custom, graph::SCOPE), "s offline_access");
        assert!(
            custom.access_token.is_some(),
            "a scope of one's own is kept"
        );

        let mut same = sample();
        same.scope = graph::SCOPE.into();
        assert_eq!(scope_for_run(&mut same, graph::SCOPE), graph::SCOPE);
        assert!(same.access_token.is_some());

        let mut other = sample();
        other.scope = graph::SCOPE.into();
        assert_eq!(
            scope_for_run(&mut other, partner_center::SCOPE),
            partner_center::SCOPE
        );
        assert!(
            other.access_token.is_none(),
            "Graph's token is no Partner Center token"
        );
        assert_eq!(other.scope, partner_center::SCOPE);

        let mut none = sample();
        none.scope = String::new();
        assert_eq!(scope_for_run(&mut none, graph::SCOPE), graph::SCOPE);
    }
}
