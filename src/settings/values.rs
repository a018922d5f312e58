//! Parsing one option value: request rates, durations within their checked ranges, counts within
//! their bounds, the base URL and the delimiter. Plain functions from text (or a number) to a value
//! or a message; the caller names the key and where the value came from. Uses only `core::checked`.

use std::fmt;
use std::time::Duration;

use crate::core::checked;

/// A request-rate ceiling.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Rate {
    /// At most this many requests per second, paced evenly.
    PerSecond(f64),
    /// No pacing at all (concurrency is then the only bound).
    Unlimited,
}

impl Rate {
    /// Parses `N/s`, `N/min` (also `/sec`, `/second`, `/m`, `/minute`, `/h`, `/hour`) or `unlimited`.
    pub fn parse(text: &str) -> Result<Rate, String> {
        let t = text.trim().to_ascii_lowercase();
        if t == "unlimited" || t == "none" {
            return Ok(Rate::Unlimited);
        }
        let (n, unit) = t
            .split_once('/')
            .ok_or_else(|| format!("must look like `8/s` or `500/min` (got `{text}`)"))?;
        let n: f64 = n.trim().parse().map_err(|_| {
            format!("must start with a number, as in `8/s` or `500/min` (got `{text}`)")
        })?;
        let seconds = match unit.trim() {
            "s" | "sec" | "second" => 1.0,
            "m" | "min" | "minute" => 60.0,
            "h" | "hour" => 3600.0,
            other => {
                return Err(format!(
                    "has an unknown unit `{other}`: use `/s` or `/min` (got `{text}`)"
                ))
            }
        };
        // From 1/h to 1,000,000/s (`checked::RATE_MIN_PER_SECOND` ..= `RATE_MAX_PER_SECOND`).
        let per_second =
            checked::rate_per_second(n / seconds).map_err(|why| format!("{why} (got `{text}`)"))?;
        Ok(Rate::PerSecond(per_second))
    }

    /// The time between two requests at this rate, or None when unlimited.
    pub fn interval(&self) -> Option<Duration> {
        match self {
            Rate::PerSecond(r) => Some(checked::interval_for_rate(*r)),
            Rate::Unlimited => None,
        }
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rate::Unlimited => write!(f, "unlimited"),
            Rate::PerSecond(r) if *r >= 1.0 => write!(f, "{}/s", trim_float(*r)),
            Rate::PerSecond(r) => write!(f, "{}/min", trim_float(r * 60.0)),
        }
    }
}

fn trim_float(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// The target named `text` (`partner-center`, `graph`).
pub fn parse_target(text: &str) -> Result<std::sync::Arc<dyn crate::targets::Target>, String> {
    crate::targets::choose(text.trim()).ok_or_else(|| {
        let known: Vec<&str> = crate::targets::TARGETS.iter().map(|(n, _)| *n).collect();
        format!(
            "\"{}\" is not a target (one of: {})",
            crate::core::text::shorten(text, 40),
            known.join(", ")
        )
    })
}

pub fn parse_base_url(text: &str) -> Result<reqwest::Url, String> {
    let url = reqwest::Url::parse(text.trim())
        .map_err(|e| format!("is not a valid URL ({e}): `{text}`"))?;
    crate::core::redact::register_url_password(url.as_str());
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("must be an http or https URL (got `{text}`)"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("must not have a query or fragment (got `{text}`)"));
    }
    Ok(url)
}

pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(text.trim())
        .map_err(|e| format!("is not a duration like `30s` or `1500ms` ({e}): `{text}`"))?;
    if d.is_zero() {
        return Err(format!("must be more than zero (got `{text}`)"));
    }
    Ok(d)
}

/// A duration the user set, refused outside `range` (the ranges are in `checked`).
pub fn parse_duration_in(text: &str, range: checked::Range) -> Result<Duration, String> {
    checked::check(parse_duration(text)?, range, text)
}

pub fn parse_delimiter(text: &str) -> Result<u8, String> {
    match text {
        "," | "comma" => Ok(b','),
        ";" | "semicolon" => Ok(b';'),
        "\t" | "\\t" | "tab" => Ok(b'\t'),
        "|" | "pipe" => Ok(b'|'),
        other => Err(format!("must be one of `,` `;` `tab` `|` (got `{other}`)")),
    }
}

/// A parser for a duration option: refused outside `range` (the ranges are in `checked`).
pub fn duration(range: checked::Range) -> impl Fn(String) -> Result<Duration, String> {
    move |text| parse_duration_in(&text, range)
}

/// A parser for a count option: refused outside `min..=max`.
pub fn within<T: PartialOrd + fmt::Display>(min: T, max: T) -> impl Fn(T) -> Result<T, String> {
    move |v| {
        if v < min || v > max {
            Err(format!("must be between {min} and {max} (got {v})"))
        } else {
            Ok(v)
        }
    }
}

/// The parser of an option taken as given (a flag, a path).
pub fn as_given<T>(v: T) -> Result<T, String> {
    Ok(v)
}

/// The parser of an optional option taken as given (a path with no default).
pub fn some<T>(v: T) -> Result<Option<T>, String> {
    Ok(Some(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse() {
        assert_eq!(Rate::parse("8/s"), Ok(Rate::PerSecond(8.0)));
        assert_eq!(Rate::parse("500/min"), Ok(Rate::PerSecond(500.0 / 60.0)));
        assert_eq!(Rate::parse(" 2 / sec "), Ok(Rate::PerSecond(2.0)));
        assert_eq!(Rate::parse("unlimited"), Ok(Rate::Unlimited));
        assert!(Rate::parse("8").is_err());
        assert!(Rate::parse("0/s").is_err());
        assert!(Rate::parse("8/fortnight").is_err());
        assert_eq!(Rate::PerSecond(8.0).to_string(), "8/s");
        assert_eq!(Rate::PerSecond(0.5).to_string(), "30/min");
        assert_eq!(
            Rate::PerSecond(4.0).interval(),
            Some(Duration::from_millis(250))
        );
    }

    #[test]
    fn durations_outside_their_range_are_refused_naming_the_range() {
        let e = parse_duration_in("2y", checked::BACKOFF_CAP).unwrap_err();
        assert!(e.contains("between 1ms and 1h") && e.contains("2y"), "{e}");
        assert_eq!(
            parse_duration_in("60s", checked::BACKOFF_CAP),
            Ok(Duration::from_secs(60))
        );
        assert!(parse_duration_in("5ms", checked::TIMEOUT).is_err());
    }

    #[test]
    fn absurd_rates_are_refused() {
        for bad in [
            "1e-20/s",
            "1e-12/s",
            "0/s",
            "inf/s",
            "NaN/s",
            "-1/s",
            "0.5/h",
            "2000000/s",
        ] {
            assert!(Rate::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Rate::parse("1/h"), Ok(Rate::PerSecond(1.0 / 3600.0)));
        assert_eq!(
            Rate::parse("1/h").unwrap().interval(),
            Some(Duration::from_secs(3600))
        );
    }

    #[test]
    fn durations_and_delimiters() {
        assert_eq!(parse_duration("1500ms"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("soon").is_err());
        assert_eq!(parse_delimiter("tab"), Ok(b'\t'));
        assert!(parse_delimiter("::").is_err());
    }

    #[test]
    fn counts_outside_their_bounds_are_refused_naming_them() {
        assert_eq!(within(1, 1024)(8), Ok(8));
        assert_eq!(
            within(1, 1024)(0),
            Err("must be between 1 and 1024 (got 0)".into())
        );
        assert!(within(8, 256)(257).is_err());
    }
}
