//! Authorization tokens: HS256 JWTs issued by `Authorize` and checked on every agent REST call
//! and agent socket, and the guest tokens of `/uniquevisitor`.
//!
//! Agent token claims: `group` (number), `partneruserid`, `service` (`"presence"`), `iat`, `exp`
//! (Unix seconds). Guest token claims: `group`, `visitorid`, `service` (`"guest"`), `iat`, `exp`.
//! Both kinds are refused at and after their `exp`.
//! The time is always an argument: nothing here reads a clock (the expiry check is done here,
//! not by the JWT library). Secrets and tokens never appear in `Debug` output or errors.

use std::fmt;

use glance_presence_protocol::{AuthToken, GroupId, PartnerUserId, VisitorId};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// The `service` claim of agent tokens.
pub const PRESENCE_SERVICE: &str = "presence";
/// The `service` claim of guest tokens.
pub const GUEST_SERVICE: &str = "guest";

/// The claims of an agent token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentClaims {
    /// The group the token is for.
    pub group: u64,
    /// The agent's partner user id.
    pub partneruserid: String,
    /// The service (`"presence"`).
    pub service: String,
    /// Issued at (Unix seconds).
    pub iat: u64,
    /// Expiry (Unix seconds).
    pub exp: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct GuestClaims {
    group: u64,
    visitorid: String,
    service: String,
    iat: u64,
    exp: u64,
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// Not a JWT of ours: malformed, wrong algorithm or bad signature.
    #[error("the token is not valid")]
    Invalid,
    /// The token has expired.
    #[error("the token has expired")]
    Expired,
    /// The token is for another service.
    #[error("the token is not for the presence service")]
    WrongService,
    /// The token is for another group.
    #[error("the token is for another group")]
    WrongGroup,
}

/// The HS256 key pair used to issue and verify tokens.
#[derive(Clone)]
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenKeys(<redacted>)")
    }
}

impl TokenKeys {
    /// Keys from a signing secret.
    pub fn new(secret: &[u8]) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        // The expiry is checked against the time the caller passes in, never the system clock.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.required_spec_claims.clear();
        TokenKeys {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
        }
    }

    /// Issues an agent token for `group` and `user`, valid from `now_unix` for `lifetime_secs`.
    pub fn issue_agent(
        &self,
        group: GroupId,
        user: &PartnerUserId,
        now_unix: u64,
        lifetime_secs: u64,
    ) -> Result<(AuthToken, u64), TokenError> {
        let exp = now_unix.saturating_add(lifetime_secs);
        let claims = AgentClaims {
            group: group.get(),
            partneruserid: user.as_str().to_owned(),
            service: PRESENCE_SERVICE.to_owned(),
            iat: now_unix,
            exp,
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|_| TokenError::Invalid)?;
        Ok((AuthToken::new(token), exp))
    }

    /// Verifies an agent token at `now_unix`; when `group` is given the token must be for it.
    pub fn verify_agent(
        &self,
        token: &str,
        group: Option<GroupId>,
        now_unix: u64,
    ) -> Result<AgentClaims, TokenError> {
        let data = jsonwebtoken::decode::<AgentClaims>(token, &self.decoding, &self.validation)
            .map_err(|_| TokenError::Invalid)?;
        let claims = data.claims;
        if claims.service != PRESENCE_SERVICE {
            return Err(TokenError::WrongService);
        }
        if claims.exp <= now_unix {
            return Err(TokenError::Expired);
        }
        if let Some(group) = group {
            if claims.group != group.get() {
                return Err(TokenError::WrongGroup);
            }
        }
        Ok(claims)
    }

    /// Issues the guest token of a unique visitor.
    pub fn issue_guest(
        &self,
        group: GroupId,
        visitor: &VisitorId,
        now_unix: u64,
        lifetime_secs: u64,
    ) -> Result<String, TokenError> {
        let claims = GuestClaims {
            group: group.get(),
            visitorid: visitor.as_str().to_owned(),
            service: GUEST_SERVICE.to_owned(),
            iat: now_unix,
            exp: now_unix.saturating_add(lifetime_secs),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|_| TokenError::Invalid)
    }

    /// Checks that a guest token was issued by this service for this group and visitor and has
    /// not expired at `now_unix`. A unique visitor whose guest token is about to expire asks
    /// `/uniquevisitor` again with its `UNQ-` id (Glance's `extendUnique`): it keeps its id and
    /// gets a fresh token.
    pub fn verify_guest(
        &self,
        token: &str,
        group: GroupId,
        visitor: &VisitorId,
        now_unix: u64,
    ) -> Result<(), TokenError> {
        let data = jsonwebtoken::decode::<GuestClaims>(token, &self.decoding, &self.validation)
            .map_err(|_| TokenError::Invalid)?;
        let claims = data.claims;
        if claims.service != GUEST_SERVICE {
            return Err(TokenError::WrongService);
        }
        if claims.group != group.get() || claims.visitorid != visitor.as_str() {
            return Err(TokenError::WrongGroup);
        }
        if claims.exp <= now_unix {
            return Err(TokenError::Expired);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> TokenKeys {
        TokenKeys::new(b"0123456789abcdef0123456789abcdef")
    }

    #[test]
    fn agent_round_trip_and_checks() {
        let k = keys();
        let g = GroupId::new(12345).unwrap();
        let u = PartnerUserId::new("agent1").unwrap();
        let (token, exp) = k.issue_agent(g, &u, 1_000, 600).unwrap();
        assert_eq!(exp, 1_600);
        let claims = k
            .verify_agent(token.expose_secret(), Some(g), 1_599)
            .unwrap();
        assert_eq!(claims.partneruserid, "agent1");
        assert_eq!(claims.group, 12345);
        assert_eq!(
            k.verify_agent(token.expose_secret(), Some(g), 1_600),
            Err(TokenError::Expired)
        );
        assert_eq!(
            k.verify_agent(token.expose_secret(), Some(GroupId::new(1).unwrap()), 1_001),
            Err(TokenError::WrongGroup)
        );
        let other = TokenKeys::new(b"another secret of at least 32 bytes!!");
        assert_eq!(
            other.verify_agent(token.expose_secret(), Some(g), 1_001),
            Err(TokenError::Invalid)
        );
        assert_eq!(k.verify_agent("garbage", None, 0), Err(TokenError::Invalid));
        assert_eq!(k.verify_agent("", None, 0), Err(TokenError::Invalid));
        assert_eq!(format!("{k:?}"), "TokenKeys(<redacted>)");
    }

    #[test]
    fn guest_tokens_are_not_agent_tokens() {
        let k = keys();
        let g = GroupId::new(12345).unwrap();
        let v = VisitorId::new("UNQ-123456789").unwrap();
        let guest = k.issue_guest(g, &v, 1_000, 300).unwrap();
        assert!(k.verify_guest(&guest, g, &v, 1_000).is_ok());
        assert!(k.verify_guest(&guest, g, &v, 1_299).is_ok());
        assert_eq!(
            k.verify_guest(&guest, g, &v, 1_300),
            Err(TokenError::Expired)
        );
        assert_eq!(
            k.verify_guest(&guest, g, &VisitorId::new("UNQ-1").unwrap(), 1_000),
            Err(TokenError::WrongGroup)
        );
        assert!(k.verify_agent(&guest, Some(g), 1_001).is_err());
        let (agent, _) = k
            .issue_agent(g, &PartnerUserId::new("a").unwrap(), 1_000, 60)
            .unwrap();
        assert!(k.verify_guest(agent.expose_secret(), g, &v, 1_000).is_err());
    }
}
