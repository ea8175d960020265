//! The exact JSON every encoder writes, one line per variant.

use glance_presence_protocol::wire::{ClientFrame, ConnectFrame, InvokeRequest, ServerFrame};
use glance_presence_protocol::{
    AuthToken, GroupId, PresenceData, TermsStatus, Visibility, VisitorId,
};
use serde_json::json;

fn presence() -> PresenceData {
    let mut p = PresenceData::new();
    p.insert("url", "https://shop.example/cart");
    p.insert("browser", "Chrome");
    p.insert("browserver", 120);
    p.insert("platform", "Linux x86_64");
    p.insert("plan", "gold");
    p
}

fn connect(authorization: Option<&str>, as_string: bool, guest: Option<&str>) -> ClientFrame {
    ClientFrame::Connect(ConnectFrame {
        authorization: authorization.map(AuthToken::new),
        group: GroupId::new(12345).unwrap(),
        group_as_string: as_string,
        visitor: VisitorId::new("v1").unwrap(),
        guest_token: guest.map(str::to_owned),
        version: "6.25.0".into(),
    })
}

fn invoke() -> InvokeRequest {
    InvokeRequest {
        func: "GLANCE.Cobrowse.VisitorUI.showTerms".into(),
        args: json!({"sessionKey": "1234"}),
    }
}

#[test]
fn encoders() {
    let client: Vec<(&str, ClientFrame)> = vec![
        ("Connect agent", connect(Some("eyJ.token.sig"), true, None)),
        ("Connect visitor", connect(None, false, None)),
        (
            "Connect unique visitor",
            connect(None, false, Some("guest-token")),
        ),
        ("Connect all keys", connect(Some("T"), true, Some("G"))),
        ("Keepalive", ClientFrame::Keepalive),
        ("Signal", ClientFrame::Signal(json!({"hello": "visitor"}))),
        ("Invoke", ClientFrame::Invoke(invoke())),
        ("Presence", ClientFrame::Presence(presence())),
        (
            "Visibility hidden",
            ClientFrame::Visibility(Visibility::Hidden),
        ),
        (
            "Visibility visible",
            ClientFrame::Visibility(Visibility::Visible),
        ),
        (
            "Terms displayed",
            ClientFrame::Terms(TermsStatus::Displayed),
        ),
        ("Terms accepted", ClientFrame::Terms(TermsStatus::Accepted)),
        ("Terms declined", ClientFrame::Terms(TermsStatus::Declined)),
        (
            "VisitorSessionStart",
            ClientFrame::VisitorSessionStart(None),
        ),
        (
            "VisitorSessionStart data",
            ClientFrame::VisitorSessionStart(Some(json!({"sessionKey": "1234"}))),
        ),
        ("VisitorSessionEnd", ClientFrame::VisitorSessionEnd(None)),
        (
            "VisitorError",
            ClientFrame::VisitorError(json!({"code": "conndrop", "msg": "Connect failed"})),
        ),
        (
            "Other",
            ClientFrame::Other {
                kind: "myevent".into(),
                data: Some(json!({"x": 1})),
            },
        ),
        (
            "Other no data",
            ClientFrame::Other {
                kind: "Ping".into(),
                data: None,
            },
        ),
    ];
    let server: Vec<(&str, ServerFrame)> = vec![
        (
            "Connected",
            ServerFrame::Connected {
                keepalive: Some(30),
                data: None,
            },
        ),
        (
            "Connected data",
            ServerFrame::Connected {
                keepalive: Some(30),
                data: Some(json!({"node": "a"})),
            },
        ),
        (
            "Connected bare",
            ServerFrame::Connected {
                keepalive: None,
                data: None,
            },
        ),
        (
            "VisitorSock true",
            ServerFrame::VisitorSock { connected: true },
        ),
        (
            "VisitorSock false",
            ServerFrame::VisitorSock { connected: false },
        ),
        (
            "VisitorConn true",
            ServerFrame::VisitorConn { connected: true },
        ),
        (
            "VisitorConn false",
            ServerFrame::VisitorConn { connected: false },
        ),
        ("Presence", ServerFrame::Presence(presence())),
        ("Visibility", ServerFrame::Visibility(Visibility::Hidden)),
        ("Terms", ServerFrame::Terms(TermsStatus::Accepted)),
        (
            "VisitorSessionStart",
            ServerFrame::VisitorSessionStart(None),
        ),
        ("VisitorSessionEnd", ServerFrame::VisitorSessionEnd(None)),
        (
            "VisitorError",
            ServerFrame::VisitorError(json!({"code": "conndrop", "msg": "Connect failed"})),
        ),
        (
            "Redirect",
            ServerFrame::Redirect {
                direct: "node2.example:8443".into(),
            },
        ),
        ("ServerClose", ServerFrame::ServerClose),
        ("ScaleDown", ServerFrame::ScaleDown),
        ("Blur", ServerFrame::Blur),
        (
            "Error",
            ServerFrame::Error {
                error: "connfail".into(),
                detail: Some("authorization".into()),
            },
        ),
        (
            "Error no detail",
            ServerFrame::Error {
                error: "badrequest".into(),
                detail: None,
            },
        ),
        ("Signal", ServerFrame::Signal(json!({"hello": "visitor"}))),
        ("Invoke", ServerFrame::Invoke(invoke())),
        (
            "Other",
            ServerFrame::Other {
                kind: "myevent".into(),
                data: Some(json!([1, "two"])),
            },
        ),
    ];
    let mut text = String::new();
    for (name, frame) in &client {
        text.push_str(&format!("client {name}: {}\n", frame.encode()));
    }
    for (name, frame) in &server {
        text.push_str(&format!("server {name}: {}\n", frame.encode()));
    }
    insta::assert_snapshot!("encoders", text);
}
