//! SOA serials: the time the zone's inputs last changed, never lower than one already
//! published.
//!
//! A serial in seconds since the epoch (RFC 1982 arithmetic allows it until 2106) needs no
//! state on disk: taken from the inputs' change times (see `Loaded::changed_at`), a restart
//! over unchanged inputs publishes the serial it published before (secondaries then have
//! nothing to transfer), and any change, made while the server runs or while it is down,
//! gives a later one. `max(previous + 1, changed)` keeps it increasing when several reloads
//! fall in the same second.

use std::time::{SystemTime, UNIX_EPOCH};

/// The serial from the clock, given the one published before (0 if none): for inputs whose
/// change time is unknown.
fn serial_for_now(previous: u32) -> u32 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as u32);
    next_serial(previous, now)
}

/// The serial to publish for content whose inputs last changed at `changed_at` (seconds since
/// 1970; 0 when unknown, and then the clock's time is taken), given the one published before.
pub fn serial_for_change(previous: u32, changed_at: u32) -> u32 {
    if changed_at == 0 {
        serial_for_now(previous)
    } else {
        next_serial(previous, changed_at)
    }
}

/// `max(previous + 1, now)` in serial-number arithmetic (RFC 1982).
pub fn next_serial(previous: u32, now: u32) -> u32 {
    let bumped = previous.wrapping_add(1);
    // `now` is ahead of `bumped` iff the forward distance is less than 2^31.
    if previous == 0 || now.wrapping_sub(bumped) < (1 << 31) {
        now.max(1)
    } else {
        bumped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_follows_clock_but_never_goes_back() {
        assert_eq!(next_serial(0, 1_700_000_000), 1_700_000_000);
        assert_eq!(next_serial(1_700_000_000, 1_700_000_000), 1_700_000_001);
        assert_eq!(next_serial(1_700_000_005, 1_700_000_000), 1_700_000_006);
        assert_eq!(next_serial(1_700_000_000, 1_700_000_100), 1_700_000_100);
        assert_eq!(next_serial(u32::MAX, 5), 5);
    }

    #[test]
    fn serial_follows_the_inputs_change_time() {
        assert_eq!(serial_for_change(0, 1_700_000_000), 1_700_000_000);
        assert_eq!(
            serial_for_change(1_700_000_000, 1_700_000_000),
            1_700_000_001
        );
        assert_eq!(
            serial_for_change(1_700_000_000, 1_700_000_500),
            1_700_000_500
        );
        // Unknown: the clock's time, which is later than any change time above.
        assert!(serial_for_change(0, 0) > 1_700_000_500);
    }
}
