//! Keeps the numbered requirements in step: every id in PROTOCOL.md is in `requirements.toml`
//! and every id there is in PROTOCOL.md; every entry is complete (a requirement left to the
//! agent's own tests names a test that exists); the suites' table agrees with the list.

use std::collections::BTreeSet;

use glance_presence_conformance::requirements::{Level, Role};
use glance_presence_conformance::REQUIREMENTS;

fn workspace_file(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn list() -> Vec<toml::Table> {
    let doc: toml::Table = workspace_file("requirements.toml")
        .parse()
        .expect("requirements.toml parses");
    doc["requirement"]
        .as_array()
        .expect("[[requirement]]")
        .iter()
        .map(|r| r.as_table().expect("table").clone())
        .collect()
}

/// Every `[ROLE-AREA-N]` in PROTOCOL.md.
fn protocol_ids() -> BTreeSet<String> {
    let text = workspace_file("PROTOCOL.md");
    let mut ids = BTreeSet::new();
    for piece in text.split('[').skip(1) {
        let Some(end) = piece.find(']') else { continue };
        let candidate = &piece[..end];
        let parts: Vec<&str> = candidate.split('-').collect();
        if parts.len() == 3
            && ["SRV", "AGT", "VIS"].contains(&parts[0])
            && !parts[1].is_empty()
            && parts[1].bytes().all(|b| b.is_ascii_uppercase())
            && !parts[2].is_empty()
            && parts[2].bytes().all(|b| b.is_ascii_digit())
        {
            ids.insert(candidate.to_owned());
        }
    }
    ids
}

#[test]
fn protocol_and_list_name_the_same_ids() {
    let listed: Vec<String> = list()
        .iter()
        .map(|r| r["id"].as_str().expect("id").to_owned())
        .collect();
    let unique: BTreeSet<String> = listed.iter().cloned().collect();
    assert_eq!(unique.len(), listed.len(), "an id is listed twice");
    let documented = protocol_ids();
    let missing_in_doc: Vec<_> = unique.difference(&documented).collect();
    let missing_in_list: Vec<_> = documented.difference(&unique).collect();
    assert!(
        missing_in_doc.is_empty() && missing_in_list.is_empty(),
        "listed but not in PROTOCOL.md: {missing_in_doc:?}; in PROTOCOL.md but not listed: {missing_in_list:?}"
    );
}

#[test]
fn every_entry_is_complete() {
    for r in list() {
        let id = r["id"].as_str().expect("id");
        let field = |name: &str| r.get(name).and_then(|v| v.as_str()).unwrap_or("");
        assert!(!field("title").is_empty(), "{id}: title");
        assert!(
            ["glance-doc", "glance-client", "project"].contains(&field("source")),
            "{id}: source"
        );
        assert!(
            ["required", "recommended"].contains(&field("level")),
            "{id}: level"
        );
        let role = field("role");
        assert!(["server", "agent", "visitor"].contains(&role), "{id}: role");
        let prefix = match role {
            "server" => "SRV-",
            "agent" => "AGT-",
            _ => "VIS-",
        };
        assert!(id.starts_with(prefix), "{id}: role {role}");
        let check = field("check");
        assert!(
            ["server", "client", "core-tests", "none"].contains(&check),
            "{id}: check"
        );
        // A client rule left to the Rust core's own tests names one that exists (a scenario,
        // or a property: `fn name(` either way).
        if check == "core-tests" {
            assert!(
                !id.starts_with("SRV-"),
                "{id}: server rules are checked by the server suite"
            );
            let (file, test) = field("checked_by")
                .split_once(": ")
                .unwrap_or_else(|| panic!("{id}: checked_by is \"file: test function\""));
            assert!(
                workspace_file(file).contains(&format!("fn {test}(")),
                "{id}: {file} has no test {test}"
            );
        }
    }
}

#[test]
fn the_suites_table_agrees_with_the_list() {
    let listed = list();
    let observed: Vec<&toml::Table> = listed
        .iter()
        .filter(|r| matches!(r["check"].as_str(), Some("server" | "client")))
        .collect();
    assert_eq!(observed.len(), REQUIREMENTS.len());
    for (row, req) in observed.iter().zip(REQUIREMENTS) {
        assert_eq!(row["id"].as_str(), Some(req.id));
        assert_eq!(row["title"].as_str(), Some(req.title), "{}", req.id);
        let level = if req.level == Level::Required {
            "required"
        } else {
            "recommended"
        };
        assert_eq!(row["level"].as_str(), Some(level), "{}", req.id);
        let role = match req.role {
            Role::Server => "server",
            Role::Agent => "agent",
            Role::Visitor => "visitor",
        };
        assert_eq!(row["role"].as_str(), Some(role), "{}", req.id);
    }
}
