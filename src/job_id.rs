//! UUID v7 ids carrying a given time: a job's id is made from its `created_at`
//! (the queue's clock), so the id orders jobs as `(created_at, id)` does.
//!
//! Layout (RFC 9562): 48 bits of Unix ms, the version (7), 12 bits, the
//! variant, 62 bits. The 74 bits after the time are a counter: random at the
//! first id of a millisecond, then increased by a random step for each further
//! id of that millisecond made in this process, so such ids increase.

use std::sync::{Mutex, PoisonError};

use uuid::Uuid;

/// The largest time a UUID v7 holds (48 bits of ms).
const MAX_MS: u64 = (1 << 48) - 1;
/// The counter's width.
const COUNTER_BITS: u32 = 74;
const COUNTER_MAX: u128 = (1 << COUNTER_BITS) - 1;

/// The last id's millisecond and counter, in this process.
static LAST: Mutex<(u64, u128)> = Mutex::new((u64::MAX, 0));

/// 74 random bits: the bits after the time of a fresh `now_v7` (its counter
/// starts at a random value each millisecond and its last 32 bits are random).
fn random_bits() -> u128 {
    let u = Uuid::now_v7().as_u128();
    (((u >> 64) & 0xFFF) << 62) | (u & ((1 << 62) - 1))
}

/// The counter for the next id at `ms`, after the id `last` (its ms and
/// counter) and with `random` (74 bits); updates `last`.
fn next_counter(last: &mut (u64, u128), ms: u64, random: u128) -> u128 {
    let step = 1 + (random & 0xFFFF);
    let counter = if last.0 == ms && last.1 <= COUNTER_MAX - step {
        last.1 + step
    } else {
        // A new millisecond (or a spent counter): start low enough to leave room.
        random >> 1
    };
    *last = (ms, counter);
    counter
}

/// A UUID v7 whose time is `ms` (clamped to what the format holds).
pub(crate) fn v7_at(ms: i64) -> Uuid {
    let ms = u64::try_from(ms).unwrap_or(0).min(MAX_MS);
    let random = random_bits();
    let counter = next_counter(
        &mut LAST.lock().unwrap_or_else(PoisonError::into_inner),
        ms,
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
    fn counters_of_one_millisecond_increase() {
        let mut last = (u64::MAX, 0);
        let ms = 1_764_633_600_000;
        let counters: Vec<u128> = (0..1000)
            .map(|_| next_counter(&mut last, ms, random_bits()))
            .collect();
        assert!(counters.windows(2).all(|w| w[0] < w[1]), "increasing");
        assert!(counters.iter().all(|c| *c <= COUNTER_MAX));
        // A spent counter starts again rather than overflowing into the time.
        let mut full = (ms, COUNTER_MAX);
        assert!(next_counter(&mut full, ms, COUNTER_MAX) <= COUNTER_MAX);
    }

    #[test]
    fn the_time_orders_ids_first() {
        let ms = 1_764_633_600_000;
        let a = v7_at(ms);
        assert!(v7_at(ms + 1) > a);
        assert!(v7_at(ms - 1) < a, "even when the clock goes back");
    }
}
