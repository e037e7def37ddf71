//! Durations as operators type them: `90s`, `15m`, `2h`, `7d`, `1w`, or
//! parts run together (`1h30m`, `1d12h`).
//!
//! Every part is a whole number followed by one unit; the parts add up.
//! Zero, a number without a unit, an unknown unit, spaces and anything that
//! overflows a `u64` of milliseconds are refused with one message that says
//! what is accepted.

use std::fmt;

/// Milliseconds per unit, by the unit's letter.
const UNITS: [(char, u64); 5] = [
    ('s', 1_000),
    ('m', 60_000),
    ('h', 3_600_000),
    ('d', 86_400_000),
    ('w', 604_800_000),
];

/// A duration that did not parse; its `Display` is the whole user-facing
/// message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct DurationError {
    input: String,
}

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` is not a duration: use a number and a unit (s, m, h, d, w), like 90s, 15m, 2h \
             or 7d",
            self.input
        )
    }
}

impl std::error::Error for DurationError {}

/// Parses a duration into milliseconds (always more than zero).
pub(crate) fn parse_ms(input: &str) -> Result<u64, DurationError> {
    let bad = || DurationError {
        input: input.chars().take(40).collect(),
    };
    if input.is_empty() {
        return Err(bad());
    }
    let mut total: u64 = 0;
    let mut number: Option<u64> = None;
    for c in input.chars() {
        if let Some(digit) = c.to_digit(10) {
            let n = number.unwrap_or(0);
            number = Some(
                n.checked_mul(10)
                    .and_then(|n| n.checked_add(u64::from(digit)))
                    .ok_or_else(bad)?,
            );
            continue;
        }
        let per_unit = UNITS
            .iter()
            .find(|(unit, _)| *unit == c)
            .map(|(_, ms)| *ms)
            .ok_or_else(bad)?;
        let n = number.take().ok_or_else(bad)?;
        total = n
            .checked_mul(per_unit)
            .and_then(|part| total.checked_add(part))
            .ok_or_else(bad)?;
    }
    // A trailing number without its unit (`90`, `1h30`) is ambiguous.
    if number.is_some() || total == 0 {
        return Err(bad());
    }
    Ok(total)
}

/// A clap value parser for `--for DURATION`.
pub(crate) fn parse_arg(input: &str) -> Result<u64, String> {
    parse_ms(input).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_units() {
        assert_eq!(parse_ms("90s"), Ok(90_000));
        assert_eq!(parse_ms("15m"), Ok(15 * 60_000));
        assert_eq!(parse_ms("2h"), Ok(2 * 3_600_000));
        assert_eq!(parse_ms("7d"), Ok(7 * 86_400_000));
        assert_eq!(parse_ms("1w"), Ok(604_800_000));
        assert_eq!(parse_ms("007s"), Ok(7_000));
    }

    #[test]
    fn combinations_add_up() {
        assert_eq!(parse_ms("1h30m"), Ok(90 * 60_000));
        assert_eq!(parse_ms("1d12h"), Ok(36 * 3_600_000));
        assert_eq!(
            parse_ms("1w2d3h4m5s"),
            Ok(((9 * 24 + 3) * 60 + 4) * 60_000 + 5_000)
        );
        assert_eq!(parse_ms("0h1s"), Ok(1_000));
    }

    #[test]
    fn bad_durations_are_refused_with_the_rule() {
        for bad in [
            "", "2x", "0s", "0m0s", "90", "1h30", "h", "1.5h", "-1h", "1 h", " 1h", "1h ", "1H",
            "1hh", "1ms", "s1", "forever", "١h",
        ] {
            let err = parse_ms(bad).expect_err(bad);
            assert_eq!(
                err.to_string(),
                format!(
                    "`{bad}` is not a duration: use a number and a unit (s, m, h, d, w), like \
                     90s, 15m, 2h or 7d"
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn overflow_is_refused() {
        assert!(parse_ms("18446744073709551616s").is_err());
        assert!(parse_ms("99999999999999999w").is_err());
        // Each part fits but the sum does not.
        assert!(parse_ms("30000000000000w30000000000000w").is_err());
        assert!(parse_ms("18446744073709551s").is_ok());
    }

    #[test]
    fn long_input_is_cut_in_the_message() {
        let long = "x".repeat(1000);
        assert!(parse_ms(&long).unwrap_err().to_string().len() < 200);
    }
}
