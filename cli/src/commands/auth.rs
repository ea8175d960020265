//! `login-key` and `authorize`: make a LoginKey from an API key, or fetch a token with one.
//! The key or token is the command's output; it is never part of an error or a log line.

use std::time::{SystemTime, UNIX_EPOCH};

use glance_presence_blocking::HttpClient;
use glance_presence_protocol::ids::{GroupId, PartnerUserId};
use glance_presence_protocol::loginkey;
use glance_presence_protocol::rest::{self, AuthorizeParams, ServerAddr};
use glance_presence_protocol::ApiKey;

use super::common;
use crate::args::{CredentialArgs, TlsArgs};
use crate::failure::{self, Failure};
use crate::line::JsonLine;
use crate::render;

fn unix_now() -> Result<u64, Failure> {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .map_err(|_| Failure::usage("the system clock is before 1970"))
}

fn ids(creds: &CredentialArgs) -> Result<(GroupId, PartnerUserId), Failure> {
    let group = GroupId::new(creds.group).map_err(Failure::usage)?;
    let user = PartnerUserId::new(creds.partner_user_id.as_str()).map_err(Failure::usage)?;
    Ok((group, user))
}

fn make_key(
    creds: &CredentialArgs,
    expires_in: u64,
) -> Result<glance_presence_protocol::LoginKey, Failure> {
    let (group, user) = ids(creds)?;
    if creds.api_key.trim().is_empty() {
        return Err(Failure::usage("the API key is empty")
            .hint("give --api-key (or GLANCE_API_KEY) the group's API key"));
    }
    let now = unix_now()?;
    let key = ApiKey::new(creds.api_key.as_str());
    loginkey::generate(group, &user, now.saturating_add(expires_in), &key, now)
        .map_err(Failure::usage)
}

/// `login-key`: prints the key.
pub fn login_key(creds: &CredentialArgs, expires_in: u64, json: bool) -> Result<(), Failure> {
    let key = make_key(creds, expires_in)?;
    if json {
        let line = JsonLine::LoginKey {
            time_unix_ms: render::unix_ms(),
            login_key: key.expose_secret(),
        };
        println!("{}", line.to_text());
    } else {
        println!("{}", key.expose_secret());
    }
    Ok(())
}

/// `authorize`: prints `{"token": …}`.
pub fn authorize(
    creds: &CredentialArgs,
    web_server: &str,
    duration: u32,
    tls: &TlsArgs,
) -> Result<(), Failure> {
    if !(1..=120).contains(&duration) {
        return Err(Failure::usage(format_args!(
            "--duration {duration} is outside 1 to 120 minutes"
        )));
    }
    let (group, user) = ids(creds)?;
    common::check_server("--web-server", web_server)?;
    let web = ServerAddr::parse(web_server).map_err(Failure::usage)?;
    let key = make_key(creds, 300)?;
    let request = rest::authorize(&AuthorizeParams {
        web: &web,
        group,
        partner_user: &user,
        login_key: &key,
        duration_minutes: duration,
        site: "production",
        service: "presence",
    });
    let transport = common::transport(tls)?;
    let http = HttpClient::new(&transport.tls_roots, transport.http_timeout);
    let base = web.http_base();
    let (status, body) = http.execute(&request).map_err(|detail| {
        Failure::connection(format_args!(
            "cannot reach the Authorization service at {base}: {detail}"
        ))
        .hint("check --web-server (GLANCE_WEB_SERVER); is the service running there?")
    })?;
    match rest::parse_authorize(status, &body) {
        Ok(result) => {
            let line = JsonLine::Token {
                time_unix_ms: render::unix_ms(),
                token: result.token.expose_secret(),
            };
            println!("{}", line.to_text());
            Ok(())
        }
        Err(e) => {
            // `e` carries the service's stated reason, cleaned by the library.
            let failure = failure::from_reason(
                e.reason(),
                format_args!("the Authorization service at {base} refused: {e}"),
            );
            Err(match e.reason() {
                "authorization" => failure.hint(format_args!(
                    "check --api-key (GLANCE_API_KEY) and --partner-user-id for group {}",
                    creds.group
                )),
                _ => failure,
            })
        }
    }
}
