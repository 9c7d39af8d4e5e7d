//! UUID v7 ids carrying a given time: a job's id is made from its `created_at`
//! (the queue's clock), so the id orders jobs as `(created_at, id)` does.
//!
//! Layout (RFC 9562): 48 bits of Unix ms, the version (7), 12 bits, the
//! variant, 62 bits. The 74 bits after the time are a counter (RFC 9562's
//! "monotonic random" method, §6.2): one per process, random at its first id
//! and increased by a random step (1 to 65,536) for each further id, whatever
//! its time. So two ids made in this process for one millisecond increase in
//! the order they were made, also when ids for other times are made between
//! them (another thread's clock, a test's manual clock, a clock that went
//! back): a per-millisecond counter would restart below them. The counter
//! starts below half its range, so it lasts about 2^57 ids before it starts
//! again (at random).

use std::sync::{Mutex, PoisonError};

use uuid::Uuid;

/// The largest time a UUID v7 holds (48 bits of ms).
const MAX_MS: u64 = (1 << 48) - 1;
/// The counter's width.
const COUNTER_BITS: u32 = 74;
const COUNTER_MAX: u128 = (1 << COUNTER_BITS) - 1;

/// The last id's counter in this process; `None` before the first.
static LAST: Mutex<Option<u128>> = Mutex::new(None);

/// 74 random bits: the bits after the time of a fresh `now_v7` (its counter
/// starts at a random value each millisecond and its last 32 bits are random).
fn random_bits() -> u128 {
    let u = Uuid::now_v7().as_u128();
    (((u >> 64) & 0xFFF) << 62) | (u & ((1 << 62) - 1))
}

/// The counter after `last` with `random` (74 bits); updates `last`.
fn next_counter(last: &mut Option<u128>, random: u128) -> u128 {
    let step = 1 + (random & 0xFFFF);
    let counter = match *last {
        Some(c) if c <= COUNTER_MAX - step => c + step,
        // The first id (or a spent counter): start low enough to leave room.
        _ => random >> 1,
    };
    *last = Some(counter);
    counter
}

/// A UUID v7 whose time is `ms` (clamped to what the format holds).
pub(crate) fn v7_at(ms: i64) -> Uuid {
    let ms = u64::try_from(ms).unwrap_or(0).min(MAX_MS);
    let random = random_bits();
    let counter = next_counter(
        &mut LAST.lock().unwrap_or_else(PoisonError::into_inner),
        random,
    );
    let value = (u128::from(ms) << 80)
        | (0x7 << 76)
        | (((counter >> 62) & 0xFFF) << 64)
        | (0b10 << 62)
        | (counter & ((1 << 62) - 1));
    Uuid::from_u128(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms_of(u: Uuid) -> u64 {
        let (secs, nanos) = u.get_timestamp().unwrap().to_unix();
        secs * 1000 + u64::from(nanos / 1_000_000)
    }

    #[test]
    fn the_id_carries_the_given_time_and_is_a_v7_uuid() {
        for ms in [0_i64, 1, 1_764_633_600_123, 1 << 47] {
            let u = v7_at(ms);
            assert_eq!(u.get_version_num(), 7, "{u}");
            assert_eq!(u.get_variant(), uuid::Variant::RFC4122, "{u}");
            assert_eq!(ms_of(u), u64::try_from(ms).unwrap(), "{u}");
        }
        assert_eq!(ms_of(v7_at(-5)), 0);
        assert_eq!(ms_of(v7_at(i64::MAX)), MAX_MS);
    }

    #[test]
    fn counters_increase_from_a_random_start_and_start_again_when_spent() {
        let mut last = None;
        let counters: Vec<u128> = (0..1000)
            .map(|_| next_counter(&mut last, random_bits()))
            .collect();
        assert!(counters[0] < 1 << (COUNTER_BITS - 1), "starts below half");
        assert!(counters.windows(2).all(|w| w[0] < w[1]), "increasing");
        assert!(counters
            .windows(2)
            .all(|w| w[1] - w[0] >= 1 && w[1] - w[0] <= 1 << 16));
        // A spent counter starts again rather than overflowing into the time.
        let mut full = Some(COUNTER_MAX);
        assert!(next_counter(&mut full, COUNTER_MAX) <= COUNTER_MAX >> 1);
    }

    #[test]
    fn ids_of_one_millisecond_increase_while_many_other_times_are_used_between() {
        // A time no other test uses; other tests may run meanwhile.
        let ms = 1_700_000_000_000;
        let mut ids = Vec::new();
        for i in 0..200_i64 {
            ids.push(v7_at(ms));
            // Other clocks' ids in between: a real clock's many milliseconds,
            // later and earlier times.
            for k in 1..=(i % 50) + 1 {
                v7_at(ms + 1_000 * k + i);
                v7_at(ms - 1_000 * k - i);
            }
        }
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "increasing");
    }

    #[test]
    fn the_time_orders_ids_first() {
        let ms = 1_764_633_600_000;
        let a = v7_at(ms);
        assert!(v7_at(ms + 1) > a);
        assert!(v7_at(ms - 1) < a, "even when the clock goes back");
    }
}
