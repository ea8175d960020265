//! Secrets: authorization tokens, API keys and LoginKeys.
//!
//! Each is a newtype whose `Debug` and `Display` print `<redacted>`, so a secret cannot leak
//! through logs, error messages or `{:?}`. The value is reached only through `expose_secret`,
//! which makes every place that puts a secret on the wire easy to find. Equality is
//! constant-time. These types do not implement `Serialize`: codecs write them explicitly.

use std::fmt;

use subtle::ConstantTimeEq;

macro_rules! secret_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone)]
        pub struct $name(String);

        impl $name {
            /// Wraps a secret value.
            pub fn new(value: impl Into<String>) -> Self {
                $name(value.into())
            }

            /// The secret itself. Call this only to put it on the wire.
            pub fn expose_secret(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "(<redacted>)"))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("<redacted>")
            }
        }

        impl PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
            }
        }

        impl Eq for $name {}

        impl From<String> for $name {
            fn from(value: String) -> Self {
                $name(value)
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                $name(value.to_owned())
            }
        }
    };
}

secret_type!(
    /// A Glance authorization token (a JWT), sent as `Authorization: Bearer …` and as the
    /// `authorization` of the agent's `connect` frame.
    AuthToken
);

secret_type!(
    /// A group's API key, from which LoginKeys are signed.
    ApiKey
);

secret_type!(
    /// A LoginKey `$1$<exp>$<sig>`, made by [`crate::loginkey`].
    LoginKey
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let token = AuthToken::new("eyJhbGciOiJIUzI1NiJ9.secret.sig");
        let key = ApiKey::new("RedactedApiKey");
        let login = LoginKey::new("$1$1700000000$abc");
        for shown in [
            format!("{token:?}"),
            format!("{token}"),
            format!("{key:?}"),
            format!("{key}"),
            format!("{login:?} {login}"),
            format!("{:?}", Some(&token)),
        ] {
            assert!(!shown.contains("secret"), "{shown}");
            assert!(!shown.contains("RedactedApiKey"), "{shown}");
            assert!(!shown.contains("abc"), "{shown}");
            assert!(shown.contains("<redacted>"), "{shown}");
        }
        assert_eq!(format!("{token:?}"), "AuthToken(<redacted>)");
        assert_eq!(token.expose_secret(), "eyJhbGciOiJIUzI1NiJ9.secret.sig");
    }

    #[test]
    fn equality_compares_values() {
        assert_eq!(ApiKey::new("a"), ApiKey::from("a"));
        assert_ne!(ApiKey::new("a"), ApiKey::new("b"));
        assert_ne!(ApiKey::new("a"), ApiKey::new("ab"));
    }
}
