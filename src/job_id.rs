//! UUID v7 ids carrying a given time: a job's id is made from its `created_at`
//! (the queue's clock), so the id orders jobs as `(created_at, id)` does.
//!
//! Layout (RFC 9562): 48 bits of Unix ms, the version (7), 12 bits, the
//! variant, 62 bits. The 74 bits after the time are a counter: random at the
//! first id of a millisecond, then increased by a random step for each further
//! id of that millisecond made in this process, so such ids increase. The
//! counters of the last [`RECENT`] milliseconds used are kept, so ids made for
//! different times in between (another thread's clock, a test's manual clock,
//! a clock that went back) do not restart a millisecond's counter.

use std::sync::{Mutex, PoisonError};

use uuid::Uuid;

/// The largest time a UUID v7 holds (48 bits of ms).
const MAX_MS: u64 = (1 << 48) - 1;
/// The counter's width.
const COUNTER_BITS: u32 = 74;
const COUNTER_MAX: u128 = (1 << COUNTER_BITS) - 1;

/// How many milliseconds' counters are kept.
const RECENT: usize = 16;

/// The counters of the milliseconds used last, in this process.
struct Recent {
    /// `(ms, counter)`; `u64::MAX` marks an unused slot.
    slots: [(u64, u128); RECENT],
    /// When each slot was used last (a count of uses).
    used: [u64; RECENT],
    /// Uses so far.
    uses: u64,
    /// The slot used last (checked first: ids mostly come in time order).
    last: usize,
}

impl Recent {
    const fn new() -> Recent {
        Recent {
            slots: [(u64::MAX, 0); RECENT],
            used: [0; RECENT],
            uses: 0,
            last: 0,
        }
    }

    /// The slot holding `ms`, or the one to reuse for it: the least recently
    /// used (unused slots first).
    fn slot(&mut self, ms: u64) -> &mut (u64, u128) {
        let i = if self.slots[self.last].0 == ms {
            self.last
        } else if let Some(i) = self.slots.iter().position(|s| s.0 == ms) {
            i
        } else {
            (0..RECENT)
                .min_by_key(|&i| self.used[i])
                .unwrap_or_default()
        };
        self.uses += 1;
        self.used[i] = self.uses;
        self.last = i;
        &mut self.slots[i]
    }
}

static LAST: Mutex<Recent> = Mutex::new(Recent::new());

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
    let counter = {
        let mut recent = LAST.lock().unwrap_or_else(PoisonError::into_inner);
        next_counter(recent.slot(ms), ms, random)
    };
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
    fn ids_of_one_millisecond_increase_while_other_times_are_used_between() {
        // A time no other test uses; other tests may run meanwhile.
        let ms = 1_700_000_000_000;
        let mut ids = Vec::new();
        for i in 0..200_i64 {
            ids.push(v7_at(ms));
            // Another clock's ids in between, at later and earlier times.
            for k in 1..=(i % 6) + 1 {
                v7_at(ms + 1_000 * k);
                v7_at(ms - 1_000 * k);
            }
        }
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "increasing");
    }

    #[test]
    fn a_full_table_reuses_the_least_recently_used_millisecond() {
        let mut r = Recent::new();
        for ms in 0..RECENT as u64 {
            *r.slot(100 + ms) = (100 + ms, 1);
        }
        assert_eq!(r.slot(100).1, 1, "a kept millisecond keeps its counter");
        assert_eq!(r.slot(500).0, 101, "the least recently used slot is reused");
    }

    #[test]
    fn the_time_orders_ids_first() {
        let ms = 1_764_633_600_000;
        let a = v7_at(ms);
        assert!(v7_at(ms + 1) > a);
        assert!(v7_at(ms - 1) < a, "even when the clock goes back");
    }
}
