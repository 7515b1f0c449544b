//! Values typed on the command line that several subcommands share.

use std::time::Duration;

use super::UsageError;

/// nmap's time syntax: `500ms`, `2s`, `1m`, `1h`, or a bare number of seconds.
pub fn parse_duration(flag: &str, text: &str) -> Result<Duration, UsageError> {
    let bad = || {
        UsageError::new(format!(
            "{flag} {text:?}: expected a time like 500ms, 2s or 1.5"
        ))
    };
    let t = text.trim();
    let (num, unit) = match t.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => t.split_at(i),
        None => (t, "s"),
    };
    let value: f64 = num.parse().map_err(|_| bad())?;
    let scale = match unit {
        "ms" => 0.001,
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        _ => return Err(bad()),
    };
    let secs = value * scale;
    if !secs.is_finite() || !(0.0..=86_400.0).contains(&secs) {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_nmap_syntax() {
        let ok = [
            ("500ms", Duration::from_millis(500)),
            ("2s", Duration::from_secs(2)),
            ("1.5", Duration::from_millis(1500)),
            ("1m", Duration::from_secs(60)),
            ("0", Duration::ZERO),
        ];
        for (text, want) in ok {
            assert_eq!(parse_duration("--x", text).expect(text), want, "{text}");
        }
        for bad in ["", "abc", "5 parsecs", "-1s", "1e9"] {
            assert!(parse_duration("--x", bad).is_err(), "{bad:?} should fail");
        }
    }
}
