//! The command's messages for the common mistakes: each names the address or file it is
//! about and gives a hint, exits with the documented code, and prints no Rust debug names.
//! Also: every `--json` line validates against `cli/events.schema.json`, that file is the
//! schema the line types generate, and `--help` shows the exit codes and the environment.

mod support;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::*;

#[test]
fn a_closed_port_names_the_address_and_suggests_checking_it() {
    let dead = format!("http://127.0.0.1:{}", dead_port());
    let mut args = vec!["lookup".to_owned()];
    args.extend(agent_args(&dead, "v1"));
    let out = run(with_env(cmd(&args), "GLANCE_TOKEN", "t0k3n-secret"));
    let (line, hint) = out.hinted_failure(3, &["t0k3n-secret"]);
    assert!(line.contains(&dead), "{line}");
    assert!(hint.contains("--server"), "{hint}");
}

#[test]
fn a_local_server_without_a_scheme_is_refused_before_any_io() {
    for (flag, value) in [
        ("--server", "127.0.0.1:8080"),
        ("--server", "localhost:8080"),
        ("--server", "[::1]:8080"),
    ] {
        let started = Instant::now();
        let out = run(cmd([
            "lookup",
            flag,
            value,
            "--group",
            GROUP,
            "--visitor",
            "v1",
            "--token",
            "t",
        ]));
        let (line, hint) = out.hinted_failure(2, &[]);
        assert!(line.contains(value) && line.contains("scheme"), "{line}");
        assert!(hint.contains(&format!("http://{value}")), "{hint}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }
    let out = run(cmd([
        "authorize",
        "--group",
        GROUP,
        "--partner-user-id",
        "a",
        "--api-key",
        "k",
        "--web-server",
        "127.0.0.1:1",
    ]));
    let (line, _) = out.hinted_failure(2, &["k"]);
    assert!(line.contains("--web-server 127.0.0.1:1"), "{line}");
}

#[test]
fn a_server_that_never_answers_is_a_bounded_wait_naming_it() {
    // Accepts connections (the kernel's backlog) and never answers.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", silent.local_addr().unwrap());
    let mut args = vec!["find".to_owned()];
    args.extend(agent_args(&url, "v1"));
    let started = Instant::now();
    let out = run(with_env(cmd(&args), "GLANCE_TOKEN", "t"));
    let (line, hint) = out.hinted_failure(3, &[]);
    assert!(line.contains(&url) && line.contains("no answer"), "{line}");
    assert!(hint.contains("--server"), "{hint}");
    assert!(started.elapsed() < Duration::from_secs(25));
}

/// A token for the demo group, valid for `life` from now, issued by this service.
fn token_for(svc: &glance_presence_service::ServiceHandle, group: u64, life: Duration) -> String {
    svc.issue_token(
        glance_presence_protocol::GroupId::new(group).unwrap(),
        &glance_presence_protocol::PartnerUserId::new("agent1").unwrap(),
        life,
    )
    .unwrap()
    .expose_secret()
    .to_owned()
}

#[test]
fn each_refused_authorization_names_the_service_and_its_reason() {
    let other_group = 777;
    let svc = glance_presence_service::ServiceHandle::spawn(
        glance_presence_service::ServiceConfig::builder()
            .listen("127.0.0.1:0".parse().unwrap())
            .group(
                glance_presence_protocol::GroupId::new(other_group).unwrap(),
                glance_presence_protocol::ApiKey::new("other-group-api-key"),
            )
            .build()
            .unwrap(),
    )
    .unwrap();
    let url = svc.http_base();
    let mut lookup = vec!["lookup".to_owned()];
    lookup.extend(agent_args(&url, "v1"));
    let group: u64 = GROUP.parse().unwrap();
    let expired = token_for(&svc, group, Duration::ZERO);
    let foreign = token_for(&svc, other_group, Duration::from_secs(600));
    for (token, reason) in [
        ("not-a-token", "invalid token"),
        (expired.as_str(), "token expired"),
        (foreign.as_str(), "token is for another group"),
    ] {
        let out = run(with_env(cmd(&lookup), "GLANCE_TOKEN", token));
        let (line, hint) = out.hinted_failure(1, &[token]);
        assert!(line.contains(&url) && line.contains(reason), "{line}");
        assert!(hint.contains("--token"), "{hint}");
    }
    // A wrong API key: the Authorize call is refused, for `lookup` and `authorize` alike.
    let mut lookup_with_key = lookup.clone();
    lookup_with_key.extend(["--partner-user-id", "agent1", "--web-server", &url].map(String::from));
    let out = run(with_env(
        cmd(&lookup_with_key),
        "GLANCE_API_KEY",
        "wrong-api-key",
    ));
    let (line, hint) = out.hinted_failure(1, &["wrong-api-key"]);
    assert!(
        line.contains(&url) && line.contains("the login key is not valid"),
        "{line}"
    );
    assert!(hint.contains("--api-key"), "{hint}");
    let out = run(cmd([
        "authorize",
        "--group",
        GROUP,
        "--partner-user-id",
        "agent1",
        "--api-key",
        "wrong-api-key",
        "--web-server",
        &url,
    ]));
    let (line, hint) = out.hinted_failure(1, &["wrong-api-key"]);
    assert!(
        line.contains(&url) && line.contains("the login key is not valid"),
        "{line}"
    );
    assert!(hint.contains("--api-key"), "{hint}");
}

#[test]
fn an_empty_api_key_is_a_usage_error() {
    let out = run(cmd([
        "login-key",
        "--group",
        GROUP,
        "--partner-user-id",
        "a",
        "--api-key",
        "",
    ]));
    let (line, hint) = out.hinted_failure(2, &[]);
    assert!(line.contains("API key is empty"), "{line}");
    assert!(hint.contains("--api-key"), "{hint}");
}

#[test]
fn a_bad_config_file_shows_the_toml_diagnostic_and_a_missing_one_is_named_once() {
    let path =
        std::env::temp_dir().join(format!("glance-presence-bad-{}.toml", std::process::id()));
    std::fs::write(&path, "\nkeepalive_secs = \"x\"\n").unwrap();
    let shown = path.display().to_string();
    let out = run(cmd(["serve", "--config", &shown]));
    assert_eq!(out.code, Some(2), "{out:#?}");
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert!(
        lines[0].contains(&shown) && lines[0].contains("line 2"),
        "{out:#?}"
    );
    assert!(
        lines.iter().any(|l| l.contains("keepalive_secs = \"x\"")),
        "{out:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.trim_start().starts_with('|') && l.contains('^')),
        "{out:#?}"
    );
    assert!(lines.last().unwrap().starts_with("  hint: "), "{out:#?}");
    let _ = std::fs::remove_file(&path);

    let missing = std::env::temp_dir().join("glance-presence-no-such-file.toml");
    let missing = missing.display().to_string();
    let out = run(cmd(["serve", "--config", &missing]));
    let (line, hint) = out.hinted_failure(2, &[]);
    assert_eq!(line.matches(&missing).count(), 1, "{line}");
    assert!(hint.contains("--config"), "{hint}");
}

#[test]
fn help_shows_exit_codes_and_environment_and_completions_print() {
    let out = run(cmd(["--help"]));
    assert_eq!(out.code, Some(0));
    for needle in [
        "Exit codes:",
        "GLANCE_PRESENCE_LOG",
        "GLANCE_TOKEN",
        "time_unix_ms",
        "Proxies",
    ] {
        assert!(out.stdout.contains(needle), "{needle}: {}", out.stdout);
    }
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let out = run(cmd(["completions", shell]));
        assert_eq!(out.code, Some(0), "{out:#?}");
        assert!(out.stdout.contains("glance-presence"), "{shell}");
    }
}

fn schema() -> jsonschema::Validator {
    let text = include_str!("../events.schema.json");
    let schema: Value = serde_json::from_str(text).expect("the schema is JSON");
    jsonschema::validator_for(&schema).expect("the schema is a valid JSON Schema")
}

fn assert_valid(validator: &jsonschema::Validator, line: &str) {
    let value: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
    let errors: Vec<String> = validator
        .iter_errors(&value)
        .map(|e| e.to_string())
        .collect();
    assert!(
        errors.is_empty(),
        "{line} does not match the schema: {errors:#?}"
    );
}

/// The schema check: real `--json` output of the demo and of the one-shot commands, line by
/// line, against the schema file.
#[test]
fn every_json_line_matches_the_schema() {
    let validator = schema();
    let out = run(cmd(["demo", "--json"]));
    assert_eq!(out.code, Some(0), "{out:#?}");
    let mut checked = 0;
    for line in out.stdout.lines() {
        assert_valid(&validator, line);
        checked += 1;
    }
    assert!(checked > 10);

    let svc = service();
    let url = svc.http_base();
    let _visitor = visitor(&url, "schema-v");
    for op in [
        vec!["lookup", "--json"],
        vec!["query", "--json"],
        vec!["find", "--json"],
        vec!["signal", "--json", "--data", "{\"a\":1}"],
        vec!["lookup", "--json"],
    ] {
        let mut args: Vec<String> = op.iter().map(|s| (*s).to_owned()).collect();
        args.extend(agent_args(&url, "schema-v"));
        args.extend([
            "--web-server".into(),
            url.clone(),
            "--partner-user-id".into(),
            "agent1".into(),
        ]);
        let out = run(with_env(cmd(&args), "GLANCE_API_KEY", API_KEY));
        assert_eq!(out.code, Some(0), "{out:#?}");
        assert_valid(&validator, out.stdout.trim());
    }
    let out = run(cmd([
        "login-key",
        "--json",
        "--group",
        GROUP,
        "--partner-user-id",
        "a",
        "--api-key",
        API_KEY,
    ]));
    assert_valid(&validator, out.stdout.trim());
    // And the schema refuses what it should: no time, an event of no known kind, a field of
    // the wrong type.
    for bad in [
        r#"{"visitor_id":"v","event":"connected","server":"x"}"#,
        r#"{"time_unix_ms":1,"visitor_id":"v","event":"nosuchevent"}"#,
        r#"{"time_unix_ms":1,"visitor_id":"v","event":"connected","server":"x","keepalive_secs":"30"}"#,
        r#"{"time_unix_ms":1,"visitor_id":"v","found":"yes","direct_server":null}"#,
    ] {
        let bad: Value = serde_json::from_str(bad).unwrap();
        assert!(!validator.is_valid(&bad), "{bad}");
    }
}

/// How to bring the schema file up to date with the line types.
const REGENERATE: &str = "GLANCE_PRESENCE_WRITE_SCHEMA=1 cargo test -p glance-presence-cli \
--test cli_messages the_schema_file_is_generated_from_the_line_types";

/// `cli/events.schema.json` is exactly what the JSON line types generate (`glance-presence
/// json-schema` prints it). With `GLANCE_PRESENCE_WRITE_SCHEMA=1` the test writes the file
/// instead of comparing.
#[test]
fn the_schema_file_is_generated_from_the_line_types() {
    let out = run(cmd(["json-schema"]));
    assert_eq!(out.code, Some(0), "{out:#?}");
    let generated = out.stdout;
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("events.schema.json");
    if std::env::var("GLANCE_PRESENCE_WRITE_SCHEMA").as_deref() == Ok("1") {
        std::fs::write(&path, &generated).unwrap();
        eprintln!("wrote {}", path.display());
        return;
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    if checked_in != generated {
        let first = checked_in
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| checked_in.lines().count().min(generated.lines().count()));
        panic!(
            "cli/events.schema.json is not the schema the JSON line types generate (first \
             difference at line {}: {:?} in the file, {:?} generated).\nRegenerate it with\n  \
             {REGENERATE}\nand commit it.",
            first + 1,
            checked_in.lines().nth(first).unwrap_or("<end of file>"),
            generated.lines().nth(first).unwrap_or("<end of output>"),
        );
    }
}

fn with_env(mut command: std::process::Command, name: &str, value: &str) -> std::process::Command {
    command.env(name, value);
    command
}
