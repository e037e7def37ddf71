//! Why a command failed, and the exit code that says so.
//!
//! Every failure carries a [`Kind`] (which picks the exit code and the JSON
//! `code`) and one message an operator can act on. Node errors keep the
//! node's message, which already says what was wrong.

use std::fmt;
use std::path::Path;

use confab_wire::admin::{AdminError, AdminErrorCode};

/// A failure's kind; each has its own exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Something unexpected (exit 1).
    Internal,
    /// Bad usage or a bad request (exit 2).
    BadRequest,
    /// No such thing (exit 3).
    NotFound,
    /// Not allowed (exit 4).
    Forbidden,
    /// Already so, or in the way (exit 5).
    Conflict,
    /// The node cannot be reached or cannot do it now (exit 6).
    Unavailable,
    /// A backup file failed verification (exit 7).
    BadBackup,
}

impl Kind {
    /// The process exit code.
    pub(crate) fn exit_code(self) -> u8 {
        match self {
            Kind::Internal => 1,
            Kind::BadRequest => 2,
            Kind::NotFound => 3,
            Kind::Forbidden => 4,
            Kind::Conflict => 5,
            Kind::Unavailable => 6,
            Kind::BadBackup => 7,
        }
    }

    /// The `code` of a JSON error.
    pub(crate) fn json_code(self) -> &'static str {
        match self {
            Kind::Internal => "internal",
            Kind::BadRequest => "bad_request",
            Kind::NotFound => "not_found",
            Kind::Forbidden => "forbidden",
            Kind::Conflict => "conflict",
            Kind::Unavailable => "unavailable",
            Kind::BadBackup => "bad_backup",
        }
    }
}

impl From<AdminErrorCode> for Kind {
    fn from(code: AdminErrorCode) -> Kind {
        match code {
            AdminErrorCode::BadRequest => Kind::BadRequest,
            AdminErrorCode::NotFound => Kind::NotFound,
            AdminErrorCode::Forbidden => Kind::Forbidden,
            AdminErrorCode::Conflict => Kind::Conflict,
            AdminErrorCode::Unavailable => Kind::Unavailable,
            AdminErrorCode::Internal => Kind::Internal,
        }
    }
}

/// A failed command: its kind and the one line to print.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Failure {
    /// The kind (exit code, JSON code).
    pub(crate) kind: Kind,
    /// What went wrong and, where it helps, what to do.
    pub(crate) message: String,
}

impl Failure {
    /// A failure of `kind`.
    pub(crate) fn new(kind: Kind, message: impl Into<String>) -> Failure {
        Failure {
            kind,
            message: message.into(),
        }
    }

    /// Bad usage or a bad argument (exit 2).
    pub(crate) fn usage(message: impl Into<String>) -> Failure {
        Failure::new(Kind::BadRequest, message)
    }

    /// An unexpected failure (exit 1).
    pub(crate) fn internal(message: impl Into<String>) -> Failure {
        Failure::new(Kind::Internal, message)
    }

    /// The node cannot be reached or cannot answer (exit 6).
    pub(crate) fn unavailable(message: impl Into<String>) -> Failure {
        Failure::new(Kind::Unavailable, message)
    }

    /// A file or directory operation failed; names the path.
    pub(crate) fn io(action: &str, path: &Path, e: &std::io::Error) -> Failure {
        let message = format!("cannot {action} {}: {e}", path.display());
        match e.kind() {
            // A mistyped path is the user's to fix (exit 3), not a fault.
            std::io::ErrorKind::NotFound => Failure::new(Kind::NotFound, message),
            std::io::ErrorKind::PermissionDenied => Failure::new(Kind::Forbidden, message),
            _ => Failure::internal(message),
        }
    }
}

impl From<AdminError> for Failure {
    fn from(e: AdminError) -> Failure {
        Failure::new(e.code.into(), e.message)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

/// `Result` with [`Failure`].
pub(crate) type Result<T, E = Failure> = std::result::Result<T, E>;

/// An error and its sources on one line, skipping sources the outer message
/// already quotes.
pub(crate) fn error_line(e: &dyn std::error::Error) -> String {
    let mut line = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        source = cause.source();
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_codes_map_to_exit_codes() {
        let cases = [
            (AdminErrorCode::BadRequest, 2, "bad_request"),
            (AdminErrorCode::NotFound, 3, "not_found"),
            (AdminErrorCode::Forbidden, 4, "forbidden"),
            (AdminErrorCode::Conflict, 5, "conflict"),
            (AdminErrorCode::Unavailable, 6, "unavailable"),
            (AdminErrorCode::Internal, 1, "internal"),
        ];
        for (code, exit, json) in cases {
            let f = Failure::from(AdminError::new(code, "m"));
            assert_eq!(f.kind.exit_code(), exit);
            assert_eq!(f.kind.json_code(), json);
            assert_eq!(f.message, "m");
        }
        assert_eq!(Kind::BadBackup.exit_code(), 7);
    }
}
