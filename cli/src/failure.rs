//! The command's failures and their exit codes. Every failure is one line on stderr; no
//! secret is ever part of it.

use std::fmt;
use std::process::ExitCode;

/// Exit codes, as the README documents them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 1: the service refused (visitor not present, authorization, …).
    Refused = 1,
    /// 2: bad flags or configuration.
    Usage = 2,
    /// 3: the service could not be reached or the link failed.
    Connection = 3,
}

/// A failure, with the exit code it maps to.
#[derive(Debug)]
pub struct Failure {
    exit: Exit,
    message: String,
}

impl Failure {
    pub fn usage(message: impl fmt::Display) -> Self {
        Failure {
            exit: Exit::Usage,
            message: message.to_string(),
        }
    }

    pub fn refused(message: impl fmt::Display) -> Self {
        Failure {
            exit: Exit::Refused,
            message: message.to_string(),
        }
    }

    pub fn connection(message: impl fmt::Display) -> Self {
        Failure {
            exit: Exit::Connection,
            message: message.to_string(),
        }
    }

    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(self.exit as u8)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // One line, whatever the message holds.
        let line = self.message.replace(['\n', '\r'], " ");
        write!(f, "glance-presence: {line}")
    }
}

/// Maps a failed request's Glance reason to an exit code: connection trouble is 3, a refusal
/// by the service is 1.
pub fn from_reason(reason: &str, message: impl fmt::Display) -> Failure {
    match reason {
        "connection" | "timedout" | "serviceunavailable" => Failure::connection(message),
        "usage" => Failure::usage(message),
        _ => Failure::refused(message),
    }
}
