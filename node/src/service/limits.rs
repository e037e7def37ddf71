//! The client service's bounds (DESIGN I-7) in one place: each has a name,
//! every refusal is counted under it (`confab_node_limited_total{limit}`,
//! never with a user or room as a label), and each offender is logged once
//! per bound and [`LOG_EVERY_MS`], not once per refusal.

use std::collections::HashMap;
use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

/// An offender is logged again after this long.
pub const LOG_EVERY_MS: u64 = 60 * 60 * 1000;
/// Offenders remembered for logging; more makes the memory start over.
const OFFENDERS_MAX: usize = 10_000;

/// A bound the service enforces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Limit {
    /// Uploads in progress on the node ([`super::uploads::UPLOADS_MAX`]).
    Uploads,
    /// Uploads in progress per user ([`super::uploads::UPLOADS_PER_USER_MAX`]).
    UploadsPerUser,
    /// An upload cancelled after [`super::uploads::UPLOAD_IDLE_MS`] without a chunk.
    UploadIdle,
    /// Downloads in progress per user.
    DownloadsPerUser,
    /// Sign-ins refused while an address backs off after failures.
    SignInAddress,
    /// Sign-ins refused while an account backs off after failures.
    SignInAccount,
    /// Password hashes waiting for a free hashing slot, over the queue.
    PasswordHashing,
}

impl Limit {
    /// The name in metrics, logs and documents.
    pub fn name(self) -> &'static str {
        match self {
            Limit::Uploads => "uploads",
            Limit::UploadsPerUser => "uploads_per_user",
            Limit::UploadIdle => "upload_idle",
            Limit::DownloadsPerUser => "downloads_per_user",
            Limit::SignInAddress => "sign_in_address",
            Limit::SignInAccount => "sign_in_account",
            Limit::PasswordHashing => "password_hashing",
        }
    }
}

/// Label: which bound.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LimitLabel {
    limit: &'static str,
}

/// Refusals by bound, and who was last logged for which.
#[derive(Debug, Default)]
pub struct Limits {
    refused: Family<LimitLabel, Counter>,
    logged: Mutex<HashMap<(Limit, String), u64>>,
}

impl Limits {
    /// Counts a refusal by `limit` of `offender` (a user, an address) and
    /// logs it if this offender was not logged for it lately.
    pub fn refused(&self, limit: Limit, offender: &dyn std::fmt::Display, now: u64) {
        self.refused
            .get_or_create(&LimitLabel {
                limit: limit.name(),
            })
            .inc();
        let who = offender.to_string();
        let first = {
            let mut logged = self.logged.lock().unwrap_or_else(|p| p.into_inner());
            if logged.len() >= OFFENDERS_MAX {
                logged.retain(|_, at| now.saturating_sub(*at) < LOG_EVERY_MS);
                if logged.len() >= OFFENDERS_MAX {
                    logged.clear();
                }
            }
            match logged.get(&(limit, who.clone())) {
                Some(at) if now.saturating_sub(*at) < LOG_EVERY_MS => false,
                _ => {
                    logged.insert((limit, who.clone()), now);
                    true
                }
            }
        };
        if first {
            tracing::warn!(limit = limit.name(), offender = %who, "a limit refused a request (logged once an hour per offender)");
        }
    }

    /// Refusals counted so far under `limit`.
    #[cfg(test)]
    pub(crate) fn count(&self, limit: Limit) -> u64 {
        self.refused
            .get_or_create(&LimitLabel {
                limit: limit.name(),
            })
            .get()
    }

    /// Registers `confab_node_limited_total{limit}`.
    pub fn register(&self, registry: &mut Registry) {
        registry.sub_registry_with_prefix("confab_node").register(
            "limited",
            "Requests refused (or work cancelled) by a bound, by bound",
            self.refused.clone(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_refusal_counts_and_each_offender_is_logged_once_an_hour() {
        let l = Limits::default();
        for i in 0..5 {
            l.refused(Limit::UploadsPerUser, &"@mallory:x", i);
        }
        assert_eq!(l.count(Limit::UploadsPerUser), 5);
        assert_eq!(l.count(Limit::Uploads), 0);
        let logged = l.logged.lock().unwrap_or_else(|p| p.into_inner());
        assert_eq!(logged.len(), 1);
        assert_eq!(
            logged.get(&(Limit::UploadsPerUser, "@mallory:x".to_string())),
            Some(&0)
        );
    }
}
