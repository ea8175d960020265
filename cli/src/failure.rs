//! The command's failures and their exit codes. A failure is one line on stderr, plus a hint
//! line that says what to do when there is one; a library's own multi-line diagnostic (a TOML
//! parse error, with its caret under the bad value) is shown as that library formats it. No
//! secret is ever part of it.

use std::fmt;
use std::process::ExitCode;

/// Exit codes, as `--help` and the README document them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 1: the service refused (visitor not present, authorization, unavailable, …).
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
    /// What to do about it, shown on its own line after the message.
    hint: Option<String>,
    /// The message is a library's multi-line diagnostic: keep its lines.
    multiline: bool,
}

impl Failure {
    fn new(exit: Exit, message: impl fmt::Display) -> Self {
        Failure {
            exit,
            message: message.to_string(),
            hint: None,
            multiline: false,
        }
    }

    pub fn usage(message: impl fmt::Display) -> Self {
        Failure::new(Exit::Usage, message)
    }

    pub fn refused(message: impl fmt::Display) -> Self {
        Failure::new(Exit::Refused, message)
    }

    pub fn connection(message: impl fmt::Display) -> Self {
        Failure::new(Exit::Connection, message)
    }

    /// A usage failure whose message is a library's multi-line diagnostic, kept as formatted.
    pub fn diagnostic(message: impl fmt::Display) -> Self {
        Failure {
            multiline: true,
            ..Failure::new(Exit::Usage, message)
        }
    }

    /// Adds what to do about it.
    pub fn hint(mut self, hint: impl fmt::Display) -> Self {
        self.hint = Some(hint.to_string());
        self
    }

    #[cfg(test)]
    pub fn exit(&self) -> Exit {
        self.exit
    }

    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(self.exit as u8)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.multiline {
            write!(f, "glance-presence: {}", self.message.trim_end())?;
        } else {
            let line = self.message.replace(['\n', '\r'], " ");
            write!(f, "glance-presence: {line}")?;
        }
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {}", hint.replace(['\n', '\r'], " "))?;
        }
        Ok(())
    }
}

/// Maps a failed request's Glance reason to an exit code: connection trouble is 3, a refusal
/// by the service (an unavailable service's 503 included: it answered) is 1.
pub fn from_reason(reason: &str, message: impl fmt::Display) -> Failure {
    match reason {
        "connection" | "timedout" => Failure::connection(message),
        "usage" => Failure::usage(message),
        _ => Failure::refused(message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_then_the_hint_and_diagnostics_keep_their_lines() {
        let f = Failure::connection("a\nb").hint("do this");
        assert_eq!(f.to_string(), "glance-presence: a b\n  hint: do this");
        let d = Failure::diagnostic("TOML parse error\n  |\n2 | x\n");
        assert_eq!(
            d.to_string(),
            "glance-presence: TOML parse error\n  |\n2 | x"
        );
        assert_eq!(from_reason("serviceunavailable", "x").exit(), Exit::Refused);
    }
}
