//! LoginKey checks: `generate` → `parse` → `verify` round trips, and `verify` never accepts a
//! key whose text was changed unless the change keeps the same expiry and signature (a leading
//! zero in the expiry).
//!
//! Input: a group id, a partner user id, an API key, an expiry and a current time, then
//! mutations (byte changes, insertions, removals) of the generated key, and a raw key text.

use glance_presence_protocol::loginkey::{self, LoginKeyError, MAX_VALIDITY_SECS, SIGNATURE_LEN};
use glance_presence_protocol::{ApiKey, GroupId, LoginKey, PartnerUserId};

use super::input::Input;

/// Which cases an input reached (for the seed corpus): bit 0 generated, bit 1 a raw key
/// parsed, bit 2 a mutation was refused, bit 3 a mutation kept expiry and signature, bit 4
/// the window refused the expiry.
pub fn check(data: &[u8]) -> u32 {
    let mut u = Input::new(data);
    let mut reached = 0;

    // A raw key text: parse never panics, and what parses formats back to a key that parses
    // to the same values.
    let raw = u.text(96);
    let raw = if u.bool() { format!("$1${raw}") } else { raw };
    if let Ok((exp, sig)) = loginkey::parse(&LoginKey::new(raw.clone())) {
        reached |= 2;
        assert_eq!(sig.len(), SIGNATURE_LEN, "{raw:?}");
        let again = LoginKey::new(format!("$1${exp}${sig}"));
        assert_eq!(loginkey::parse(&again), Ok((exp, sig)), "{raw:?}");
    }

    let group = GroupId::new(1 + u.u64() % 1_000_000_000_000).expect("non-zero group");
    let user_text = u.word(&["agent1", "UserId", "a", "3abc"], 40);
    let Ok(user) = PartnerUserId::new(user_text.clone()) else {
        return reached;
    };
    let key_text = u.word(&["secret", "RedactedApiKey"], 40);
    if key_text.is_empty() {
        return reached;
    }
    let api_key = ApiKey::new(key_text.clone());
    let now = u.u64() >> u.below(64);
    let expires = match u.below(4) {
        0 => now.wrapping_add(u64::from(u.u32()) % (2 * MAX_VALIDITY_SECS)),
        1 => now.wrapping_sub(u64::from(u.u8())),
        2 => now.saturating_add(MAX_VALIDITY_SECS + u64::from(u.u8()) - 128),
        _ => u.u64(),
    };
    let in_window = expires > now && expires - now <= MAX_VALIDITY_SECS;
    let key = match loginkey::generate(group, &user, expires, &api_key, now) {
        Ok(key) => {
            assert!(in_window, "generate accepted expiry {expires} at {now}");
            key
        }
        Err(LoginKeyError::Expired { .. } | LoginKeyError::TooFarAhead { .. }) => {
            assert!(!in_window, "generate refused expiry {expires} at {now}");
            reached |= 16;
            // The bare signature is still a key; it verifies only inside its window.
            let key = loginkey::sign(group, &user, expires, &api_key);
            assert!(loginkey::verify(&key, group, &user, &api_key, now).is_err());
            key
        }
        Err(other) => panic!("generate: {other:?}"),
    };
    reached |= 1;
    let text = key.expose_secret().to_owned();
    let (exp, sig) = loginkey::parse(&key).expect("a generated key parses");
    assert_eq!(exp, expires);
    assert_eq!(sig.len(), SIGNATURE_LEN);
    let sig = sig.to_owned();
    if in_window {
        assert_eq!(
            loginkey::verify(&key, group, &user, &api_key, now),
            Ok(expires)
        );
        // At its expiry it is refused.
        assert!(matches!(
            loginkey::verify(&key, group, &user, &api_key, expires),
            Err(LoginKeyError::Expired { .. })
        ));
        // Another API key never verifies it.
        let other_key = ApiKey::new(format!("{key_text}x"));
        assert_eq!(
            loginkey::verify(&key, group, &user, &other_key, now),
            Err(LoginKeyError::BadSignature)
        );
        // Another partner / user whose concatenation differs never verifies it. (The signed
        // text is `partnerid + partneruserid + "1" + expiry` with no separator, as Glance
        // documents it, so group 12 with user "3abc" signs the same text as 123 with "abc".)
        let other_group = GroupId::new(group.get() % 999_999 + 1).expect("non-zero");
        let other_user = PartnerUserId::new(format!("{user_text}z")).ok();
        for (g, usr) in [
            (other_group, user.clone()),
            (group, other_user.unwrap_or_else(|| user.clone())),
        ] {
            let same_text = format!("{g}{}", usr.as_str()) == format!("{group}{user_text}");
            if !same_text {
                assert_eq!(
                    loginkey::verify(&key, g, &usr, &api_key, now),
                    Err(LoginKeyError::BadSignature),
                    "{text} verified for {g} {usr:?}"
                );
            }
        }
    }

    // Mutations of the key text.
    for _ in 0..u.below(4) + 1 {
        let mut bytes = text.clone().into_bytes();
        let at = u.below(bytes.len() + 1);
        match u.below(3) {
            0 if at < bytes.len() => bytes[at] = u.u8(),
            1 if at < bytes.len() => {
                bytes.remove(at);
            }
            _ => bytes.insert(at, u.pick(b"0$1-_aZ=9 ")),
        }
        let mutated = String::from_utf8_lossy(&bytes).into_owned();
        if mutated == text {
            continue;
        }
        let mutated_key = LoginKey::new(mutated.clone());
        match loginkey::verify(&mutated_key, group, &user, &api_key, now) {
            Ok(e) => {
                // Only a text that reads as the same expiry and signature may verify.
                let parsed = loginkey::parse(&mutated_key).expect("verified keys parse");
                assert_eq!(
                    (parsed.0, parsed.1),
                    (expires, sig.as_str()),
                    "{mutated:?} (from {text:?}) verified"
                );
                assert_eq!(e, expires);
                reached |= 8;
            }
            Err(_) => reached |= 4,
        }
    }
    reached
}
