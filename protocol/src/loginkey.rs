//! LoginKeys (version 1): `$1$<expiry>$<signature>`.
//!
//! The signature is HMAC-SHA256 keyed with the group's API key over the plain concatenation
//! `partnerid + partneruserid + "1" + expiry`, encoded as base64url without padding (43
//! characters). Glance documents the format; the partner id is the group id. This module makes
//! keys (agents) and verifies them (the reference service). It never reads a clock: the caller
//! passes the current Unix time.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::ids::{GroupId, PartnerUserId};
use crate::secret::{ApiKey, LoginKey};

/// The only LoginKey version there is.
pub const VERSION: u32 = 1;
/// How far ahead of now a LoginKey may expire: one day.
pub const MAX_VALIDITY_SECS: u64 = 86_400;
/// Length of the base64url signature.
pub const SIGNATURE_LEN: usize = 43;

/// A LoginKey could not be made or did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LoginKeyError {
    /// The expiry is not after now.
    #[error("LoginKey expiry {expires} is not after the current time {now}")]
    Expired {
        /// The key's expiry (Unix seconds).
        expires: u64,
        /// The current time (Unix seconds).
        now: u64,
    },
    /// The expiry is more than one day ahead.
    #[error(
        "LoginKey expiry {expires} is more than {MAX_VALIDITY_SECS} s after the current time {now}"
    )]
    TooFarAhead {
        /// The key's expiry (Unix seconds).
        expires: u64,
        /// The current time (Unix seconds).
        now: u64,
    },
    /// The text is not `$1$<digits>$<43 base64url characters>`.
    #[error("LoginKey is malformed: {0}")]
    Malformed(&'static str),
    /// The signature does not match the API key, partner id and partner user id.
    #[error("LoginKey signature does not match")]
    BadSignature,
}

fn signature(partner: GroupId, user: &PartnerUserId, expires: u64, api_key: &ApiKey) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(api_key.expose_secret().as_bytes()) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC-SHA256 takes keys of every length"),
    };
    mac.update(partner.to_string().as_bytes());
    mac.update(user.as_str().as_bytes());
    mac.update(VERSION.to_string().as_bytes());
    mac.update(expires.to_string().as_bytes());
    URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

fn check_window(expires: u64, now: u64) -> Result<(), LoginKeyError> {
    if expires <= now {
        return Err(LoginKeyError::Expired { expires, now });
    }
    if expires - now > MAX_VALIDITY_SECS {
        return Err(LoginKeyError::TooFarAhead { expires, now });
    }
    Ok(())
}

/// Signs a LoginKey for an explicit expiry without checking it against any clock.
///
/// Use [`generate`] in applications; this is the bare algorithm, for test vectors and tools.
pub fn sign(partner: GroupId, user: &PartnerUserId, expires: u64, api_key: &ApiKey) -> LoginKey {
    LoginKey::new(format!(
        "${VERSION}${expires}${}",
        signature(partner, user, expires, api_key)
    ))
}

/// Makes a LoginKey that expires at `expires` (Unix seconds), refusing an expiry that is not
/// after `now` or is more than one day after it.
pub fn generate(
    partner: GroupId,
    user: &PartnerUserId,
    expires: u64,
    api_key: &ApiKey,
    now: u64,
) -> Result<LoginKey, LoginKeyError> {
    check_window(expires, now)?;
    Ok(sign(partner, user, expires, api_key))
}

/// Splits `$1$<expiry>$<signature>` into the expiry and the signature.
pub fn parse(key: &LoginKey) -> Result<(u64, &str), LoginKeyError> {
    let text = key.expose_secret();
    let rest = text
        .strip_prefix("$1$")
        .ok_or(LoginKeyError::Malformed("it does not start with $1$"))?;
    let (expires, sig) = rest
        .split_once('$')
        .ok_or(LoginKeyError::Malformed("no $ after the expiry"))?;
    if expires.is_empty() || expires.len() > 20 || !expires.bytes().all(|b| b.is_ascii_digit()) {
        return Err(LoginKeyError::Malformed(
            "the expiry is not a decimal number",
        ));
    }
    let expires: u64 = expires
        .parse()
        .map_err(|_| LoginKeyError::Malformed("the expiry is not a decimal number"))?;
    if sig.len() != SIGNATURE_LEN
        || !sig
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(LoginKeyError::Malformed(
            "the signature is not 43 base64url characters",
        ));
    }
    Ok((expires, sig))
}

