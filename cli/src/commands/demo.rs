//! `demo`: the whole product on one machine. It starts the reference service on loopback, a
//! simulated visitor that browses three pages, hides and shows its tab, receives a signal,
//! is asked to show the terms and accepts them, then starts and ends a cobrowse session; an
//! agent watches and prints the timeline. The demo checks what it printed (present without
//! flicker, every page, visibility, signal, terms, session, the visitor leaving) and fails if
//! anything is missing.

use std::thread;
use std::time::{Duration, Instant};

use glance_presence_blocking::{BlockingAgent, BlockingVisitor, TransportConfig};
use glance_presence_protocol::agent::{AgentConfig, AgentEvent, VisitorPresence};
use glance_presence_protocol::visitor::{VisitorConfig, VisitorEvent};
use glance_presence_protocol::{PresenceData, TermsStatus, Visibility};
use glance_presence_service::config::{ServiceConfig, DEMO_API_KEY, DEMO_GROUP_ID};
use glance_presence_service::ServiceHandle;
use serde_json::json;

use crate::failure::Failure;
use crate::render::{self, Printer};

const VISITOR_ID: &str = "demo-visitor";
const AGENT_ID: &str = "demo-agent";
const PAGES: [&str; 3] = [
    "https://shop.example/",
    "https://shop.example/products/42",
    "https://shop.example/cart",
];
const TERMS_FUNC: &str = "GLANCE.Cobrowse.VisitorUI.showTerms";
/// The demo gives up after this long.
const DEMO_LIMIT: Duration = Duration::from_secs(14);

/// What the agent has seen; the demo passes when every box is ticked.
#[derive(Debug, Default)]
struct Seen {
    present: bool,
    flickers: u32,
    pages: Vec<String>,
    hidden: bool,
    visible_again: bool,
    signal_delivered: bool,
    invoke_accepted: bool,
    terms_displayed: bool,
    terms_accepted: bool,
    session_started: bool,
    session_ended: bool,
    left: bool,
}

impl Seen {
    fn record(&mut self, event: &AgentEvent) {
        match event {
            AgentEvent::VisitorPresence { state, .. } => match state {
                VisitorPresence::Present => self.present = true,
                VisitorPresence::Absent if self.session_ended => self.left = true,
                VisitorPresence::Absent if self.present => self.flickers += 1,
                _ => {}
            },
            AgentEvent::Presence { data, .. } => {
                if let Some(url) = data.url() {
                    if self.pages.last().map(String::as_str) != Some(url) {
                        self.pages.push(url.to_owned());
                    }
                }
            }
            AgentEvent::Visibility { visibility } => match visibility {
                Visibility::Hidden => self.hidden = true,
                Visibility::Visible if self.hidden => self.visible_again = true,
                _ => {}
            },
            AgentEvent::Terms { status } => match status {
                TermsStatus::Displayed => self.terms_displayed = true,
                TermsStatus::Accepted => self.terms_accepted = true,
                _ => {}
            },
            AgentEvent::SessionStart { .. } => self.session_started = true,
            AgentEvent::SessionEnd { .. } => self.session_ended = true,
            _ => {}
        }
    }

    fn on_every_page(&self) -> bool {
        PAGES
            .iter()
            .all(|page| self.pages.iter().any(|seen| seen == page))
    }

    /// What is missing, if anything.
    fn missing(&self) -> Vec<&'static str> {
        let checks = [
            (self.present, "the visitor never showed as present"),
            (
                self.flickers == 0,
                "the visitor flickered absent while browsing",
            ),
            (self.on_every_page(), "not every page was reported"),
            (
                self.hidden && self.visible_again,
                "the tab was not seen hidden then visible",
            ),
            (self.signal_delivered, "the signal was not confirmed"),
            (self.invoke_accepted, "the invoke was not confirmed"),
            (
                self.terms_displayed && self.terms_accepted,
                "the terms were not displayed and accepted",
            ),
            (
                self.session_started && self.session_ended,
                "the cobrowse session was not seen start and end",
            ),
            (self.left, "the visitor was not seen leaving"),
        ];
        checks
            .into_iter()
            .filter(|(ok, _)| !ok)
            .map(|(_, what)| what)
            .collect()
    }
}

