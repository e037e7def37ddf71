//! Accounts and login sessions of this node's users.
//!
//! | tree                        | key              | value        |
//! |-----------------------------|------------------|--------------|
//! | `localpart__account`        | localpart        | [`Account`]  |
//! | `tokenhash__session`        | SHA-256 of token | [`Session`]  |
//! | `family__login`             | family (BE)      | [`Login`]    |
//! | `codehash__invite`          | SHA-256 of code  | [`Invite`]   |
//!
//! Refresh tokens are stored only as hashes: a copy of the database does not
//! let anyone log in. Every login is a token *family*; each refresh rotates
//! the token, and presenting an already-rotated token revokes the family.

use bincode::{Decode, Encode};
use confab_wire::BlobId;

use super::{Store, decode, encode, store_err};
use crate::error::{Error, Result};

/// A user account.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Account {
    /// The user's name on this node.
    pub localpart: String,
    /// Password hash in PHC string form (argon2id).
    pub password_hash: String,
    /// Display name.
    pub display_name: String,
    /// Avatar blob.
    pub avatar: Option<BlobId>,
    /// Status text.
    pub status: String,
    /// Disabled by an admin: cannot log in.
    pub disabled: bool,
    /// Creation time (ms since epoch).
    pub created: u64,
}

/// One refresh token (stored by hash).
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Session {
    /// The login it belongs to.
    pub family: u64,
    /// Expiry (ms since epoch).
    pub expires: u64,
    /// Already exchanged for a newer token; presenting it again is theft.
    pub rotated: bool,
}

/// One login: a family of refresh tokens.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Login {
    /// Whose.
    pub localpart: String,
    /// When it began (ms since epoch).
    pub created: u64,
    /// Revoked (logout, log out everywhere, or token reuse).
    pub revoked: bool,
}

/// An invite code for registration (stored by hash).
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Invite {
    /// Registrations it still allows.
    pub uses_left: u32,
    /// Expiry (ms since epoch).
    pub expires: u64,
    /// When it was made.
    pub created: u64,
}

/// What presenting a refresh token led to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refresh {
    /// Valid: the old token is now rotated; here is the login.
    Rotated {
        /// The family.
        family: u64,
        /// Whose.
        localpart: String,
    },
    /// Unknown, expired or revoked.
    Invalid,
    /// A rotated token came back: the whole family is now revoked.
    Reused {
        /// The family revoked.
        family: u64,
        /// Whose.
        localpart: String,
    },
}

impl Store {
    fn tree(&self, name: &'static str) -> Result<sled::Tree> {
        self.db.open_tree(name).map_err(store_err(name))
    }

    /// Creates an account; false if the name is taken.
    pub fn create_account(&self, account: &Account) -> Result<bool> {
        let t = self.tree("localpart__account")?;
        let value = encode("account", account)?;
        let swapped = t
            .compare_and_swap(
                account.localpart.as_bytes(),
                None as Option<&[u8]>,
                Some(value),
            )
            .map_err(store_err("create account"))?;
        Ok(swapped.is_ok())
    }

    /// An account by name.
    pub fn account(&self, localpart: &str) -> Result<Option<Account>> {
        self.tree("localpart__account")?
            .get(localpart.as_bytes())
            .map_err(store_err("read account"))?
            .map(|b| decode("account", &b))
            .transpose()
    }

    /// Changes an account; `None` if there is no such account.
    pub fn update_account(
        &self,
        localpart: &str,
        mut change: impl FnMut(&mut Account),
    ) -> Result<Option<Account>> {
        let t = self.tree("localpart__account")?;
        loop {
            let Some(old) = t
                .get(localpart.as_bytes())
                .map_err(store_err("read account"))?
            else {
                return Ok(None);
            };
            let mut acct: Account = decode("account", &old)?;
            change(&mut acct);
            let new = encode("account", &acct)?;
            if t.compare_and_swap(localpart.as_bytes(), Some(old), Some(new))
                .map_err(store_err("update account"))?
                .is_ok()
            {
                return Ok(Some(acct));
            }
        }
    }

