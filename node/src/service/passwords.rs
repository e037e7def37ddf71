//! Password hashing: argon2id at OWASP's cost (19 MiB, 2 passes, 1 lane),
//! at most [`Passwords::slots`] hashes at once, each in a memory block
//! of its own that is made once and reused.
//!
//! Why the blocks are kept: each hash needs 19 MiB. Allocated per hash, on
//! whichever of the blocking pool's threads runs the sign-in, glibc hands
//! the freed memory to that thread's arena and keeps it there (the first
//! free of a large block raises its mmap threshold above 19 MiB, so later
//! blocks come from arenas and are never returned): 100 sign-ups took a
//! fresh node from 15 MiB to over 600 MiB. With one block per slot, the
//! memory is `slots × 19 MiB` for the life of the process, whatever the
//! number of sign-ins, and no more than `slots` hashes compete for the
//! cores. Hashes beyond that wait, up to [`QUEUE_MAX`]; more are refused
//! as `rate_limited` rather than queued without end.

use std::sync::{Condvar, Mutex};

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use confab_wire::client::{ClientError, ErrorCode};

use super::accounts::error;

/// argon2id memory cost, KiB.
pub const MEMORY_KIB: u32 = 19 * 1024;
/// argon2id passes.
pub const PASSES: u32 = 2;
/// Hashes that may wait for a slot; more are refused.
pub const QUEUE_MAX: usize = 64;
/// Most hashes at once, whatever the cores: each slot keeps 19 MiB for
/// the life of the process, and two slots (about 140 sign-ins a second)
/// keep a node under 64 MiB at rest on any machine.
pub const SLOTS_MAX: usize = 2;

fn params() -> Params {
    Params::new(MEMORY_KIB, PASSES, 1, None).unwrap_or_default()
}

#[derive(Debug)]
struct Pool {
    /// Free blocks; `None` for a slot not used yet.
    free: Vec<Option<Vec<Block>>>,
    waiting: usize,
}

/// The node's password hashing.
#[derive(Debug)]
pub struct Passwords {
    slots: usize,
    pool: Mutex<Pool>,
    freed: Condvar,
}

/// A slot's memory while a hash runs; back to the pool on drop.
struct Lease<'a> {
    owner: &'a Passwords,
    blocks: Option<Vec<Block>>,
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        let mut p = self.owner.lock();
        p.free.push(self.blocks.take());
        drop(p);
        self.owner.freed.notify_one();
    }
}

fn busy() -> ClientError {
    let mut e = error(
        ErrorCode::RateLimited,
        "the node is busy signing people in; try again in a moment",
    );
    e.retry_after_ms = Some(1000);
    e
}

fn failed() -> ClientError {
    error(ErrorCode::Internal, "cannot hash the password")
}

impl Passwords {
    /// Hashing with `slots` at once (at least one).
    pub fn new(slots: usize) -> Passwords {
        let slots = slots.max(1);
        Passwords {
            slots,
            pool: Mutex::new(Pool {
                free: (0..slots).map(|_| None).collect(),
                waiting: 0,
            }),
            freed: Condvar::new(),
        }
    }

    /// One slot per core, at most [`SLOTS_MAX`].
    pub fn for_this_machine() -> Passwords {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        Passwords::new(cores.min(SLOTS_MAX))
    }

