//! Durations as people write them in config: `30s`, `10m`, `12h`, `30d`, or `1h30m`.

use std::fmt;

/// A whole number of seconds.
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct Seconds(pub i64);

impl Seconds {
    pub const fn minutes(m: i64) -> Self {
        Self(m * 60)
    }
    pub const fn hours(h: i64) -> Self {
        Self(h * 3600)
    }
    pub const fn days(d: i64) -> Self {
        Self(d * 86_400)
    }
    pub const fn get(self) -> i64 {
        self.0
    }

    /// Parses `30s`, `10m`, `12h`, `30d`, `2w` and sums such as `1h30m`. A bare `0` is zero.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text == "0" {
            return Ok(Self(0));
        }
        if text.is_empty() {
            return Err("is empty; write a duration such as 30s, 10m, 12h or 30d".into());
        }
        let mut total: i64 = 0;
        let mut digits = String::new();
        for c in text.chars() {
            if c.is_ascii_digit() {
                digits.push(c);
                continue;
            }
            let unit = match c {
                's' => 1,
                'm' => 60,
                'h' => 3600,
                'd' => 86_400,
                'w' => 604_800,
                _ => {
                    return Err(format!(
                        "`{text}` has unknown unit `{c}`; use s, m, h, d or w (e.g. 30s, 10m, 12h, 30d)"
                    ));
                }
            };
            let n: i64 = digits
                .parse()
                .map_err(|_| format!("`{text}` needs a number before `{c}`"))?;
            digits.clear();
            total = n
                .checked_mul(unit)
                .and_then(|v| total.checked_add(v))
                .ok_or_else(|| format!("`{text}` is too large"))?;
        }
        if !digits.is_empty() {
            return Err(format!(
                "`{text}` has no unit; write e.g. {digits}s, {digits}m, {digits}h or {digits}d"
            ));
        }
        Ok(Self(total))
    }
}

impl fmt::Debug for Seconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Seconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0;
        for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60)] {
            if s != 0 && s % size == 0 {
                return write!(f, "{}{unit}", s / size);
            }
        }
        write!(f, "{s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_sums() {
        assert_eq!(Seconds::parse("30s"), Ok(Seconds(30)));
        assert_eq!(Seconds::parse("10m"), Ok(Seconds(600)));
        assert_eq!(Seconds::parse("12h"), Ok(Seconds(43_200)));
        assert_eq!(Seconds::parse("30d"), Ok(Seconds(2_592_000)));
        assert_eq!(Seconds::parse("1h30m"), Ok(Seconds(5_400)));
        assert_eq!(Seconds::parse("0"), Ok(Seconds(0)));
    }

    #[test]
    fn rejects_what_it_cannot_read() {
        assert!(Seconds::parse("30").is_err());
        assert!(Seconds::parse("ten minutes").is_err());
        assert!(Seconds::parse("5y").is_err());
        assert!(Seconds::parse("").is_err());
        assert!(Seconds::parse("99999999999999999999d").is_err());
    }

    #[test]
    fn displays_in_the_largest_whole_unit() {
        assert_eq!(Seconds(2_592_000).to_string(), "30d");
        assert_eq!(Seconds(90).to_string(), "90s");
        assert_eq!(Seconds(3600).to_string(), "1h");
    }
}
