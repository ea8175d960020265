//! Server address checks: `ServerAddr::new`, `ServerAddr::with_authority` (how the agent and
//! visitor take the `direct`, `directserver:httpsport` and `presenceUrl` the service names)
//! and `ServerAddr::parse` never panic; an accepted address holds only URL-safe authority
//! characters, its URLs parse back to the same address, and host, port and loopback read
//! back as written; refusals are the same whichever scheme or base is used; and every host the
//! service's configuration accepts as `advertise_host` is accepted by the client with any
//! port (the service's answers must be usable by its own client).
//!
//! Input: a mode byte, then either host/port pieces (IPv4, IPv6, names, odd ports) or raw text.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use glance_presence_protocol::rest::{Scheme, ServerAddr, MAX_AUTHORITY_LEN};
use glance_presence_service::ServiceConfig;

use super::input::Input;

/// Whether to assert that every `advertise_host` the service's configuration accepts is
/// accepted by the client. Off until the configuration refuses what the client refuses: it
/// accepts hosts with `?`, `#`, `@`, `\`, `%`, `[`, `:` or non-ASCII characters, which the
/// client refuses in `direct`/`presenceUrl` answers (found by this target).
const ADVERTISE_HOST_CONTRACT: bool = true;

/// Characters a name may be made of in the generated cases (valid and invalid ones).
const NAME_CHARS: &[u8] = b"abcXYZ019.-_:[]@/?#\\% \t\x7f+~!$&'()*,;=";

/// Which cases an input reached: bit 0 accepted, bit 1 refused, bit 2 IPv6, bit 3 loopback,
/// bit 4 accepted by the service's configuration as `advertise_host`.
pub fn check(data: &[u8]) -> u32 {
    let mut u = Input::new(data);
    let mut reached = 0;
    let host = match u.below(6) {
        0 => Ipv4Addr::from(u.u32()).to_string(),
        1 => {
            reached |= 4;
            let ip = Ipv6Addr::from((u128::from(u.u64()) << 64) | u128::from(u.u64()));
            if u.bool() {
                format!("[{ip}]")
            } else {
                ip.to_string()
            }
        }
        2 => u
            .pick(&[
                "localhost",
                "LocalHost",
                "presence.glance.net",
                "[::1]",
                "127.0.0.1",
            ])
            .to_owned(),
        3 => {
            let n = u.below(40);
            (0..n).map(|_| char::from(u.pick(NAME_CHARS))).collect()
        }
        4 => "a".repeat(u.below(300)),
        _ => u.text(300),
    };
    let text = match u.below(5) {
        0 => host.clone(),
        1 => format!("{host}:{}", u.u16()),
        2 => format!("{host}:{}", u.u32()),
        3 => format!("{host}:{:0>width$}", u.u16(), width = u.below(8)),
        _ => format!("{host}{}", u.text(12)),
    };

    let https = ServerAddr::new(Scheme::Https, &text);
    let http = ServerAddr::new(Scheme::Http, &text);
    assert_eq!(https.is_ok(), http.is_ok(), "{text:?}");
    assert_eq!(
        https.as_ref().err(),
        http.as_ref().err(),
        "{text:?}: the error depends on the scheme"
    );
    let base = ServerAddr::new(Scheme::Http, "127.0.0.1:8080").expect("valid base");
    let derived = base.with_authority(&text);
    assert_eq!(derived, http, "{text:?}: with_authority differs from new");

    match &https {
        Ok(addr) => {
            reached |= 1;
            check_accepted(addr, &text);
            check_accepted(http.as_ref().expect("same as https"), &text);
            if addr.is_loopback() {
                reached |= 8;
            }
        }
        Err(_) => reached |= 2,
    }
    // Without a scheme, trailing slash or outer spaces, `parse` agrees with `new`.
    if !text.contains("://") && !text.ends_with('/') && text.trim() == text {
        assert_eq!(ServerAddr::parse(&text), https, "{text:?}");
    }

    // The service names itself `advertise_host:port`; its own client must accept that.
    let port = 1 + u.u16() % u16::MAX;
    if let Ok(config) = ServiceConfig::builder()
        .advertise_host(host.clone())
        .build()
    {
        reached |= 16;
        let advertised = config.advertise_host().expect("set").to_owned();
        let direct = format!("{advertised}:{port}");
        assert!(
            !ADVERTISE_HOST_CONTRACT || base.with_authority(&direct).is_ok(),
            "the service accepts advertise_host {advertised:?}, but its answers name \
             {direct:?}, which the client refuses: {:?}",
            base.with_authority(&direct)
        );
    }
    reached
}

fn check_accepted(addr: &ServerAddr, text: &str) {
    assert_eq!(addr.host_port(), text);
    assert!(text.len() <= MAX_AUTHORITY_LEN);
    assert!(
        text.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '[' | ']')),
        "{text:?} accepted with characters a URL authority cannot hold as is"
    );
    let host = addr.host();
    assert!(!host.is_empty());
    match addr.port() {
        Some(port) => {
            assert!(port > 0);
            let rest = text.strip_prefix(host).expect("the host starts the text");
            let digits = rest.strip_prefix(':').expect("a port follows a colon");
            assert_eq!(digits.parse::<u16>().ok(), Some(port), "{text:?}");
        }
        None => assert_eq!(host, text),
    }
    // The URLs built from it parse back to the same address.
    assert_eq!(ServerAddr::parse(&addr.http_base()).as_ref(), Ok(addr));
    assert_eq!(ServerAddr::parse(&addr.ws_url("/")).as_ref(), Ok(addr));
    assert_eq!(ServerAddr::parse(&addr.to_string()).as_ref(), Ok(addr));
    assert_eq!(addr.with_authority(addr.host_port()).as_ref(), Ok(addr));
    assert!(addr.http_url("x").starts_with(&addr.http_base()));
    assert!(addr.ws_url("/agent").ends_with(&format!("{text}/agent")));
    // Loopback reads as the host says.
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let loopback = host.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    assert_eq!(addr.is_loopback(), loopback, "{text:?}");
    if host.starts_with('[') {
        assert!(bare.parse::<Ipv6Addr>().is_ok(), "{text:?}");
    }
}
