//! Sign-in throttling: failed passwords back off, per address and per
//! account, and nothing else does.
//!
//! Counting every attempt per name (as the gateway once did) let anyone
//! keep a chosen user out by failing on purpose. Here only *failures*
//! count, and they count against the address that made them:
//!
//! - **an address** gets `free_per_address` failures in a [`WINDOW_MS`],
//!   then waits before each try: 1 s, 2 s, 4 s, … up to [`BACKOFF_MAX_MS`];
//! - **an address and an account** together get [`FREE_PER_ACCOUNT`]
//!   failures, then back off the same way (a guesser stuck on one user);
//! - **an account under attack** (failures from [`ALARM_ADDRESSES`]
//!   addresses or more in a window) takes tries only from addresses that
//!   have not failed on it in the window. The real user, at home or in
//!   the office, still gets in with the right password; each address of a
//!   distributed guesser gets one failure and then sits out.
//!
//! A success clears that address's backoff for that account. Tables are
//! bounded ([`TRACKED_MAX`] entries each); the oldest are forgotten first.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;

/// Failures are remembered this long after the last one.
pub const WINDOW_MS: u64 = 15 * 60 * 1000;
/// The longest wait a backoff imposes.
pub const BACKOFF_MAX_MS: u64 = 15 * 60 * 1000;
/// Failures one address may make on one account before backing off.
pub const FREE_PER_ACCOUNT: u32 = 5;
/// Distinct failing addresses that put an account under attack.
pub const ALARM_ADDRESSES: usize = 3;
/// Entries kept per table.
pub const TRACKED_MAX: usize = 100_000;

/// Who is waiting, when a try is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    /// The address backs off after its failures.
    Address {
        /// Milliseconds until it may try again.
        ms: u64,
    },
    /// This address backs off on this account, or the account is under
    /// attack and this address has failed lately.
    Account {
        /// Milliseconds until it may try again.
        ms: u64,
    },
}

#[derive(Clone, Copy, Debug, Default)]
struct Failures {
    count: u32,
    last: u64,
    until: u64,
}

impl Failures {
    fn fresh(&self, now: u64) -> bool {
        now.saturating_sub(self.last) < WINDOW_MS
    }

    fn fail(&mut self, free: u32, now: u64) {
        if !self.fresh(now) {
            *self = Failures::default();
        }
        self.count += 1;
        self.last = now;
        if self.count > free {
            let doublings = (self.count - free - 1).min(20);
            self.until = now + (1000u64 << doublings).min(BACKOFF_MAX_MS);
        }
    }
}

#[derive(Debug)]
struct Table<K> {
    map: HashMap<K, Failures>,
}

impl<K: Hash + Eq + Clone> Table<K> {
    fn new() -> Self {
        Table {
            map: HashMap::new(),
        }
    }

    fn get(&self, k: &K, now: u64) -> Option<Failures> {
        self.map.get(k).copied().filter(|f| f.fresh(now))
    }

    fn entry(&mut self, k: K, now: u64) -> &mut Failures {
        if self.map.len() >= TRACKED_MAX && !self.map.contains_key(&k) {
            self.map.retain(|_, f| f.fresh(now));
            if self.map.len() >= TRACKED_MAX {
                // Forget the tenth longest quiet.
                let mut lasts: Vec<u64> = self.map.values().map(|f| f.last).collect();
                let cut = lasts.len() / 10;
                lasts.select_nth_unstable(cut);
                let bound = lasts[cut];
                self.map.retain(|_, f| f.last > bound);
            }
        }
        self.map.entry(k).or_default()
    }
}

#[derive(Debug)]
struct Tables {
    by_address: Table<IpAddr>,
    by_pair: Table<(String, IpAddr)>,
    /// Per account: which addresses failed on it in the window.
    attackers: HashMap<String, (u64, HashSet<IpAddr>)>,
}

/// The node's sign-in throttle.
#[derive(Debug)]
pub struct Throttle {
    free_per_address: u32,
    tables: Mutex<Tables>,
}

/// Addresses remembered per account under attack.
const ATTACKERS_PER_ACCOUNT_MAX: usize = 1024;

impl Throttle {
    /// A throttle letting each address fail `free_per_address` times in a
    /// window before it backs off.
    pub fn new(free_per_address: u32) -> Throttle {
        Throttle {
            free_per_address: free_per_address.max(1),
            tables: Mutex::new(Tables {
                by_address: Table::new(),
                by_pair: Table::new(),
                attackers: HashMap::new(),
            }),
        }
    }