    /// Hashes at once, at most.
    pub fn slots(&self) -> usize {
        self.slots
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pool> {
        self.pool.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lease(&self) -> Result<Lease<'_>, ClientError> {
        let mut p = self.lock();
        if p.free.is_empty() {
            if p.waiting >= QUEUE_MAX {
                return Err(busy());
            }
            p.waiting += 1;
            while p.free.is_empty() {
                p = self.freed.wait(p).unwrap_or_else(|e| e.into_inner());
            }
            p.waiting -= 1;
        }
        let blocks = p.free.pop().flatten();
        Ok(Lease {
            owner: self,
            blocks: Some(blocks.unwrap_or_default()),
        })
    }

    /// Runs argon2id with `params` into `out`, in a slot's memory.
    fn run(
        &self,
        algorithm: Algorithm,
        version: Version,
        params: Params,
        password: &[u8],
        salt: &[u8],
        out: &mut [u8],
    ) -> Result<(), ClientError> {
        let mut lease = self.lease()?;
        let count = params.block_count();
        let blocks = lease.blocks.get_or_insert_with(Vec::new);
        if blocks.len() != count {
            // Made once per slot (a stored hash of another cost resizes it).
            *blocks = vec![Block::default(); count];
        }
        Argon2::new(algorithm, version, params)
            .hash_password_into_with_memory(password, salt, out, &mut blocks[..])
            .map_err(|_| failed())
    }

    /// Hashes a password into a PHC string (`$argon2id$v=19$m=…`).
    pub fn hash(&self, password: &str) -> Result<String, ClientError> {
        let mut salt_bytes = [0u8; 16];
        getrandom::getrandom(&mut salt_bytes)
            .map_err(|_| error(ErrorCode::Internal, "no randomness available"))?;
        let salt = SaltString::encode_b64(&salt_bytes).map_err(|_| failed())?;
        let params = params();
        let mut out = [0u8; 32];
        self.run(
            Algorithm::Argon2id,
            Version::V0x13,
            params.clone(),
            password.as_bytes(),
            &salt_bytes,
            &mut out,
        )?;
        let phc = PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(&params).map_err(|_| failed())?,
            salt: Some(salt.as_salt()),
            hash: Some(Output::new(&out).map_err(|_| failed())?),
        };
        Ok(phc.to_string())
    }

    /// Whether `password` matches the PHC string `phc` (constant-time
    /// comparison). A string that does not parse matches nothing.
    pub fn matches(&self, password: &str, phc: &str) -> Result<bool, ClientError> {
        let Ok(h) = PasswordHash::new(phc) else {
            return Ok(false);
        };
        let (Ok(algorithm), Some(salt), Some(expected)) =
            (Algorithm::try_from(h.algorithm), h.salt, h.hash)
        else {
            return Ok(false);
        };
        let version = match h.version.map(Version::try_from) {
            Some(Ok(v)) => v,
            Some(Err(_)) => return Ok(false),
            None => Version::default(),
        };
        let Ok(params) = Params::try_from(&h) else {
            return Ok(false);
        };
        let mut salt_buf = [0u8; 64];
        let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
            return Ok(false);
        };
        let mut out = vec![0u8; expected.len()];
        self.run(
            algorithm,
            version,
            params,
            password.as_bytes(),
            salt,
            &mut out,
        )?;
        let got = Output::new(&out).map_err(|_| failed())?;
        // `Output`'s equality is constant-time.
        Ok(got == expected)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use argon2::PasswordVerifier;

    #[test]
    fn hashes_are_standard_phc_strings() {
        let p = Passwords::new(1);
        let phc = p.hash("correct horse").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(p.matches("correct horse", &phc).unwrap());
        assert!(!p.matches("wrong horse", &phc).unwrap());
        assert!(!p.matches("correct horse", "not a hash").unwrap());
        // The argon2 crate itself agrees, both ways.
        let parsed = PasswordHash::new(&phc).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"correct horse", &parsed)
                .is_ok()
        );
        let theirs = {
            use argon2::PasswordHasher;
            let salt = SaltString::encode_b64(&[7; 16]).unwrap();
            Argon2::new(Algorithm::Argon2id, Version::V0x13, params())
                .hash_password(b"hunter2 hunter2", &salt)
                .unwrap()
                .to_string()
        };
        assert!(p.matches("hunter2 hunter2", &theirs).unwrap());
    }

    #[test]
    fn hashes_beyond_the_slots_wait_and_beyond_the_queue_are_refused() {
        let p = Passwords::new(1);
        let held = p.lease().unwrap();
        // Fill the queue with waiters.
        std::thread::scope(|s| {
            for _ in 0..QUEUE_MAX {
                let p = &p;
                s.spawn(move || drop(p.lease().unwrap()));
            }
            // Wait (for a state, not a time) until all are queued.
            loop {
                if p.lock().waiting == QUEUE_MAX {
                    break;
                }
                std::thread::yield_now();
            }
            assert_eq!(
                p.lease().err().map(|e| e.code),
                Some(ErrorCode::RateLimited)
            );
            drop(held);
        });
        assert_eq!(p.lock().waiting, 0);
        assert_eq!(p.lock().free.len(), 1, "the slot came back");
    }
}