/// Verifies a LoginKey for a partner, partner user and API key at time `now`; returns its
/// expiry. The signature comparison is constant-time.
pub fn verify(
    key: &LoginKey,
    partner: GroupId,
    user: &PartnerUserId,
    api_key: &ApiKey,
    now: u64,
) -> Result<u64, LoginKeyError> {
    let (expires, sig) = parse(key)?;
    let expected = signature(partner, user, expires, api_key);
    if !bool::from(expected.as_bytes().ct_eq(sig.as_bytes())) {
        return Err(LoginKeyError::BadSignature);
    }
    check_window(expires, now)?;
    Ok(expires)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(partner: u64, user: &str) -> (GroupId, PartnerUserId) {
        (
            GroupId::new(partner).unwrap(),
            PartnerUserId::new(user).unwrap(),
        )
    }

    #[test]
    fn documented_vectors() {
        let (g, u) = ids(98765, "UserId");
        let key = sign(g, &u, 1_392_680_360, &ApiKey::new("RedactedApiKey"));
        assert_eq!(
            key.expose_secret(),
            "$1$1392680360$wfuY5eEn_3YTrFNgYarCilwUSArUbfZOFlahHiylqnY"
        );
        let (g, u) = ids(12345, "agent1");
        let key = generate(g, &u, 1_700_000_000, &ApiKey::new("secret"), 1_699_999_000).unwrap();
        assert_eq!(
            key.expose_secret(),
            "$1$1700000000$Mkg7OYSAvgvLr3mFNThPJY-lq8wU4z3UH2RhaT8Cm5s"
        );
        assert_eq!(key.expose_secret().len(), 57);
    }

    #[test]
    fn expiry_window() {
        let (g, u) = ids(12345, "agent1");
        let k = ApiKey::new("secret");
        let now = 1_700_000_000;
        assert_eq!(
            generate(g, &u, now, &k, now).unwrap_err(),
            LoginKeyError::Expired { expires: now, now }
        );
        assert!(generate(g, &u, now + MAX_VALIDITY_SECS, &k, now).is_ok());
        assert_eq!(
            generate(g, &u, now + MAX_VALIDITY_SECS + 1, &k, now).unwrap_err(),
            LoginKeyError::TooFarAhead {
                expires: now + MAX_VALIDITY_SECS + 1,
                now
            }
        );
    }

    #[test]
    fn verify_accepts_own_keys_and_refuses_others() {
        let (g, u) = ids(12345, "agent1");
        let k = ApiKey::new("secret");
        let now = 1_700_000_000;
        let key = generate(g, &u, now + 60, &k, now).unwrap();
        assert_eq!(verify(&key, g, &u, &k, now), Ok(now + 60));
        assert_eq!(
            verify(&key, g, &u, &ApiKey::new("other"), now),
            Err(LoginKeyError::BadSignature)
        );
        let (g2, u2) = ids(12346, "agent2");
        assert_eq!(
            verify(&key, g2, &u, &k, now),
            Err(LoginKeyError::BadSignature)
        );
        assert_eq!(
            verify(&key, g, &u2, &k, now),
            Err(LoginKeyError::BadSignature)
        );
        assert!(matches!(
            verify(&key, g, &u, &k, now + 61),
            Err(LoginKeyError::Expired { .. })
        ));
        for bad in [
            "",
            "$2$1$aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "$1$$aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "$1$12x$aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "$1$1700000060",
            "$1$1700000060$short",
            "$1$1700000060$aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa+",
            "$1$99999999999999999999999$aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        ] {
            assert!(
                matches!(
                    verify(&LoginKey::new(bad), g, &u, &k, now),
                    Err(LoginKeyError::Malformed(_))
                ),
                "{bad:?}"
            );
        }
    }
}