/// The visitor's script, run on its own thread.
fn visitor_script(server: String) -> Result<(), String> {
    let config = VisitorConfig::builder()
        .group_id(DEMO_GROUP_ID)
        .visitor_id(VISITOR_ID)
        .presence_server(server)
        .build()
        .map_err(|e| e.to_string())?;
    let mut visitor =
        BlockingVisitor::new(config, TransportConfig::default()).map_err(|e| e.to_string())?;
    let step = Duration::from_millis(700);
    let mut presence = PresenceData::new();
    presence.insert("url", PAGES[0]);
    presence.insert("browser", "chrome");
    presence.insert("browserver", 120);
    presence.insert("platform", "linux");
    presence.insert("plan", "gold");
    visitor.connect().map_err(|e| e.to_string())?;
    visitor
        .command(|v, now| v.presence(now, presence))
        .map_err(|e| e.to_string())?;
    visitor.pump(step);
    for page in &PAGES[1..] {
        visitor
            .command(|v, now| v.navigate(now, *page))
            .map_err(|e| e.to_string())?;
        visitor.pump(step);
    }
    for visibility in [Visibility::Hidden, Visibility::Visible] {
        visitor
            .command(|v, now| v.visibility(now, visibility))
            .map_err(|e| e.to_string())?;
        visitor.pump(step);
    }
    visitor
        .wait_for(Duration::from_secs(5), |e| {
            matches!(e, VisitorEvent::Signal { .. }).then_some(())
        })
        .ok_or("the visitor got no signal")?;
    visitor
        .wait_for(Duration::from_secs(5), |e| match e {
            VisitorEvent::Invoke { func, .. } if func == TERMS_FUNC => Some(()),
            _ => None,
        })
        .ok_or("the visitor was not asked to show the terms")?;
    visitor
        .command(|v, now| v.terms(now, TermsStatus::Displayed))
        .map_err(|e| e.to_string())?;
    visitor.pump(step);
    visitor
        .command(|v, now| {
            v.terms(now, TermsStatus::Accepted)?;
            v.session_start(now, Some(json!({ "sessionkey": VISITOR_ID })))
        })
        .map_err(|e| e.to_string())?;
    visitor.pump(step);
    visitor
        .command(|v, now| v.session_end(now, None))
        .map_err(|e| e.to_string())?;
    visitor.pump(Duration::from_millis(200));
    visitor.disconnect();
    Ok(())
}

/// Runs the demo; exit 0 when the agent saw everything.
pub fn run(json: bool) -> Result<(), Failure> {
    let config = ServiceConfig::builder()
        .listen(([127, 0, 0, 1], 0).into())
        .demo_group(true)
        .build()
        .map_err(Failure::usage)?;
    let service = ServiceHandle::spawn(config).map_err(Failure::connection)?;
    let printer = Printer::new(json, VISITOR_ID);
    printer.note(&format!(
        "reference service on {} (group {DEMO_GROUP_ID})",
        service.http_base()
    ));

    // The agent authorizes with a LoginKey made from the demo group's API key.
    let agent_config = AgentConfig::builder()
        .group_id(DEMO_GROUP_ID)
        .visitor_id(VISITOR_ID)
        .presence_server(service.http_base())
        .web_server(service.http_base())
        .credentials(AGENT_ID, DEMO_API_KEY)
        .build()
        .map_err(Failure::usage)?;
    let agent_grace = agent_config.timers().visitor_leave_grace;
    let mut agent =
        BlockingAgent::new(agent_config, TransportConfig::default()).map_err(Failure::usage)?;
    agent.connect().map_err(Failure::usage)?;
    let deadline = Instant::now() + DEMO_LIMIT;
    let mut seen = Seen::default();

    // Wait for the agent's link before the visitor starts, so that it sees everything.
    while !matches!(
        agent.core().connection_state(),
        glance_presence_protocol::agent::ConnectionState::Connected
    ) {
        let left = deadline.saturating_duration_since(Instant::now());
        match agent.next_event(Some(left)) {
            Some(event) => {
                printer.agent_event(&event);
                seen.record(&event);
            }
            None => return Err(Failure::connection("the agent could not connect")),
        }
    }
    printer.note("the visitor opens the shop");
    let server = service.http_base();
    let visitor = thread::spawn(move || visitor_script(server));

    let mut signalled = false;
    let mut waiting_noted = false;
    let grace = agent_grace.as_secs_f64();
    while !seen.left {
        if seen.session_ended && !waiting_noted {
            waiting_noted = true;
            printer.note(&format!(
                "the visitor closes the tab; waiting for the leave grace ({grace:.0} s) before the agent reports it absent"
            ));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let Some(event) = agent.next_event(Some(left)) else {
            break;
        };
        printer.agent_event(&event);
        seen.record(&event);
        if !signalled && seen.visible_again {
            signalled = true;
            printer.note("the agent signals the visitor");
            match agent.signal(json!({ "text": "Hi! Need a hand with your cart?" })) {
                Ok(delivery) => {
                    seen.signal_delivered = true;
                    printer.note(&format!(
                        "signal confirmed: {}",
                        render::delivery_words(&delivery)
                    ));
                }
                Err(e) => printer.note(&format!("signal failed: {e}")),
            }
            printer.note("the agent asks the visitor to show the terms");
            match agent.invoke(TERMS_FUNC, json!({ "sessionKey": VISITOR_ID })) {
                Ok(delivery) => {
                    seen.invoke_accepted = true;
                    printer.note(&format!(
                        "invoke confirmed: {}",
                        render::delivery_words(&delivery)
                    ));
                }
                Err(e) => printer.note(&format!("invoke failed: {e}")),
            }
        }
    }
    agent.disconnect();
    while let Some(event) = agent.next_event(Some(Duration::from_secs(1))) {
        printer.agent_event(&event);
        if matches!(event, AgentEvent::Stopped { .. }) {
            break;
        }
    }
    let visitor_result = visitor
        .join()
        .unwrap_or_else(|_| Err("the visitor thread panicked".to_owned()));
    service.shutdown();

    if let Err(e) = visitor_result {
        return Err(Failure::refused(format_args!("demo visitor: {e}")));
    }
    let missing = seen.missing();
    if missing.is_empty() {
        printer.note("demo complete: present without flicker across 3 pages, visibility, signal, terms, session, and the visitor leaving");
        Ok(())
    } else {
        Err(Failure::refused(format_args!(
            "demo incomplete: {}",
            missing.join("; ")
        )))
    }
}
