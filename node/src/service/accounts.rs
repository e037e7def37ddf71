//! Accounts and sessions: registration, login with argon2id passwords,
//! access tokens signed by the node, refresh tokens rotated on every use
//! (a rotated token presented again revokes its whole login), logout.

use std::net::IpAddr;
use std::sync::Arc;

use confab_wire::client::{AccessToken, ClientError, ErrorCode, SessionGrant, TokenClaims};
use confab_wire::{NodeKey, UserId};
use sha2::{Digest, Sha256};

use super::limits::{Limit, Limits};
use super::passwords::Passwords;
use super::throttle::{Throttle, Wait};
use crate::store::Store;
use crate::store::accounts::{Account, Refresh};
use confab_wire::client::Registration as RegistrationMode;

/// Access tokens live this long (ms).
pub const ACCESS_TTL_MS: u64 = 15 * 60 * 1000;
/// Refresh tokens live this long (ms).
pub const REFRESH_TTL_MS: u64 = 30 * 24 * 3600 * 1000;
/// Shortest password accepted.
pub const PASSWORD_MIN: usize = 8;
/// Longest password accepted (bytes; argon2 hashes it all).
pub const PASSWORD_MAX: usize = 1024;

/// A typed client error.
pub(crate) fn error(code: ErrorCode, message: impl Into<String>) -> ClientError {
    ClientError::new(code, message)
}

/// A store failure, logged here and reported without details.
pub(crate) fn internal(e: crate::Error) -> ClientError {
    tracing::error!(error = %e, "store failure while serving a client");
    error(
        ErrorCode::Internal,
        "the node could not complete the request",
    )
}

fn random_bytes<const N: usize>() -> Result<[u8; N], ClientError> {
    let mut b = [0u8; N];
    getrandom::getrandom(&mut b)
        .map_err(|_| error(ErrorCode::Internal, "no randomness available"))?;
    Ok(b)
}

/// Invite codes are typed by people: base32 in groups of four, no
/// look-alike characters lost (the alphabet has no 0, 1, 8, 9).
fn invite_text(bytes: &[u8; 10]) -> String {
    const B32: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut bits = 0u32;
    let mut n = 0;
    let mut out = String::new();
    for b in bytes {
        bits = bits << 8 | u32::from(*b);
        n += 8;
        while n >= 5 {
            n -= 5;
            if out.len() % 5 == 4 {
                out.push('-');
            }
            out.push(B32[((bits >> n) & 31) as usize] as char);
        }
    }
    out
}

fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn check_password(password: &str) -> Result<(), ClientError> {
    let chars = password.chars().count();
    if chars < PASSWORD_MIN {
        return Err(error(
            ErrorCode::BadRequest,
            format!("the password must have at least {PASSWORD_MIN} characters"),
        ));
    }
    if password.len() > PASSWORD_MAX {
        return Err(error(
            ErrorCode::BadRequest,
            format!("the password must be at most {PASSWORD_MAX} bytes"),
        ));
    }
    Ok(())
}

/// The accounts of one node.
#[derive(Clone, Debug)]
pub struct Accounts {
    key: NodeKey,
    store: Store,
    passwords: Arc<Passwords>,
    throttle: Arc<Throttle>,
    /// A hash to check wrong user names against, so a login takes as long
    /// whether or not the name exists.
    decoy: String,
}

/// Where sign-ins without an address (never from a gateway) are counted.
const NO_ADDRESS: IpAddr = IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED);

impl Accounts {
    /// Accounts kept in `store`, tokens signed with `key`; each address
    /// may fail `free_failures_per_address` sign-ins before backing off.
    pub fn new(
        key: NodeKey,
        store: Store,
        free_failures_per_address: u32,
    ) -> Result<Accounts, ClientError> {
        let passwords = Arc::new(Passwords::for_this_machine());
        let decoy = passwords.hash("decoy password that matches nothing")?;
        Ok(Accounts {
            key,
            store,
            passwords,
            throttle: Arc::new(Throttle::new(free_failures_per_address)),
            decoy,
        })
    }

    /// Checks the password rules, then hashes it.
    pub fn hash_password_checked(&self, password: &str) -> Result<String, ClientError> {
        check_password(password)?;
        self.passwords.hash(password)
    }

