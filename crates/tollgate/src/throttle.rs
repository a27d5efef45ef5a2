//! Throttling of failed logins, per account and per client address (LOGIN_FAILURES_PER_ACCOUNT,
//! LOGIN_FAILURES_PER_ADDRESS, LOGIN_FAILURE_WINDOW).
//!
//! Each key keeps the times of its recent failures (at most the limit); once the limit is
//! reached within the window, logins for that key are answered 429 without checking the
//! password until the oldest failure leaves the window. A successful login clears its
//! account's failures, not its address's.
//!
//! Every process counts its own failures. With `REDIS_URL`, the failures are also counted in
//! Redis, shared by every instance on it, and those counts decide: behind a load balancer the
//! limit holds for the deployment as a whole, and a login on one instance clears the account
//! on all. While Redis does not answer, each instance's own counts decide.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tollgate_store::Store;

/// Keys tracked per map before expired ones are swept; a flood of distinct usernames cannot
/// grow memory past this.
const MAX_KEYS: usize = 100_000;

/// Failed-login counters of this process, and of every instance on the store's Redis.
#[derive(Debug)]
pub struct LoginThrottle {
    window: Duration,
    per_account: u32,
    per_address: u32,
    accounts: Limiter<String>,
    addresses: Limiter<IpAddr>,
    /// Where the shared counts live (Redis, when the store has one).
    shared: Option<Store>,
}

impl LoginThrottle {
    /// Counters allowing `per_account` and `per_address` failures per `window`; 0 turns a
    /// limit off. With a Redis denylist on `shared`, the counts are shared through it.
    pub fn new(
        per_account: u32,
        per_address: u32,
        window: Duration,
        shared: Option<Store>,
    ) -> LoginThrottle {
        LoginThrottle {
            window,
            per_account,
            per_address,
            accounts: Limiter::new(per_account),
            addresses: Limiter::new(per_address),
            shared,
        }
    }

    /// `Err(wait)` when the account or the address has used up its failures: across the
    /// instances on Redis, or in this process when there is no Redis answering.
    pub async fn check(&self, account: Option<&str>, address: IpAddr) -> Result<(), Duration> {
        if let Some(shared) = &self.shared {
            let subjects = self.subjects(account, address);
            match shared
                .shared_failure_wait(&borrowed(&subjects), self.window)
                .await
            {
                Ok(None) => return Ok(()),
                Ok(Some(wait)) => return Err(wait),
                Err(_) => {} // Redis is down: this process's counts decide.
            }
        }
        self.check_here(account, address, Instant::now())
    }

    /// Records a failed login, in this process and (with Redis) for every instance.
    pub async fn failed(&self, account: Option<&str>, address: IpAddr) {
        self.failed_here(account, address, Instant::now());
        let Some(shared) = &self.shared else {
            return;
        };
        let subjects = self.subjects(account, address);
        shared
            .record_shared_failure(&borrowed(&subjects), self.window)
            .await;
    }

    /// Forgets an account's failures after it logged in.
    pub async fn succeeded(&self, account: Option<&str>) {
        self.succeeded_here(account);
        if let (Some(shared), Some(account)) = (&self.shared, account) {
            shared
                .forget_shared_failures(&account_subject(account))
                .await;
        }
    }

    /// The shared counters of a login: its account's and its address's, with their limits.
    fn subjects(&self, account: Option<&str>, address: IpAddr) -> Vec<(String, u32)> {
        let mut subjects = vec![(format!("address:{address}"), self.per_address)];
        if let Some(account) = account {
            subjects.push((account_subject(account), self.per_account));
        }
        subjects
    }

    /// This process's counts: `Err(wait)` when the account or the address has used up its
    /// failures.
    fn check_here(
        &self,
        account: Option<&str>,
        address: IpAddr,
        now: Instant,
    ) -> Result<(), Duration> {
        let by_account =
            account.and_then(|a| self.accounts.wait(&account_key(a), now, self.window));
        let by_address = self.addresses.wait(&address, now, self.window);
        match by_account.into_iter().chain(by_address).max() {
            Some(wait) => Err(wait),
            None => Ok(()),
        }
    }

    fn failed_here(&self, account: Option<&str>, address: IpAddr, now: Instant) {
        if let Some(account) = account {
            self.accounts.record(account_key(account), now, self.window);
        }
        self.addresses.record(address, now, self.window);
    }

