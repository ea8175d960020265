//! The numbered requirements the suites check. The full list (with every requirement's source,
//! the ones no suite observes yet, and the agent's ones that cannot be seen on the wire, which
//! the Rust agent's own tests check instead) is `requirements.toml` beside PROTOCOL.md; a test
//! checks that this table agrees with it.

use serde::Serialize;

/// Whether a requirement must be met.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// A conforming implementation meets it.
    Required,
    /// It should be met; a run still passes without it.
    Recommended,
}

/// Who must follow a requirement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A presence service.
    Server,
    /// An agent client.
    Agent,
    /// A visitor client.
    Visitor,
}

/// One numbered requirement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Requirement {
    /// The stable id, e.g. `SRV-SIGNAL-2`.
    pub id: &'static str,
    /// What it says, in one line.
    pub title: &'static str,
    /// Required or recommended.
    pub level: Level,
    /// Who must follow it.
    pub role: Role,
}

/// The requirements a suite observes, in the order of the list.
pub const REQUIREMENTS: &[Requirement] = &[
    Requirement {
        id: "SRV-REST-1",
        title: "lookupvisitor answers 200 {} for an absent visitor",
        level: Level::Required,
        role: Role::Server,
    },
    Requirement {
        id: "SRV-REST-2",
        title: "lookupvisitor answers a present visitor as one flat record (direct fields, visitorid, groupid, presence fields at top level)",
        level: Level::Required,
        role: Role::Server,
    },
    Requirement {
        id: "SRV-REST-3",
        title: "findvisitor names the direct server also when the visitor is absent",
        level: Level::Required,
        role: Role::Server,
    },
    Requirement {
        id: "SRV-REST-4",
        title: "findvisitor answers visitorfound true for a present visitor",
        level: Level::Required,
        role: Role::Server,
    },
    Requirement {
        id: "SRV-REST-5",
        title: "signalvisitor to an absent visitor is 404 {\"err\":\"visitornotpresent\"}",
        level: Level::Required,
        role: Role::Server,
    },
    Requirement {
        id: "SRV-REST-6",
        title: "query answers {} for an absent visitor and {\"present\":true,…} for a present one",
        level: Level::Recommended,
        role: Role::Server,
    },
    Requirement {
        id: "SRV-REST-7",
        title: "an invalid visitor id is 400 {\"err\":\"badrequest\"}",
        level: Level::Recommended,
        role: Role::Server,
    },
    Requirement {
        id: "SRV-AUTH-1",
        title: "an agent endpoint without a bearer token is 401",
        level: Level::Required,
        role: Role::Server,
    },
    Requirement {
        id: "SRV-AUTH-2",
        title: "an agent socket with a bad token gets error connfail/authorization, then close 1008",
        level: Level::Required,
        role: Role::Server,
    },
    Requirement {
        id: "SRV-AUTH-4",
        title: "Authorize answers a valid LoginKey with the token as a bare JSON string",
        level: Level::Required,
        role: Role::Server,
    },
    Requirement {
        id: "SRV-CORS-1",
        title: "an OPTIONS preflight is 2xx with Allow-Origin, Allow-Methods and Allow-Headers",
        level: Level::Recommended,
        role: Role::Server,
    },
    Requirement {
        id: "SRV-CORS-2",
        title: "every REST answer to a caller with an Origin carries Access-Control-Allow-Origin",
        level: Level::Recommended,
        role: Role::Server,
    },
    Requirement {
        id: "SRV-WS-1",
        title: "both roles get {\"type\":\"connected\",\"keepalive\":N} after connect",
        level: Level::Required,
        role: Role::Server,
    },
    Requirement {
        id: "SRV-WS-2",
        title: "a first frame other than connect gets error badframe, then close 1002",
        level: Level::Required,
        role: Role::Server,
    },
    Requirement {
        id: "SRV-KEEP-1",
        title: "keepalive frames k are accepted and not forwarded to agents",
        level: Level::Required,
        role: Role::Server,
    },
    Requirement {
        id: "SRV-PRES-1",
        title: "a visitor's first connect gives its agents visitorsock true then visitorconn true",
        level: Level::Required,
        role: Role::Server,
    },
    Requirement {
        id: "SRV-PRES-2",
        title: "a navigation within the presence window shows agents only visitorsock false/true",
        level: Level::Required,
        role: Role::Server,
    },
    Requirement {
        id: "SRV-PRES-3",
        title: "a visitor gone for the presence window gives its agents visitorconn false",
        level: Level::Required,
        role: Role::Server,
    },
    Requirement {
        id: "SRV-PRES-4",
        title: "an agent connecting while its visitor is present gets visitorsock true and visitorconn true after connected",
        level: Level::Required,
        role: Role::Server,
    },
    Requirement {
        id: "SRV-FWD-1",
        title: "visitor frames reach every agent socket with type and data kept",
        level: Level::Required,
        role: Role::Server,
    },
    Requirement {
        id: "SRV-FWD-2",
        title: "a visitor frame named like a service frame (redirect, …) is not forwarded",
        level: Level::Required,
        role: Role::Server,
    },
    Requirement {
        id: "SRV-SIGNAL-1",
        title: "a signal to a visitor with a socket is 200 {\"delivered\":true} and reaches it as {\"type\":\"signal\",\"data\":…}",
        level: Level::Required,
        role: Role::Server,
    },
    Requirement {
        id: "SRV-SIGNAL-2",
        title: "signals to a present visitor without a socket are held and delivered in order, once, right after connected",
        level: Level::Required,
        role: Role::Server,
    },
    Requirement {
        id: "SRV-SIGNAL-3",
        title: "a newer visitor socket takes the signals and the older one gets blur",
        level: Level::Recommended,
        role: Role::Server,
    },
    Requirement {
        id: "SRV-CLOSE-1",
        title: "a client's Close frame is answered with a Close frame before the connection closes",
        level: Level::Required,
        role: Role::Server,
    },
    Requirement {
        id: "SRV-LIMIT-1",
        title: "a frame over the frame limit gets error badframe and close 1009",
        level: Level::Recommended,
        role: Role::Server,
    },
    Requirement {
        id: "SRV-LIMIT-2",
        title: "a REST body over the body limit is 413",
        level: Level::Recommended,
        role: Role::Server,
    },
    Requirement {
        id: "AGT-CONNECT-1",
        title: "the agent's connect frame carries authorization, groupid as a string, visitorid and version",
        level: Level::Required,
        role: Role::Agent,
    },
    Requirement {
        id: "AGT-CONNECT-2",
        title: "the agent asks findvisitor before opening its socket",
        level: Level::Required,
        role: Role::Agent,
    },
    Requirement {
        id: "AGT-KEEP-1",
        title: "the agent sends k every keepalive seconds after connected",
        level: Level::Required,
        role: Role::Agent,
    },
    Requirement {
        id: "AGT-RECONNECT-1",
        title: "reconnects wait a full-jitter exponential backoff, capped, reset only after a stable link",
        level: Level::Recommended,
        role: Role::Agent,
    },
    Requirement {
        id: "AGT-RECONNECT-2",
        title: "redirect: reconnect at once to the named server",
        level: Level::Recommended,
        role: Role::Agent,
    },
    Requirement {
        id: "AGT-RECONNECT-3",
        title: "scaledown: reconnect at once, finding the server again",
        level: Level::Required,
        role: Role::Agent,
    },
    Requirement {
        id: "AGT-RECONNECT-4",
        title: "serverclose: stop (by default)",
        level: Level::Required,
        role: Role::Agent,
    },
    Requirement {
        id: "AGT-RECONNECT-5",
        title: "never more than one socket open or opening",
        level: Level::Required,
        role: Role::Agent,
    },
    Requirement {
        id: "AGT-LINK-1",
        title: "a silent link is pinged after 15 s and given up 10 s later",
        level: Level::Recommended,
        role: Role::Agent,
    },
    Requirement {
        id: "AGT-TOKEN-1",
        title: "with credentials the token is renewed before it expires and the socket reopened with it",
        level: Level::Recommended,
        role: Role::Agent,
    },
    Requirement {
        id: "AGT-TOKEN-2",
        title: "refused tokens are renewed; the fourth refusal without a stable link stops the agent",
        level: Level::Recommended,
        role: Role::Agent,
    },
    Requirement {
        id: "AGT-FRAME-1",
        title: "an undecodable frame is skipped and the link stays up",
        level: Level::Required,
        role: Role::Agent,
    },
    Requirement {
        id: "AGT-REST-1",
        title: "every agent call to the presence service carries Authorization: Bearer",
        level: Level::Required,
        role: Role::Agent,
    },
    Requirement {
        id: "AGT-REST-2",
        title: "401/403 read as authorization, 503 as serviceunavailable",
        level: Level::Required,
        role: Role::Agent,
    },
    Requirement {
        id: "AGT-SIGNAL-1",
        title: "visitorfound false fails a signal as visitornotpresent without a POST",
        level: Level::Required,
        role: Role::Agent,
    },
];

/// The requirement with this id, if a suite observes it.
pub fn requirement(id: &str) -> Option<&'static Requirement> {
    REQUIREMENTS.iter().find(|r| r.id == id)
}