    /// Refuses a try that must wait, counting it under its bound.
    fn throttled(
        &self,
        limits: &Limits,
        name: &str,
        address: IpAddr,
        now: u64,
    ) -> Result<(), ClientError> {
        let (limit, ms) = match self.throttle.check(name, address, now) {
            Ok(()) => return Ok(()),
            Err(Wait::Address { ms }) => (Limit::SignInAddress, ms),
            Err(Wait::Account { ms }) => (Limit::SignInAccount, ms),
        };
        match limit {
            Limit::SignInAddress => limits.refused(limit, &address, now),
            _ => limits.refused(limit, &format!("{name} from {address}"), now),
        }
        let mut e = error(
            ErrorCode::RateLimited,
            "too many failed sign-ins from here; wait a moment and try again",
        );
        e.retry_after_ms = Some(ms.max(1));
        Err(e)
    }

    fn user(&self, username: &str) -> Result<UserId, ClientError> {
        UserId::new(self.key.node_id(), username)
            .map_err(|e| error(ErrorCode::BadRequest, format!("user name: {e}")))
    }

    /// Creates an account and logs it in.
    pub fn register(
        &self,
        limits: &Limits,
        mode: RegistrationMode,
        (username, password): (&str, &str),
        invite_code: Option<&str>,
        address: Option<IpAddr>,
        now: u64,
    ) -> Result<SessionGrant, ClientError> {
        let address = address.unwrap_or(NO_ADDRESS);
        self.throttled(limits, "", address, now)?;
        let user = self.user(username)?;
        check_password(password)?;
        let code = match mode {
            RegistrationMode::Open => None,
            RegistrationMode::Closed => {
                return Err(error(
                    ErrorCode::RegistrationClosed,
                    "registration is closed on this node; ask an admin for an account",
                ));
            }
            RegistrationMode::Invite => {
                let Some(code) = invite_code.map(str::trim).filter(|c| !c.is_empty()) else {
                    return Err(error(
                        ErrorCode::RegistrationClosed,
                        "registration on this node needs an invite code",
                    ));
                };
                if !self
                    .store
                    .redeem_invite(&token_hash(code), now)
                    .map_err(internal)?
                {
                    // Guessing codes backs off like guessing passwords.
                    self.throttle.failed_address(address, now);
                    return Err(error(
                        ErrorCode::RegistrationClosed,
                        "that invite code is not valid (unknown, used up or expired)",
                    ));
                }
                Some(code)
            }
        };
        let account = Account {
            localpart: user.localpart().to_string(),
            password_hash: self.passwords.hash(password)?,
            display_name: user.localpart().to_string(),
            avatar: None,
            status: String::new(),
            disabled: false,
            created: now,
        };
        if !self.store.create_account(&account).map_err(internal)? {
            // The code was not spent on anything.
            if let Some(code) = code {
                self.store
                    .refund_invite(&token_hash(code))
                    .map_err(internal)?;
            }
            return Err(error(
                ErrorCode::Conflict,
                format!("the name {username:?} is taken"),
            ));
        }
        self.start(&user, now)
    }

    /// Creates an account for an admin (no login is started); `conflict`
    /// if the name is taken.
    pub fn create(
        &self,
        username: &str,
        password: &str,
        display_name: Option<&str>,
        now: u64,
    ) -> Result<UserId, ClientError> {
        let user = self.user(username)?;
        let account = Account {
            localpart: user.localpart().to_string(),
            password_hash: self.hash_password_checked(password)?,
            display_name: display_name
                .map(str::trim)
                .filter(|d| !d.is_empty())
                .unwrap_or(user.localpart())
                .to_string(),
            avatar: None,
            status: String::new(),
            disabled: false,
            created: now,
        };
        if !self.store.create_account(&account).map_err(internal)? {
            return Err(error(
                ErrorCode::Conflict,
                format!("the name {username:?} is taken"),
            ));
        }
        self.store.wait_durable().map_err(internal)?;
        Ok(user)
    }