    /// Accounts whose name or display name starts with `prefix`
    /// (case-insensitive), at most `limit`.
    pub fn find_accounts(&self, prefix: &str, limit: usize) -> Result<Vec<Account>> {
        let p = prefix.to_lowercase();
        let mut out = Vec::new();
        for item in self.tree("localpart__account")?.iter() {
            let (_, v) = item.map_err(store_err("scan accounts"))?;
            let a: Account = decode("account", &v)?;
            if a.localpart.starts_with(&p) || a.display_name.to_lowercase().starts_with(&p) {
                out.push(a);
                if out.len() == limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// Stores an invite code (by hash).
    pub fn add_invite(&self, hash: &[u8; 32], uses: u32, expires: u64, now: u64) -> Result<()> {
        let inv = Invite {
            uses_left: uses,
            expires,
            created: now,
        };
        self.tree("codehash__invite")?
            .insert(hash, encode("invite", &inv)?)
            .map(|_| ())
            .map_err(store_err("write invite"))
    }

    /// Spends one use of an invite code; false if it is unknown, used up
    /// or expired.
    pub fn redeem_invite(&self, hash: &[u8; 32], now: u64) -> Result<bool> {
        self.change_invite(hash, |inv| {
            if inv.uses_left == 0 || now >= inv.expires {
                return false;
            }
            inv.uses_left -= 1;
            true
        })
    }

    /// Gives back a use spent by a registration that failed.
    pub fn refund_invite(&self, hash: &[u8; 32]) -> Result<()> {
        self.change_invite(hash, |inv| {
            inv.uses_left = inv.uses_left.saturating_add(1);
            true
        })
        .map(|_| ())
    }

    fn change_invite(
        &self,
        hash: &[u8; 32],
        mut f: impl FnMut(&mut Invite) -> bool,
    ) -> Result<bool> {
        let t = self.tree("codehash__invite")?;
        loop {
            let Some(old) = t.get(hash).map_err(store_err("read invite"))? else {
                return Ok(false);
            };
            let mut inv: Invite = decode("invite", &old)?;
            if !f(&mut inv) {
                return Ok(false);
            }
            let new = encode("invite", &inv)?;
            if t.compare_and_swap(hash, Some(old), Some(new))
                .map_err(store_err("write invite"))?
                .is_ok()
            {
                return Ok(true);
            }
        }
    }

    /// Starts a login with its first refresh token (given by its hash).
    pub fn start_login(
        &self,
        localpart: &str,
        token_hash: [u8; 32],
        now: u64,
        expires: u64,
    ) -> Result<u64> {
        let family = self.db.generate_id().map_err(store_err("new login id"))?;
        let login = Login {
            localpart: localpart.to_string(),
            created: now,
            revoked: false,
        };
        self.tree("family__login")?
            .insert(family.to_be_bytes(), encode("login", &login)?)
            .map_err(store_err("write login"))?;
        self.put_token(token_hash, family, expires)?;
        Ok(family)
    }

    fn put_token(&self, token_hash: [u8; 32], family: u64, expires: u64) -> Result<()> {
        let s = Session {
            family,
            expires,
            rotated: false,
        };
        self.tree("tokenhash__session")?
            .insert(token_hash, encode("session", &s)?)
            .map_err(store_err("write session"))?;
        Ok(())
    }

    /// The login a refresh token (by hash) belongs to, if it is known.
    pub fn session_family(&self, token_hash: [u8; 32]) -> Result<Option<u64>> {
        self.tree("tokenhash__session")?
            .get(token_hash)
            .map_err(store_err("read session"))?
            .map(|b| decode::<Session>("session", &b).map(|s| s.family))
            .transpose()
    }

    /// A login.
    pub fn login(&self, family: u64) -> Result<Option<Login>> {
        self.tree("family__login")?
            .get(family.to_be_bytes())
            .map_err(store_err("read login"))?
            .map(|b| decode("login", &b))
            .transpose()
    }

    /// Exchanges a refresh token (by hash) for a new one: the old one is
    /// marked rotated; a rotated one presented again revokes its family.
    pub fn refresh(
        &self,
        old_hash: [u8; 32],
        new_hash: [u8; 32],
        now: u64,
        expires: u64,
    ) -> Result<Refresh> {
        let sessions = self.tree("tokenhash__session")?;
        loop {
            let Some(bytes) = sessions.get(old_hash).map_err(store_err("read session"))? else {
                return Ok(Refresh::Invalid);
            };
            let s: Session = decode("session", &bytes)?;
            let Some(login) = self.login(s.family)? else {
                return Ok(Refresh::Invalid);
            };
            if login.revoked || now >= s.expires {
                return Ok(Refresh::Invalid);
            }
            if s.rotated {
                self.revoke_login(s.family)?;
                return Ok(Refresh::Reused {
                    family: s.family,
                    localpart: login.localpart,
                });
            }
            let rotated = Session {
                rotated: true,
                ..s.clone()
            };
            let swapped = sessions
                .compare_and_swap(old_hash, Some(bytes), Some(encode("session", &rotated)?))
                .map_err(store_err("rotate session"))?;
            if swapped.is_err() {
                continue; // raced with another refresh of the same token: re-judge
            }
            self.put_token(new_hash, s.family, expires)?;
            return Ok(Refresh::Rotated {
                family: s.family,
                localpart: login.localpart,
            });
        }
    }

    /// Revokes one login.
    pub fn revoke_login(&self, family: u64) -> Result<bool> {
        let t = self.tree("family__login")?;
        let Some(bytes) = t
            .get(family.to_be_bytes())
            .map_err(store_err("read login"))?
        else {
            return Ok(false);
        };
        let mut login: Login = decode("login", &bytes)?;
        let was = login.revoked;
        login.revoked = true;
        t.insert(family.to_be_bytes(), encode("login", &login)?)
            .map_err(store_err("revoke login"))?;
        Ok(!was)
    }

    /// Revokes every login of a user; returns the families revoked.
    pub fn revoke_all_logins(&self, localpart: &str) -> Result<Vec<u64>> {
        let t = self.tree("family__login")?;
        let mut revoked = Vec::new();
        for item in t.iter() {
            let (k, v) = item.map_err(store_err("scan logins"))?;
            let login: Login = decode("login", &v)?;
            if login.localpart == localpart && !login.revoked {
                let family =
                    u64::from_be_bytes(k.as_ref().try_into().map_err(|_| Error::Corrupt {
                        what: "login key",
                        detail: "not 8 bytes".into(),
                    })?);
                self.revoke_login(family)?;
                revoked.push(family);
            }
        }
        Ok(revoked)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn account(name: &str) -> Account {
        Account {
            localpart: name.into(),
            password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
            display_name: name.to_uppercase(),
            avatar: None,
            status: String::new(),
            disabled: false,
            created: 1,
        }
    }

    #[test]
    fn accounts_are_unique_and_updatable() {
        let store = Store::temporary().unwrap();
        assert!(store.create_account(&account("alice")).unwrap());
        assert!(!store.create_account(&account("alice")).unwrap());
        assert!(store.create_account(&account("albert")).unwrap());
        let a = store
            .update_account("alice", |a| a.status = "in a meeting".into())
            .unwrap()
            .unwrap();
        assert_eq!(store.account("alice").unwrap().unwrap(), a);
        assert!(store.update_account("nobody", |_| {}).unwrap().is_none());
        assert_eq!(store.find_accounts("al", 10).unwrap().len(), 2);
        assert_eq!(
            store.find_accounts("ALB", 10).unwrap()[0].localpart,
            "albert"
        );
    }

    #[test]
    fn refresh_rotates_and_reuse_revokes_the_family() {
        let store = Store::temporary().unwrap();
        let family = store.start_login("alice", [1; 32], 0, 1000).unwrap();
        assert_eq!(
            store.refresh([1; 32], [2; 32], 10, 1000).unwrap(),
            Refresh::Rotated {
                family,
                localpart: "alice".into()
            }
        );
        assert_eq!(
            store.refresh([2; 32], [3; 32], 20, 1000).unwrap(),
            Refresh::Rotated {
                family,
                localpart: "alice".into()
            }
        );
        // The stolen first token comes back: the family dies, even the newest token.
        assert_eq!(
            store.refresh([1; 32], [4; 32], 30, 1000).unwrap(),
            Refresh::Reused {
                family,
                localpart: "alice".into()
            }
        );
        assert_eq!(
            store.refresh([3; 32], [5; 32], 40, 1000).unwrap(),
            Refresh::Invalid
        );
        // Expiry and unknown tokens.
        let f2 = store.start_login("alice", [6; 32], 0, 100).unwrap();
        assert_eq!(
            store.refresh([6; 32], [7; 32], 100, 1000).unwrap(),
            Refresh::Invalid
        );
        assert_eq!(
            store.refresh([9; 32], [8; 32], 0, 1000).unwrap(),
            Refresh::Invalid
        );
        // Log out everywhere.
        let f3 = store.start_login("alice", [10; 32], 0, 1000).unwrap();
        let revoked = store.revoke_all_logins("alice").unwrap();
        assert!(revoked.contains(&f3) && revoked.contains(&f2));
        assert_eq!(
            store.refresh([10; 32], [11; 32], 1, 1000).unwrap(),
            Refresh::Invalid
        );
    }
}
