//! Throttling of password checks (LOGIN_FAILURES_PER_ACCOUNT, LOGIN_FAILURES_PER_ADDRESS,
//! LOGIN_FAILURE_WINDOW) and of registrations (REGISTRATIONS_PER_ADDRESS, REGISTRATION_WINDOW).
//!
//! An attempt takes its place under every limit *before* the work it guards (the password
//! hash, the account creation) runs: the check of the counts and the count of the attempt are
//! one step, under one lock in this process and one Lua script in Redis. Requests sent together
//! on open connections cannot all read "under the limit" before any is counted. A password
//! that matches takes its attempt back (the address's) and clears the account's and the
//! identifier's counts; any other outcome leaves the attempt counted as a failure.
//!
//! Checks in flight are places taken, since any of them may fail. So that many logins to one
//! account at once (a service account used by many workers) are not refused for that, an
//! attempt refused by its address or identifier while checks on its subjects are still running
//! in this process waits for them to end (at most [`MAX_QUEUE_WAIT`]) and asks again: the ones
//! that matched have given their places back; the ones that failed keep them. The waiting
//! attempts queue per subject and ask in the order they came, and an attempt arriving while
//! others wait on one of its subjects queues behind them: a place given back goes to the
//! attempt that has waited longest, not to whichever asks first.
//!
//! Every process counts its own attempts. With `REDIS_URL`, the attempts are also counted in
//! Redis, shared by every instance on it, and those counts decide: behind a load balancer the
//! limit holds for the deployment as a whole, and a login on one instance clears the account
//! on all. While Redis does not answer, each instance's own counts decide.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use tollgate_store::{SharedAdmission, Store};

use crate::client::counted_network;

/// The longest an attempt waits for the checks in flight on its subjects before it is refused.
pub(crate) const MAX_QUEUE_WAIT: Duration = Duration::from_secs(3);

/// How long a waiting attempt sleeps at most before it looks again, in case it missed the
/// notice of a check ending.
const RECHECK: Duration = Duration::from_millis(50);

/// Keys tracked before expired ones are swept; a flood of distinct usernames cannot grow
/// memory past this.
const MAX_KEYS: usize = 100_000;

/// The subjects a password check counts against.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Attempt<'a> {
    /// The client's address.
    pub(crate) address: IpAddr,
    /// The identifier as sent (a username, an email, a phone); `None` when the check is on an
    /// account already known (the old password of a password change).
    pub(crate) identifier: Option<&'a str>,
    /// The account the identifier names, if any.
    pub(crate) account: Option<i64>,
}

/// Why an attempt was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The address or the identifier has used up its attempts: 429 after this wait.
    Throttled(Duration),
    /// Only the account has, through identifiers other than this one. Answering 429 would link
    /// this identifier to the account, so the caller answers as a wrong password would.
    AccountExhausted(Duration),
}

/// An admitted attempt, to be taken back or cleared when the password matches. While it lives,
/// its check counts as in flight on its subjects.
#[derive(Debug)]
pub(crate) struct Admitted {
    subjects: Subjects,
    local: u64,
    shared: Option<String>,
    _running: Running,
}

/// The checks running in this process, and the attempts waiting for them, per subject.
#[derive(Debug, Default)]
pub(crate) struct InFlight {
    counts: Mutex<HashMap<String, usize>>,
    /// The waiting attempts' tickets per subject, oldest first.
    queues: Mutex<HashMap<String, VecDeque<u64>>>,
    next_ticket: AtomicU64,
    /// Notified when a check ends or a waiting attempt leaves its queues.
    ended: Notify,
}

impl InFlight {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        self.counts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn enter(self: &Arc<Self>, subjects: &Subjects) -> Running {
        self.enter_names(subjects.names().map(str::to_owned).collect())
    }

    fn enter_names(self: &Arc<Self>, names: Vec<String>) -> Running {
        let mut counts = self.lock();
        for name in &names {
            *counts.entry(name.clone()).or_default() += 1;
        }
        Running {
            registry: Arc::clone(self),
            names,
        }
    }

    /// How many checks on `subject` are running.
    fn running(&self, subject: &str) -> usize {
        self.lock().get(subject).copied().unwrap_or(0)
    }

    /// Returns when a check ends, or after [`RECHECK`].
    async fn one_ends(&self) {
        let _ = tokio::time::timeout(RECHECK, self.ended.notified()).await;
    }