    /// Makes an invite code good for `uses` registrations until `expires`
    /// (ms since epoch); returns the code (only its hash is stored).
    pub fn create_invite(&self, uses: u32, expires: u64, now: u64) -> Result<String, ClientError> {
        let code = invite_text(&random_bytes::<10>()?);
        self.store
            .add_invite(&token_hash(&code), uses, expires, now)
            .and_then(|()| self.store.wait_durable())
            .map_err(internal)?;
        Ok(code)
    }

    /// Logs in with a password. Failures back off per address and per
    /// account (see [`super::throttle`]); a right password from an
    /// address that has not been failing always gets in.
    pub fn login(
        &self,
        limits: &Limits,
        (username, password): (&str, &str),
        address: Option<IpAddr>,
        now: u64,
    ) -> Result<SessionGrant, ClientError> {
        let address = address.unwrap_or(NO_ADDRESS);
        let name = username.to_lowercase();
        self.throttled(limits, &name, address, now)?;
        let wrong = || error(ErrorCode::Unauthenticated, "wrong user name or password");
        let account = match self.user(username) {
            Ok(u) => self.store.account(u.localpart()).map_err(internal)?,
            Err(_) => None,
        };
        let Some(account) = account else {
            let _ = self.passwords.matches(password, &self.decoy)?;
            self.throttle.failed(&name, address, now);
            return Err(wrong());
        };
        if !self.passwords.matches(password, &account.password_hash)? {
            self.throttle.failed(&name, address, now);
            return Err(wrong());
        }
        self.throttle.succeeded(&name, address);
        if account.disabled {
            return Err(error(
                ErrorCode::Disabled,
                "this account is disabled; ask an admin",
            ));
        }
        self.start(&self.user(&account.localpart)?, now)
    }

    fn start(&self, user: &UserId, now: u64) -> Result<SessionGrant, ClientError> {
        let refresh_token = hex::encode(random_bytes::<32>()?);
        let expires = now + REFRESH_TTL_MS;
        let family = self
            .store
            .start_login(user.localpart(), token_hash(&refresh_token), now, expires)
            .map_err(internal)?;
        self.store.wait_durable().map_err(internal)?;
        self.grant(user.clone(), family, refresh_token, expires, now)
    }

    fn grant(
        &self,
        user: UserId,
        family: u64,
        refresh_token: String,
        refresh_expires: u64,
        now: u64,
    ) -> Result<SessionGrant, ClientError> {
        let claims = TokenClaims {
            user: user.clone(),
            family,
            issued: now,
            expires: now + ACCESS_TTL_MS,
        };
        let access_token = AccessToken::issue(&self.key, claims)
            .map_err(|_| error(ErrorCode::Internal, "cannot sign the access token"))?;
        Ok(SessionGrant {
            user,
            access_token,
            refresh_token,
            refresh_expires,
        })
    }

    /// Trades a refresh token for a new pair. A token already traded is
    /// theft or a replay: the whole login is revoked and `Err` says so;
    /// the revoked family is returned so gateways can be told.
    #[allow(clippy::result_large_err)] // a cold path; boxing buys nothing
    pub fn refresh(
        &self,
        refresh_token: &str,
        now: u64,
    ) -> Result<SessionGrant, (ClientError, Option<(UserId, u64)>)> {
        let new_token = hex::encode(random_bytes::<32>().map_err(|e| (e, None))?);
        let expires = now + REFRESH_TTL_MS;
        match self
            .store
            .refresh(
                token_hash(refresh_token),
                token_hash(&new_token),
                now,
                expires,
            )
            .map_err(|e| (internal(e), None))?
        {
            Refresh::Rotated { family, localpart } => {
                self.store.wait_durable().map_err(|e| (internal(e), None))?;
                let user = self.user(&localpart).map_err(|e| (e, None))?;
                self.grant(user, family, new_token, expires, now)
                    .map_err(|e| (e, None))
            }
            Refresh::Invalid => Err((
                error(
                    ErrorCode::Unauthenticated,
                    "the session has expired or was ended; log in again",
                ),
                None,
            )),
            Refresh::Reused { family, localpart } => {
                let _ = self.store.wait_durable();
                tracing::warn!(family, "a rotated refresh token was reused; login revoked");
                let user = self.user(&localpart).ok();
                Err((
                    error(
                        ErrorCode::Unauthenticated,
                        "this session was used elsewhere and has been ended for safety; log in again",
                    ),
                    user.map(|u| (u, family)),
                ))
            }
        }
    }