    fn t(&self) -> std::sync::MutexGuard<'_, Tables> {
        self.tables.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// May `address` try a password for `account` now?
    pub fn check(&self, account: &str, address: IpAddr, now: u64) -> Result<(), Wait> {
        let t = self.t();
        if let Some(f) = t.by_address.get(&address, now)
            && f.until > now
        {
            return Err(Wait::Address { ms: f.until - now });
        }
        if let Some(f) = t.by_pair.get(&(account.to_string(), address), now)
            && f.until > now
        {
            return Err(Wait::Account { ms: f.until - now });
        }
        if let Some((last, addrs)) = t.attackers.get(account)
            && now.saturating_sub(*last) < WINDOW_MS
            && addrs.len() >= ALARM_ADDRESSES
            && addrs.contains(&address)
        {
            // Under attack: only addresses that have not been failing.
            return Err(Wait::Account {
                ms: WINDOW_MS - now.saturating_sub(*last),
            });
        }
        Ok(())
    }

    /// A wrong password from `address` for `account`.
    pub fn failed(&self, account: &str, address: IpAddr, now: u64) {
        let free = self.free_per_address;
        let mut t = self.t();
        t.by_address.entry(address, now).fail(free, now);
        t.by_pair
            .entry((account.to_string(), address), now)
            .fail(FREE_PER_ACCOUNT, now);
        if t.attackers.len() >= TRACKED_MAX && !t.attackers.contains_key(account) {
            t.attackers
                .retain(|_, (last, _)| now.saturating_sub(*last) < WINDOW_MS);
        }
        if t.attackers.len() < TRACKED_MAX || t.attackers.contains_key(account) {
            let (last, addrs) = t
                .attackers
                .entry(account.to_string())
                .or_insert_with(|| (now, HashSet::new()));
            if now.saturating_sub(*last) >= WINDOW_MS {
                addrs.clear();
            }
            *last = now;
            if addrs.len() < ATTACKERS_PER_ACCOUNT_MAX {
                addrs.insert(address);
            }
        }
    }

    /// A failure that is not a password (a wrong invite code): it counts
    /// against the address only.
    pub fn failed_address(&self, address: IpAddr, now: u64) {
        let free = self.free_per_address;
        self.t().by_address.entry(address, now).fail(free, now);
    }

    /// The right password from `address` for `account`.
    pub fn succeeded(&self, account: &str, address: IpAddr) {
        let mut t = self.t();
        t.by_pair.map.remove(&(account.to_string(), address));
        if let Some((_, addrs)) = t.attackers.get_mut(account) {
            addrs.remove(&address);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([198, 51, 100, n])
    }

    #[test]
    fn a_strangers_failures_never_lock_out_the_real_user() {
        let th = Throttle::new(20);
        let attacker = ip(66);
        let mut now = 1_000_000;
        // Its free failures, and the one past them, are each tried…
        for _ in 0..=FREE_PER_ACCOUNT {
            assert!(th.check("alice", attacker, now).is_ok());
            th.failed("alice", attacker, now);
        }
        // …then the attacker backs off on alice…
        assert!(matches!(
            th.check("alice", attacker, now),
            Err(Wait::Account { ms: 1000 })
        ));
        // …and each further failure doubles the wait.
        now += 1000;
        th.failed("alice", attacker, now);
        assert!(matches!(
            th.check("alice", attacker, now),
            Err(Wait::Account { ms: 2000 })
        ));
        // Alice, from her own address, is not held up at all.
        assert!(th.check("alice", ip(1), now).is_ok());
        th.succeeded("alice", ip(1));
    }

    #[test]
    fn an_address_that_keeps_failing_backs_off_on_every_account() {
        let th = Throttle::new(3);
        let a = ip(9);
        for (i, name) in ["u1", "u2", "u3"].iter().enumerate() {
            th.failed(name, a, 10 + i as u64);
        }
        assert!(th.check("u4", a, 12).is_ok(), "three free failures");
        th.failed("u4", a, 12);
        assert!(matches!(
            th.check("u5", a, 12),
            Err(Wait::Address { ms: 1000 })
        ));
        // The window forgets.
        assert!(th.check("u5", a, 12 + WINDOW_MS).is_ok());
    }

    #[test]
    fn an_account_under_attack_takes_tries_only_from_clean_addresses() {
        let th = Throttle::new(20);
        let now = 5_000;
        for n in 0..ALARM_ADDRESSES as u8 {
            th.failed("alice", ip(100 + n), now);
        }
        // An address that failed on it may not try again, even once.
        assert!(th.check("alice", ip(100), now).is_err());
        // An address with no failures may: the real user gets in.
        assert!(th.check("alice", ip(1), now).is_ok());
        // Other accounts are not affected.
        assert!(th.check("bob", ip(100), now).is_ok());
    }

    #[test]
    fn tables_stay_bounded() {
        let th = Throttle::new(20);
        for i in 0..(TRACKED_MAX as u32 + 10) {
            let addr = IpAddr::from(i.to_be_bytes());
            th.failed_address(addr, u64::from(i));
        }
        assert!(th.t().by_address.map.len() <= TRACKED_MAX);
    }
}