    fn lock_queues(&self) -> std::sync::MutexGuard<'_, HashMap<String, VecDeque<u64>>> {
        self.queues
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether attempts wait on any of `subjects`.
    fn anyone_waits<'s>(&self, mut subjects: impl Iterator<Item = &'s str>) -> bool {
        let queues = self.lock_queues();
        subjects.any(|subject| queues.contains_key(subject))
    }

    /// Puts an attempt at the back of the queue of each of `subjects`; it leaves them when the
    /// returned place is dropped.
    fn queue(self: &Arc<Self>, subjects: &Subjects) -> Waiting {
        let ticket = self.next_ticket.fetch_add(1, Ordering::Relaxed);
        let names: Vec<String> = subjects.names().map(str::to_owned).collect();
        let mut queues = self.lock_queues();
        for name in &names {
            queues.entry(name.clone()).or_default().push_back(ticket);
        }
        Waiting {
            registry: Arc::clone(self),
            ticket,
            names,
        }
    }

    /// Whether `waiting` is first in the queue of each of its subjects.
    fn first_in_line(&self, waiting: &Waiting) -> bool {
        let queues = self.lock_queues();
        waiting
            .names
            .iter()
            .all(|name| queues.get(name).and_then(VecDeque::front) == Some(&waiting.ticket))
    }
}

/// An attempt's place in the queues of its subjects; leaves them when dropped.
#[derive(Debug)]
struct Waiting {
    registry: Arc<InFlight>,
    ticket: u64,
    names: Vec<String>,
}

impl Drop for Waiting {
    fn drop(&mut self) {
        {
            let mut queues = self.registry.lock_queues();
            for name in &self.names {
                if let Some(queue) = queues.get_mut(name) {
                    queue.retain(|ticket| *ticket != self.ticket);
                    if queue.is_empty() {
                        queues.remove(name);
                    }
                }
            }
        }
        // The next in line may ask now.
        self.registry.ended.notify_waiters();
    }
}