    fn succeeded_here(&self, account: Option<&str>) {
        if let Some(account) = account {
            self.accounts.forget(&account_key(account));
        }
    }
}

/// An account's name among the shared counters.
fn account_subject(account: &str) -> String {
    format!("account:{}", account_key(account))
}

fn borrowed(subjects: &[(String, u32)]) -> Vec<(&str, u32)> {
    subjects.iter().map(|(s, l)| (s.as_str(), *l)).collect()
}

/// Accounts are counted without regard to case, so `Ann` and `ann` share a budget.
fn account_key(account: &str) -> String {
    account.trim().to_lowercase()
}

#[derive(Debug)]
struct Limiter<K> {
    limit: usize,
    failures: Mutex<HashMap<K, VecDeque<Instant>>>,
}

impl<K: Hash + Eq> Limiter<K> {
    fn new(limit: u32) -> Limiter<K> {
        Limiter {
            limit: usize::try_from(limit).unwrap_or(usize::MAX),
            failures: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, VecDeque<Instant>>> {
        // A panic while holding the lock leaves plain data behind; keep using it.
        self.failures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn wait(&self, key: &K, now: Instant, window: Duration) -> Option<Duration> {
        if self.limit == 0 {
            return None;
        }
        let map = self.lock();
        let times = map.get(key)?;
        let recent = times.iter().filter(|t| now.duration_since(**t) < window);
        let oldest_recent = recent.clone().next().copied();
        if recent.count() < self.limit {
            return None;
        }
        oldest_recent.map(|oldest| window.saturating_sub(now.duration_since(oldest)))
    }

    fn record(&self, key: K, now: Instant, window: Duration) {
        if self.limit == 0 {
            return;
        }
        let mut map = self.lock();
        if map.len() >= MAX_KEYS && !map.contains_key(&key) {
            map.retain(|_, times| {
                times
                    .back()
                    .is_some_and(|t| now.duration_since(*t) < window)
            });
            if map.len() >= MAX_KEYS {
                // Only a flood of distinct keys within one window gets here; forgetting is
                // better than unbounded memory, and the per-address limit still applies.
                map.clear();
            }
        }
        let times = map.entry(key).or_default();
        while times
            .front()
            .is_some_and(|t| now.duration_since(*t) >= window)
            || times.len() >= self.limit
        {
            times.pop_front();
        }
        times.push_back(now);
    }

    fn forget(&self, key: &K) {
        self.lock().remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ADDR: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    #[test]
    fn the_limit_is_reached_then_released_by_time() {
        let throttle = LoginThrottle::new(3, 100, Duration::from_secs(60), None);
        let start = Instant::now();
        for i in 0..3 {
            assert_eq!(throttle.check_here(Some("Ann"), ADDR, start), Ok(()), "{i}");
            throttle.failed_here(Some("Ann"), ADDR, start + Duration::from_secs(i));
        }
        let now = start + Duration::from_secs(10);
        assert_eq!(
            throttle.check_here(Some("ann"), ADDR, now),
            Err(Duration::from_secs(50))
        );
        assert_eq!(throttle.check_here(Some("bob"), ADDR, now), Ok(()));
        let later = start + Duration::from_secs(60);
        assert_eq!(throttle.check_here(Some("ann"), ADDR, later), Ok(()));
    }

    #[test]
    fn addresses_are_limited_across_accounts_and_success_clears_the_account() {
        let throttle = LoginThrottle::new(2, 3, Duration::from_secs(60), None);
        let now = Instant::now();
        for name in ["a", "b", "c"] {
            throttle.failed_here(Some(name), ADDR, now);
        }
        assert!(throttle.check_here(Some("d"), ADDR, now).is_err());
        let other = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));
        throttle.failed_here(Some("d"), other, now);
        throttle.failed_here(Some("d"), other, now);
        assert!(throttle.check_here(Some("d"), other, now).is_err());
        throttle.succeeded_here(Some("d"));
        assert_eq!(throttle.check_here(Some("d"), other, now), Ok(()));
    }

    #[test]
    fn zero_turns_a_limit_off() {
        let throttle = LoginThrottle::new(0, 0, Duration::from_secs(60), None);
        let now = Instant::now();
        for _ in 0..50 {
            throttle.failed_here(Some("a"), ADDR, now);
        }
        assert_eq!(throttle.check_here(Some("a"), ADDR, now), Ok(()));
    }
}
