//! Passwords: Entra's password rules a supplied one is checked against, and generation from
//! the OS CSPRNG. (The secrets file they are written to is `output::secrets`.) Uses `core`.

use rand::rngs::OsRng;
use rand::seq::SliceRandom;
use rand::{Rng, TryRngCore};
use secrecy::SecretString;

/// Symbols Entra accepts in a password (besides letters, digits and space).
pub const ENTRA_SYMBOLS: &str = "@#$%^&*-_!+=[]{}|\\:',.?/`~\"();<>";
/// The symbols generated passwords use: accepted by Entra, and safe to paste into a CSV cell, a shell or a spreadsheet.
const GENERATED_SYMBOLS: &[u8] = b"!#$%&*+-=?@^_";
const LOWER: &[u8] = b"abcdefghijkmnopqrstuvwxyz";
const UPPER: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ";
const DIGITS: &[u8] = b"23456789";

/// Why a password breaks the rules; never includes the password.
pub fn check(password: &str) -> Result<(), &'static str> {
    let n = password.chars().count();
    if n < 8 {
        return Err("password is shorter than 8 characters");
    }
    if n > 256 {
        return Err("password is longer than 256 characters");
    }
    if !password
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == ' ' || ENTRA_SYMBOLS.contains(c))
    {
        return Err("password has a character Entra does not accept (allowed: A-Z a-z 0-9, space and @ # $ % ^ & * - _ ! + = [ ] { } | \\ : ' , . ? / ` ~ \" ( ) ; < >)");
    }
    let classes = [
        password.chars().any(|c| c.is_ascii_lowercase()),
        password.chars().any(|c| c.is_ascii_uppercase()),
        password.chars().any(|c| c.is_ascii_digit()),
        password.chars().any(|c| !c.is_ascii_alphanumeric()),
    ];
    if classes.iter().filter(|c| **c).count() < 3 {
        return Err("password needs at least 3 of: lower case, upper case, digit, symbol");
    }
    Ok(())
}

/// A fresh password of `length` characters (8-256) from the OS CSPRNG, with all four character
/// classes, starting with a letter or digit (so no spreadsheet reads it as a formula).
pub fn generate(length: usize) -> SecretString {
    let length = length.clamp(8, 256);
    let mut rng = OsRng.unwrap_err();
    let all: Vec<u8> = [LOWER, UPPER, DIGITS, GENERATED_SYMBOLS].concat();
    let mut chars: Vec<u8> = [LOWER, UPPER, DIGITS, GENERATED_SYMBOLS]
        .iter()
        .map(|set| set[rng.random_range(0..set.len())])
        .collect();
    while chars.len() < length {
        chars.push(all[rng.random_range(0..all.len())]);
    }
    chars.shuffle(&mut rng);
    if let Some(i) = chars.iter().position(u8::is_ascii_alphanumeric) {
        chars.swap(0, i);
    }
    SecretString::from(String::from_utf8(chars).expect("ASCII"))
}

/// Parses a force_change_password cell: true/false/yes/no/1/0 (any case); empty means true.
pub fn parse_force_change(cell: Option<&str>) -> Result<bool, String> {
    match cell.map(|c| c.trim().to_ascii_lowercase()).as_deref() {
        None | Some("") => Ok(true),
        Some("true" | "yes" | "1" | "y") => Ok(true),
        Some("false" | "no" | "0" | "n") => Ok(false),
        Some(other) => Err(format!(
            "force_change_password \"{}\" is not one of true/false/yes/no/1/0",
            crate::core::text::shorten(other, 20)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn generated_passwords_meet_the_rules() {
        for length in [8, 16, 64, 256] {
            for _ in 0..200 {
                let p = generate(length);
                let p = p.expose_secret();
                assert_eq!(p.len(), length);
                assert_eq!(check(p), Ok(()), "{p}");
                assert!(p.chars().any(|c| c.is_ascii_lowercase()));
                assert!(p.chars().any(|c| c.is_ascii_uppercase()));
                assert!(p.chars().any(|c| c.is_ascii_digit()));
                assert!(p.bytes().any(|c| GENERATED_SYMBOLS.contains(&c)));
                assert!(p.chars().next().unwrap().is_ascii_alphanumeric());
            }
        }
        let a = generate(16);
        let b = generate(16);
        assert_ne!(a.expose_secret(), b.expose_secret());
    }

    #[test]
    fn supplied_passwords_are_checked_without_being_quoted() {
        assert_eq!(check("Renew456*"), Ok(()));
        assert_eq!(check("renew456*"), Ok(()), "3 of 4 classes is enough");
        for bad in [
            "Sh0rt!",
            "alllowercase",
            "ALLUPPER123",
            "Bad\u{e9}Pass1!",
            &"Aa1!".repeat(65),
        ] {
            let reason = check(bad).unwrap_err();
            assert!(!reason.contains(bad), "{reason}");
        }
    }

    #[test]
    fn force_change_values() {
        assert_eq!(parse_force_change(None), Ok(true));
        assert_eq!(parse_force_change(Some("")), Ok(true));
        assert_eq!(parse_force_change(Some("No")), Ok(false));
        assert_eq!(parse_force_change(Some("1")), Ok(true));
        assert!(parse_force_change(Some("maybe")).is_err());
    }
}