/// A password check past the lockout, on its lockout keys; ends when dropped.
#[derive(Debug)]
pub(crate) struct Checking(#[allow(dead_code)] Running);

/// One check in flight; ends when dropped.
#[derive(Debug)]
struct Running {
    registry: Arc<InFlight>,
    names: Vec<String>,
}

impl Drop for Running {
    fn drop(&mut self) {
        {
            let mut counts = self.registry.lock();
            for name in &self.names {
                if let Some(count) = counts.get_mut(name) {
                    *count -= 1;
                    if *count == 0 {
                        counts.remove(name);
                    }
                }
            }
        }
        self.registry.ended.notify_waiters();
    }
}

/// Attempts counted per subject over one window, here and (with Redis) across instances.
#[derive(Debug)]
struct Counter {
    window: Duration,
    local: Mutex<HashMap<String, VecDeque<(Instant, u64)>>>,
    next: AtomicU64,
    /// Where the shared counts live (Redis, when the store has one).
    shared: Option<Store>,
    in_flight: Arc<InFlight>,
}

/// The counted subjects of one attempt: gate subjects (all admit, or nothing is counted) and an
/// optional last subject checked only once the gates admitted.
#[derive(Debug, Clone)]
struct Subjects {
    gates: Vec<(String, u32)>,
    last: Option<(String, u32)>,
}

impl Subjects {
    /// Every subject's name: the gates', then the last's.
    fn names(&self) -> impl Iterator<Item = &str> {
        self.gates
            .iter()
            .chain(self.last.as_ref())
            .map(|(subject, _)| subject.as_str())
    }
}

impl Counter {
    fn new(window: Duration, shared: Option<Store>) -> Counter {
        Counter {
            window,
            local: Mutex::new(HashMap::new()),
            next: AtomicU64::new(0),
            shared,
            in_flight: Arc::default(),
        }
    }

    /// Admits an attempt, after the checks in flight on its subjects ended if it was refused
    /// while they ran, in turn with the other attempts waiting on its subjects (see the
    /// module's documentation).
    async fn reserve(&self, subjects: Subjects) -> Result<Admitted, Refusal> {
        let deadline = Instant::now() + MAX_QUEUE_WAIT;
        let mut waiting: Option<Waiting> = None;
        loop {
            // Registered before looking, so that a check ending meanwhile is not missed.
            let ended = self.in_flight.ended.notified();
            tokio::pin!(ended);
            ended.as_mut().enable();
            let out_of_time = Instant::now() >= deadline;
            let my_turn = match &waiting {
                None => !self.in_flight.anyone_waits(subjects.names()),
                // At its deadline an attempt asks once more, whoever is before it.
                Some(place) => self.in_flight.first_in_line(place) || out_of_time,
            };
            if my_turn {
                let refusal = match self.reserve_once(subjects.clone()).await {
                    Ok(admitted) => return Ok(admitted),
                    // The gates counted this attempt already; asking again would count it
                    // twice.
                    Err(refusal @ Refusal::AccountExhausted(_)) => return Err(refusal),
                    Err(refusal) => refusal,
                };
                let running = subjects
                    .names()
                    .any(|subject| self.in_flight.running(subject) > 0);
                if !running || out_of_time {
                    return Err(refusal);
                }
            }
            if waiting.is_none() {
                waiting = Some(self.in_flight.queue(&subjects));
            }
            let _ = tokio::time::timeout(RECHECK, ended).await;
        }
    }

    async fn reserve_once(&self, subjects: Subjects) -> Result<Admitted, Refusal> {
        let now = Instant::now();
        if let Some(shared) = &self.shared {
            let gates = borrowed(&subjects.gates);
            let last = subjects.last.as_ref().map(|(s, l)| (s.as_str(), *l));
            match shared
                .reserve_shared_attempt(&gates, last, self.window)
                .await
            {
                Ok(SharedAdmission::Admitted { member }) => {
                    // Counted here too, without deciding, for when Redis stops answering.
                    let local = self.record_here(&subjects, true, now);
                    return Ok(Admitted {
                        _running: self.in_flight.enter(&subjects),
                        subjects,
                        local,
                        shared: Some(member),
                    });
                }
                Ok(SharedAdmission::GateFull(wait)) => return Err(Refusal::Throttled(wait)),
                Ok(SharedAdmission::LastFull { wait, .. }) => {
                    self.record_here(&subjects, false, now);
                    return Err(Refusal::AccountExhausted(wait));
                }
                Err(_) => {} // Redis is down: this process's counts decide.
            }
        }
        let local = self.reserve_here(&subjects, now)?;
        Ok(Admitted {
            _running: self.in_flight.enter(&subjects),
            subjects,
            local,
            shared: None,
        })
    }

    /// The attempt succeeded: it is taken back from the gates, and the subjects named in
    /// `clear` forget every attempt.
    async fn settle(&self, admitted: Admitted, clear: impl Fn(&str) -> bool) {
        let (cleared, refunded): (Vec<_>, Vec<_>) = admitted
            .subjects
            .names()
            .partition(|subject| clear(subject));
        {
            let mut map = self.lock();
            for subject in &cleared {
                map.remove(*subject);
            }
            for subject in &refunded {
                if let Some(times) = map.get_mut(*subject) {
                    times.retain(|(_, ticket)| *ticket != admitted.local);
                }
            }
        }
        let Some(shared) = &self.shared else {
            return;
        };
        if !cleared.is_empty() {
            shared.forget_shared_attempts(&cleared).await;
        }
        if let Some(member) = &admitted.shared {
            for subject in refunded {
                shared.refund_shared_attempt(subject, member).await;
            }
        }
    }

    /// Forgets every attempt counted on `subjects`, here and in Redis.
    async fn forget(&self, subjects: &[&str]) {
        {
            let mut map = self.lock();
            for subject in subjects {
                map.remove(*subject);
            }
        }
        if let Some(shared) = &self.shared {
            shared.forget_shared_attempts(subjects).await;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, VecDeque<(Instant, u64)>>> {
        // A panic while holding the lock leaves plain data behind; keep using it.
        self.local
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Checks and counts in one step under the lock: of attempts arriving together, no more
    /// than each limit are admitted. `Ok` holds the attempt's ticket.
    fn reserve_here(&self, subjects: &Subjects, now: Instant) -> Result<u64, Refusal> {
        let ticket = self.next.fetch_add(1, Ordering::Relaxed);
        let mut map = self.lock();
        let gate_wait = subjects
            .gates
            .iter()
            .filter_map(|(subject, limit)| self.wait(&map, subject, *limit, now))
            .max();
        if let Some(wait) = gate_wait {
            return Err(Refusal::Throttled(wait));
        }
        for (subject, limit) in &subjects.gates {
            self.push(&mut map, subject, *limit, now, ticket);
        }
        if let Some((subject, limit)) = &subjects.last {
            if let Some(wait) = self.wait(&map, subject, *limit, now) {
                return Err(Refusal::AccountExhausted(wait));
            }
            self.push(&mut map, subject, *limit, now, ticket);
        }
        Ok(ticket)
    }

    /// Counts an attempt that Redis decided on (`last` too when it was admitted there).
    fn record_here(&self, subjects: &Subjects, last: bool, now: Instant) -> u64 {
        let ticket = self.next.fetch_add(1, Ordering::Relaxed);
        let mut map = self.lock();
        let counted = subjects
            .gates
            .iter()
            .chain(subjects.last.as_ref().filter(|_| last));
        for (subject, limit) in counted {
            self.push(&mut map, subject, *limit, now, ticket);
        }
        ticket
    }

    fn wait(
        &self,
        map: &HashMap<String, VecDeque<(Instant, u64)>>,
        subject: &str,
        limit: u32,
        now: Instant,
    ) -> Option<Duration> {
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        if limit == 0 {
            return None;
        }
        let times = map.get(subject)?;
        let mut recent = times
            .iter()
            .filter(|(t, _)| now.duration_since(*t) < self.window);
        let oldest_recent = recent.clone().next().map(|(t, _)| *t);
        if recent.by_ref().count() < limit {
            return None;
        }
        oldest_recent.map(|oldest| self.window.saturating_sub(now.duration_since(oldest)))
    }

    fn push(
        &self,
        map: &mut HashMap<String, VecDeque<(Instant, u64)>>,
        subject: &str,
        limit: u32,
        now: Instant,
        ticket: u64,
    ) {
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        if limit == 0 {
            return;
        }
        if map.len() >= MAX_KEYS && !map.contains_key(subject) {
            map.retain(|_, times| {
                times
                    .back()
                    .is_some_and(|(t, _)| now.duration_since(*t) < self.window)
            });
            if map.len() >= MAX_KEYS {
                // Only a flood of distinct keys within one window gets here; forgetting is
                // better than unbounded memory, and the per-address limit still applies.
                map.clear();
            }
        }
        let times = map.entry(subject.to_owned()).or_default();
        while times
            .front()
            .is_some_and(|(t, _)| now.duration_since(*t) >= self.window)
            || times.len() >= limit
        {
            times.pop_front();
        }
        times.push_back((now, ticket));
    }
}

fn borrowed(subjects: &[(String, u32)]) -> Vec<(&str, u32)> {
    subjects.iter().map(|(s, l)| (s.as_str(), *l)).collect()
}

/// Password checks allowed per account, identifier and client address.
#[derive(Debug)]
pub(crate) struct LoginThrottle {
    per_account: u32,
    per_address: u32,
    counter: Counter,
    /// Checks past the lockout, by lockout key.
    checking: Arc<InFlight>,
}

impl LoginThrottle {
    /// Counters allowing `per_account` and `per_address` password checks per `window` that do
    /// not match; 0 turns a limit off. With a Redis denylist on `shared`, the counts are shared
    /// through it.
    pub(crate) fn new(
        per_account: u32,
        per_address: u32,
        window: Duration,
        shared: Option<Store>,
    ) -> LoginThrottle {
        LoginThrottle {
            per_account,
            per_address,
            counter: Counter::new(window, shared),
            checking: Arc::default(),
        }
    }

    /// Takes a place for one password check under the address's, the identifier's and the
    /// account's limits, or says why there is none.
    pub(crate) async fn reserve(&self, attempt: Attempt<'_>) -> Result<Admitted, Refusal> {
        let mut gates = vec![(address_subject(attempt.address), self.per_address)];
        if let Some(identifier) = attempt.identifier {
            gates.push((identifier_subject(identifier), self.per_account));
        }
        let account = attempt
            .account
            .map(|id| (account_subject(id), self.per_account));
        let subjects = match (attempt.identifier, account) {
            // Identified by name: the account is checked last, so that its being exhausted
            // through other names can be answered without linking the names.
            (Some(_), account) => Subjects {
                gates,
                last: account,
            },
            // A check on an account the client already holds: nothing to hide.
            (None, account) => Subjects {
                gates: gates.into_iter().chain(account).collect(),
                last: None,
            },
        };
        self.counter.reserve(subjects).await
    }

    /// Marks a password check on the lockout of `key` as running until the guard is dropped, so
    /// that attempts finding the key locked by it wait for its outcome.
    pub(crate) fn checking(&self, key: &str) -> Checking {
        Checking(self.checking.enter_names(vec![key.to_owned()]))
    }

    /// Whether a check admitted by the lockout of `key` is running in this process.
    pub(crate) fn being_checked(&self, key: &str) -> bool {
        self.checking.running(key) > 0
    }

    /// Returns when a check admitted by the lockout ends, or after a short while.
    pub(crate) async fn one_check_ends(&self) {
        self.checking.one_ends().await;
    }

    /// An administrator lifted the limits of an account: its failed checks, counted on
    /// `subjects` (the account and its identifiers), are forgotten.
    pub(crate) async fn forget(&self, subjects: &[&str]) {
        self.counter.forget(subjects).await;
    }

    /// The password matched: the attempt is taken back from the address, and the account and
    /// identifier start from zero.
    pub(crate) async fn succeeded(&self, admitted: Admitted) {
        self.counter
            .settle(admitted, |subject| !subject.starts_with("address:"))
            .await;
    }
}

/// An action counted per client address and, where it names one, per account: registration,
/// a password reset request.
#[derive(Debug)]
pub(crate) struct ActionThrottle {
    /// Names the action's counters (`register`, `reset`).
    action: &'static str,
    per_address: u32,
    per_account: u32,
    counter: Counter,
}

impl ActionThrottle {
    /// Allows `per_address` attempts per address and `per_account` per account per `window`;
    /// 0 turns either limit off.
    pub(crate) fn new(
        action: &'static str,
        per_address: u32,
        per_account: u32,
        window: Duration,
        shared: Option<Store>,
    ) -> ActionThrottle {
        ActionThrottle {
            action,
            per_address,
            per_account,
            counter: Counter::new(window, shared),
        }
    }

    /// Counts an attempt from `address`; `Err(wait)` when it has none left.
    pub(crate) async fn reserve(&self, address: IpAddr) -> Result<(), Duration> {
        let key = format!("{}:{}", self.action, address_subject(address));
        self.take(key, self.per_address).await
    }

    /// Counts an attempt on account `id`; `Err(wait)` when it has none left.
    pub(crate) async fn reserve_account(&self, id: i64) -> Result<(), Duration> {
        let key = format!("{}:{}", self.action, account_subject(id));
        self.take(key, self.per_account).await
    }

    async fn take(&self, key: String, limit: u32) -> Result<(), Duration> {
        let subjects = Subjects {
            gates: vec![(key, limit)],
            last: None,
        };
        match self.counter.reserve(subjects).await {
            Ok(_) => Ok(()),
            Err(Refusal::Throttled(wait) | Refusal::AccountExhausted(wait)) => Err(wait),
        }
    }
}

/// A client address among the counters: its network (see [`counted_network`]), so that
/// hopping through one's own IPv6 addresses gains nothing.
pub(crate) fn address_subject(address: IpAddr) -> String {
    match counted_network(address) {
        IpAddr::V4(v4) => format!("address:{v4}"),
        IpAddr::V6(network) => format!("address:{network}/64"),
    }
}

/// An identifier among the counters (and the lockout's keys): one key for every spelling of it (see
/// [`tollgate_core::identity::fold`]).
pub(crate) fn identifier_subject(identifier: &str) -> String {
    format!("name:{}", tollgate_core::identity::fold(identifier))
}

/// An account among the counters, whichever identifier named it.
pub(crate) fn account_subject(id: i64) -> String {
    format!("user:{id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const ADDR: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    fn attempt(identifier: &str, account: Option<i64>) -> Attempt<'_> {
        Attempt {
            address: ADDR,
            identifier: Some(identifier),
            account,
        }
    }

    #[tokio::test]
    async fn every_spelling_of_an_identifier_shares_one_budget() {
        let throttle = LoginThrottle::new(3, 100, Duration::from_secs(60), None);
        for name in ["Ann", "ANN", "ａｎｎ"] {
            assert!(
                throttle.reserve(attempt(name, None)).await.is_ok(),
                "{name}"
            );
        }
        let refused = throttle.reserve(attempt(" ann ", None)).await;
        assert!(matches!(refused, Err(Refusal::Throttled(_))), "{refused:?}");
        assert!(throttle.reserve(attempt("bob", None)).await.is_ok());
    }

    #[tokio::test]
    async fn an_account_named_three_ways_has_one_budget_and_does_not_link_the_names() {
        let throttle = LoginThrottle::new(3, 100, Duration::from_secs(60), None);
        for name in ["ann", "ann@example.com", "+15550100"] {
            assert!(throttle.reserve(attempt(name, Some(7))).await.is_ok());
        }
        // The account is out of checks, but this name is not: not a 429, which would say that
        // the name belongs to the account.
        let refused = throttle.reserve(attempt("ann", Some(7))).await;
        assert!(
            matches!(refused, Err(Refusal::AccountExhausted(_))),
            "{refused:?}"
        );
    }

    #[tokio::test]
    async fn a_match_takes_the_attempt_back_and_clears_the_account() {
        let throttle = LoginThrottle::new(2, 2, Duration::from_secs(60), None);
        let first = throttle
            .reserve(attempt("ann", Some(1)))
            .await
            .expect("admits");
        throttle.succeeded(first).await;
        // The address got its place back and the account starts again.
        for _ in 0..2 {
            assert!(throttle.reserve(attempt("ann", Some(1))).await.is_ok());
        }
        assert!(throttle.reserve(attempt("bob", Some(2))).await.is_err());
    }

    /// A place given back goes to the attempt that waited for it, not to one arriving just
    /// then: a newcomer queues behind the attempts already waiting on its subjects.
    #[tokio::test]
    async fn a_place_given_back_goes_to_the_attempt_waiting_longest() {
        let throttle = Arc::new(LoginThrottle::new(100, 2, Duration::from_secs(60), None));
        let first = throttle.reserve(attempt("ann", Some(1))).await;
        let second = throttle.reserve(attempt("ann", Some(1))).await;
        let waiter = tokio::spawn({
            let throttle = Arc::clone(&throttle);
            async move { throttle.reserve(attempt("ann", Some(1))).await }
        });
        // The waiter was refused (two checks running from this address) and waits in line.
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished());
        // A match gives the address's place back, and at once another attempt arrives.
        throttle.succeeded(first.expect("admits")).await;
        let newcomer = tokio::time::timeout(
            Duration::from_millis(300),
            throttle.reserve(attempt("ann", Some(1))),
        )
        .await;
        assert!(newcomer.is_err(), "the newcomer went first: {newcomer:?}");
        let waited = tokio::time::timeout(Duration::from_secs(1), waiter)
            .await
            .expect("the waiter was admitted in time")
            .expect("joined");
        assert!(waited.is_ok(), "{waited:?}");
        drop(second);
    }

    #[test]
    fn the_limit_is_reached_then_released_by_time() {
        let counter = Counter::new(Duration::from_secs(60), None);
        let subjects = Subjects {
            gates: vec![("name:ann".to_owned(), 3)],
            last: None,
        };
        let start = Instant::now();
        for i in 0..3 {
            let at = start + Duration::from_secs(i);
            assert!(counter.reserve_here(&subjects, at).is_ok());
        }
        let now = start + Duration::from_secs(10);
        assert!(matches!(
            counter.reserve_here(&subjects, now),
            Err(Refusal::Throttled(wait)) if wait == Duration::from_secs(50)
        ));
        let later = start + Duration::from_secs(60);
        assert!(counter.reserve_here(&subjects, later).is_ok());
    }

    #[tokio::test]
    async fn zero_turns_a_limit_off() {
        let throttle = LoginThrottle::new(0, 0, Duration::from_secs(60), None);
        for _ in 0..50 {
            assert!(throttle.reserve(attempt("a", Some(1))).await.is_ok());
        }
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_64_and_mapped_ipv4_as_ipv4() {
        let v6 = |text: &str| address_subject(text.parse().expect("address"));
        assert_eq!(v6("2001:db8:1:2:aaaa::1"), v6("2001:db8:1:2:ffff::9"));
        assert_ne!(v6("2001:db8:1:2::1"), v6("2001:db8:1:3::1"));
        assert_eq!(v6("2001:db8:1:2::1"), "address:2001:db8:1:2::/64");
        assert_eq!(v6("::ffff:192.0.2.7"), v6("192.0.2.7"));
    }

    #[tokio::test]
    async fn registrations_are_counted_per_address() {
        let throttle = ActionThrottle::new("register", 2, 0, Duration::from_secs(60), None);
        assert!(throttle.reserve(ADDR).await.is_ok());
        assert!(throttle.reserve(ADDR).await.is_ok());
        assert!(throttle.reserve(ADDR).await.is_err());
        let other = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));
        assert!(throttle.reserve(other).await.is_ok());
    }
}
