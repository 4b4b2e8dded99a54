//! Durations as the JSON reports write them (`at_s`, `elapsed_s`): seconds, as a
//! float. For `#[serde(with = "crate::seconds")]`; read back to the nanosecond, so
//! that a journal that travels from a role's process to the launcher keeps its times.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serializer};

/// The longest duration read back: `u64::MAX` nanoseconds, in seconds (rounded down).
const LONGEST_SECONDS: f64 = 18_446_744_073.0;

/// Writes `duration` as seconds.
pub(crate) fn serialize<S: Serializer>(
    duration: &Duration,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_f64(duration.as_secs_f64())
}

/// Reads seconds (0 or more, finite) back into a duration.
pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Duration, D::Error> {
    let seconds = f64::deserialize(deserializer)?;
    from_seconds(seconds).map_err(serde::de::Error::custom)
}

/// `seconds` as a duration, to the nearest nanosecond (a float of seconds written by
/// [`serialize`] rounds back to the duration it came from).
fn from_seconds(seconds: f64) -> Result<Duration, String> {
    if !(0.0..=LONGEST_SECONDS).contains(&seconds) {
        return Err(format!(
            "{seconds} is not a duration in seconds (0 to {LONGEST_SECONDS})"
        ));
    }
    Ok(Duration::from_nanos((seconds * 1e9).round() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_round_trip_to_the_nanosecond() {
        for nanos in [
            0,
            1,
            999_999_999,
            1_000_000_001,
            3_021_456_789,
            86_400_000_000_123,
        ] {
            let duration = Duration::from_nanos(nanos);
            let text = serde_json::to_string(&Wrapped(duration)).expect("written");
            let back: Wrapped = serde_json::from_str(&text).expect("read");
            assert_eq!(back.0, duration, "{text}");
        }
        assert_eq!(
            serde_json::to_string(&Wrapped(Duration::from_millis(3020))).expect("written"),
            "3.02"
        );
    }

    #[test]
    fn negative_or_endless_seconds_are_refused_with_the_value() {
        for bad in ["-1.0", "1e300"] {
            let error = serde_json::from_str::<Wrapped>(bad).expect_err(bad);
            assert!(
                error.to_string().contains("is not a duration in seconds"),
                "{error}"
            );
        }
    }

    #[derive(Debug, serde::Serialize, serde::Deserialize)]
    struct Wrapped(#[serde(with = "super")] Duration);
}