    /// Checks an access token: signature, expiry and that its login was
    /// not revoked since.
    pub fn authenticate(
        &self,
        token: Option<&AccessToken>,
        now: u64,
    ) -> Result<TokenClaims, ClientError> {
        let Some(token) = token else {
            return Err(error(ErrorCode::Unauthenticated, "log in first"));
        };
        let claims = match token.check(&self.key.node_id(), now) {
            Ok(c) => c.clone(),
            Err(_)
                if token.claims.expires <= now
                    && token.claims.user.node() == &self.key.node_id() =>
            {
                // Expired, or forged? A genuine token checks out at its
                // issue time.
                token
                    .check(&self.key.node_id(), token.claims.issued)
                    .map_err(|_| error(ErrorCode::Unauthenticated, "invalid access token"))?;
                return Err(error(
                    ErrorCode::TokenExpired,
                    "the access token has expired; refresh it",
                ));
            }
            Err(_) => return Err(error(ErrorCode::Unauthenticated, "invalid access token")),
        };
        let login = self.store.login(claims.family).map_err(internal)?;
        match login {
            Some(l) if !l.revoked && l.localpart == claims.user.localpart() => Ok(claims),
            _ => Err(error(
                ErrorCode::Unauthenticated,
                "this session has been ended; log in again",
            )),
        }
    }

    /// Ends one login (by its refresh token); returns its family.
    pub fn logout(&self, refresh_token: &str, who: &TokenClaims) -> Result<u64, ClientError> {
        let family = who.family;
        // The token must belong to the caller's own login.
        let ok = self
            .store
            .session_family(token_hash(refresh_token))
            .map_err(internal)?
            .is_some_and(|f| f == family);
        if !ok {
            return Err(error(
                ErrorCode::BadRequest,
                "that refresh token is not this session's",
            ));
        }
        self.store.revoke_login(family).map_err(internal)?;
        self.store.wait_durable().map_err(internal)?;
        Ok(family)
    }

