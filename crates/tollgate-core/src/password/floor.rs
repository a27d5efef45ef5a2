//! The time every failed password check is padded to, so that a failure takes as long whatever
//! the account's hash is.
//!
//! A check costs what its hash's format and parameters cost: an unknown user or an unusable
//! hash costs a dummy argon2id check at the current cost, but a hash imported from Django
//! (PBKDF2 at hundreds of thousands of iterations, bcrypt, argon2 at an older cost) can cost
//! several times more, and cannot be made cheaper. An attacker timing wrong passwords would
//! learn which accounts are old imports, and, through them, that the accounts exist.
//!
//! So every failure lasts at least the slowest cost known: for each cost class checked so far
//! by this process, the upper quartile of its last few check times, and the largest of those.
//! A quartile rather than the fastest time: the slow class's own failures are never padded, so
//! a floor at its fastest would leave them measurably slower on average than every other
//! failure; at its upper quartile, three in four of them are padded too, and the floor still
//! follows the machine's load as recent times replace old ones. The current class is measured
//! at server start-up; a slower class is learnt at its first check (that one check is not
//! padded to it, every later failure is). Successful checks are not padded: the user already
//! knows the password. The padding is a sleep off the hashing threads, not work, so it costs no
//! CPU.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

/// How many recent check times are kept per cost class.
const SAMPLES: usize = 16;

/// The recent check times of each class of password hash checked so far, and the floor they
/// make.
///
/// ```
/// use std::time::Duration;
/// use tollgate_core::password::FailureFloor;
///
/// let ms = Duration::from_millis;
/// let floor = FailureFloor::default();
/// floor.observe("argon2id$m=19456,t=2,p=1", ms(30));
/// for took in [120, 110, 130, 125] {
///     floor.observe("pbkdf2_sha256$1000000", ms(took));
/// }
/// assert_eq!(floor.floor(), ms(130));
/// // A failed current-hash check that took 30 ms waits 100 ms more.
/// assert_eq!(floor.padding(ms(30)), ms(100));
/// ```
#[derive(Debug, Default)]
pub struct FailureFloor {
    /// The last check times of each cost class. Classes come from stored hashes, which only
    /// administrators write, so the map stays as small as the formats in the user table.
    samples: Mutex<HashMap<String, VecDeque<Duration>>>,
}

impl FailureFloor {
    /// Records that a check of a hash of cost class `class` took `elapsed`.
    pub fn observe(&self, class: &str, elapsed: Duration) {
        // A poisoned lock only means another thread panicked mid-update; the map is still valid.
        let mut samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        if !samples.contains_key(class) {
            samples.insert(class.to_owned(), VecDeque::with_capacity(SAMPLES));
        }
        if let Some(times) = samples.get_mut(class) {
            if times.len() == SAMPLES {
                times.pop_front();
            }
            times.push_back(elapsed);
        }
    }

    /// The slowest class's cost: the least time every failed check lasts.
    pub fn floor(&self) -> Duration {
        let samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        samples
            .values()
            .map(|times| {
                let mut sorted: Vec<Duration> = times.iter().copied().collect();
                sorted.sort_unstable();
                sorted
                    .get(sorted.len() * 3 / 4)
                    .copied()
                    .unwrap_or_default()
            })
            .max()
            .unwrap_or_default()
    }

    /// How much longer a failed check that took `elapsed` must wait to reach the floor.
    pub fn padding(&self, elapsed: Duration) -> Duration {
        self.floor().saturating_sub(elapsed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn the_floor_is_the_slowest_class_at_its_upper_quartile() {
        let floor = FailureFloor::default();
        assert_eq!(floor.floor(), Duration::ZERO);
        floor.observe("argon2id$m=64,t=1,p=1", 30 * MS);
        assert_eq!(floor.floor(), 30 * MS);
        for took in [200, 260, 210, 220] {
            floor.observe("bcrypt$12", took * MS);
        }
        floor.observe("md5", MS);
        assert_eq!(floor.floor(), 260 * MS);
        assert_eq!(floor.padding(30 * MS), 230 * MS);
        assert_eq!(floor.padding(300 * MS), Duration::ZERO);
        // Old times give way to recent ones: a busy spell passes.
        for _ in 0..SAMPLES {
            floor.observe("bcrypt$12", 150 * MS);
        }
        assert_eq!(floor.floor(), 150 * MS);
    }
}
