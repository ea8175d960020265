//! The agent's token: reading a JWT's `exp` claim (without verifying anything) so the core
//! can renew a token at 80% of its life and refuse a bare token that has already expired
//! before it sends it anywhere.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

use crate::secret::AuthToken;

/// Longest token whose payload is inspected.
const MAX_TOKEN_LEN: usize = 16 * 1024;

/// The `exp` claim (Unix seconds) of a JWT-shaped token, if it has one. Tokens of any other
/// shape give `None`; nothing is verified.
pub(crate) fn jwt_expiry(token: &AuthToken) -> Option<u64> {
    let text = token.expose_secret();
    if text.len() > MAX_TOKEN_LEN {
        return None;
    }
    let mut parts = text.split('.');
    let (_header, payload, _sig) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let exp = claims.get("exp")?;
    exp.as_u64()
        .or_else(|| exp.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(payload: &str) -> AuthToken {
        AuthToken::new(format!(
            "eyJhbGciOiJIUzI1NiJ9.{}.c2ln",
            URL_SAFE_NO_PAD.encode(payload)
        ))
    }

    #[test]
    fn reads_exp_and_ignores_other_shapes() {
        assert_eq!(
            jwt(r#"{"exp":1700000600}"#).pipe(|t| jwt_expiry(&t)),
            Some(1_700_000_600)
        );
        assert_eq!(jwt(r#"{"sub":"x"}"#).pipe(|t| jwt_expiry(&t)), None);
        assert_eq!(jwt_expiry(&AuthToken::new("opaque-token")), None);
        assert_eq!(jwt_expiry(&AuthToken::new("a.!!!.c")), None);
    }

    trait Pipe: Sized {
        fn pipe<R>(self, f: impl FnOnce(Self) -> R) -> R {
            f(self)
        }
    }
    impl Pipe for AuthToken {}
}