    /// Ends every login of the caller; returns the families revoked.
    pub fn logout_all(&self, who: &TokenClaims) -> Result<Vec<u64>, ClientError> {
        let families = self
            .store
            .revoke_all_logins(who.user.localpart())
            .map_err(internal)?;
        self.store.wait_durable().map_err(internal)?;
        Ok(families)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static L: std::sync::LazyLock<Limits> = std::sync::LazyLock::new(Limits::default);

    fn accounts() -> Accounts {
        Accounts::new(
            NodeKey::from_secret(&[3; 32]),
            Store::temporary().unwrap(),
            20,
        )
        .unwrap()
    }

    const T: u64 = 1_800_000_000_000;

    #[test]
    fn register_login_and_wrong_passwords() {
        let a = accounts();
        let g = a
            .register(
                &L,
                RegistrationMode::Open,
                ("alice", "correct horse"),
                None,
                None,
                T,
            )
            .unwrap();
        assert_eq!(g.user.localpart(), "alice");
        assert_eq!(
            a.authenticate(Some(&g.access_token), T + 1).unwrap().user,
            g.user
        );
        let e = a
            .register(
                &L,
                RegistrationMode::Open,
                ("alice", "another one"),
                None,
                None,
                T,
            )
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::Conflict);
        let e = a
            .register(&L, RegistrationMode::Open, ("bob", "short"), None, None, T)
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::BadRequest);
        assert!(e.message.contains("at least 8"), "{}", e.message);
        let e = a
            .register(
                &L,
                RegistrationMode::Open,
                ("Bad Name!", "long enough"),
                None,
                None,
                T,
            )
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::BadRequest);
        for mode in [RegistrationMode::Closed, RegistrationMode::Invite] {
            let e = a
                .register(&L, mode, ("carol", "long enough"), None, None, T)
                .unwrap_err();
            assert_eq!(e.code, ErrorCode::RegistrationClosed);
        }
        // An invite code good for one account, until it expires.
        let code = a.create_invite(1, T + 1000, T).unwrap();
        assert_eq!(code.len(), 19, "{code}");
        let e = a
            .register(
                &L,
                RegistrationMode::Invite,
                ("carol", "long enough"),
                Some("nope"),
                None,
                T,
            )
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::RegistrationClosed);
        // A taken name does not spend the code.
        let e = a
            .register(
                &L,
                RegistrationMode::Invite,
                ("alice", "long enough"),
                Some(&code),
                None,
                T,
            )
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::Conflict);
        a.register(
            &L,
            RegistrationMode::Invite,
            ("carol", "long enough"),
            Some(&code),
            None,
            T,
        )
        .unwrap();
        let e = a
            .register(
                &L,
                RegistrationMode::Invite,
                ("dave", "long enough"),
                Some(&code),
                None,
                T,
            )
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::RegistrationClosed, "used up");
        let late = a.create_invite(5, T + 10, T).unwrap();
        let e = a
            .register(
                &L,
                RegistrationMode::Invite,
                ("erin", "long enough"),
                Some(&late),
                None,
                T + 10,
            )
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::RegistrationClosed, "expired");
        assert!(a.login(&L, ("alice", "correct horse"), None, T).is_ok());
        let wrong = a.login(&L, ("alice", "wrong horse!"), None, T).unwrap_err();
        let unknown = a
            .login(&L, ("nobody", "wrong horse!"), None, T)
            .unwrap_err();
        assert_eq!(
            wrong, unknown,
            "a wrong name and a wrong password look alike"
        );
    }

    #[test]
    fn tokens_expire_rotate_and_reuse_revokes_the_login() {
        let a = accounts();
        let g = a
            .register(
                &L,
                RegistrationMode::Open,
                ("alice", "correct horse"),
                None,
                None,
                T,
            )
            .unwrap();
        let late = T + ACCESS_TTL_MS + 1;
        assert_eq!(
            a.authenticate(Some(&g.access_token), late)
                .unwrap_err()
                .code,
            ErrorCode::TokenExpired
        );
        // A forged token (claims changed) is not "expired", it is invalid.
        let mut forged = g.access_token.clone();
        forged.claims.expires += 1;
        assert_eq!(
            a.authenticate(Some(&forged), T).unwrap_err().code,
            ErrorCode::Unauthenticated
        );
        let g2 = a.refresh(&g.refresh_token, late).unwrap();
        assert_ne!(g2.refresh_token, g.refresh_token);
        assert!(a.authenticate(Some(&g2.access_token), late + 1).is_ok());
        // The old token again: theft. The login ends, new tokens included.
        let (e, revoked) = a.refresh(&g.refresh_token, late + 2).unwrap_err();
        assert_eq!(e.code, ErrorCode::Unauthenticated);
        assert_eq!(revoked.map(|r| r.1), Some(g2.access_token.claims.family));
        assert_eq!(
            a.authenticate(Some(&g2.access_token), late + 3)
                .unwrap_err()
                .code,
            ErrorCode::Unauthenticated
        );
        assert!(a.refresh(&g2.refresh_token, late + 4).is_err());
    }

    #[test]
    fn logout_and_logout_everywhere() {
        let a = accounts();
        let g1 = a
            .register(
                &L,
                RegistrationMode::Open,
                ("alice", "correct horse"),
                None,
                None,
                T,
            )
            .unwrap();
        let g2 = a.login(&L, ("alice", "correct horse"), None, T).unwrap();
        let g3 = a.login(&L, ("alice", "correct horse"), None, T).unwrap();
        let c1 = a.authenticate(Some(&g1.access_token), T).unwrap();
        // Another login's token cannot end this one.
        assert!(a.logout(&g2.refresh_token, &c1).is_err());
        a.logout(&g1.refresh_token, &c1).unwrap();
        assert!(a.authenticate(Some(&g1.access_token), T).is_err());
        assert!(a.authenticate(Some(&g2.access_token), T).is_ok());
        let c2 = a.authenticate(Some(&g2.access_token), T).unwrap();
        let families = a.logout_all(&c2).unwrap();
        assert!(families.len() >= 2);
        assert!(a.authenticate(Some(&g3.access_token), T).is_err());
        assert!(a.refresh(&g3.refresh_token, T).is_err());
    }
}
