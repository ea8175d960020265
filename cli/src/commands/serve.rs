//! `serve`: run the reference presence service until Ctrl-C or SIGTERM, then shut it down
//! gracefully (every socket gets `serverclose`, agents first) and exit 0.
//!
//! Settings come from, in order of precedence: a flag given on the command line, the `--config`
//! file, the default.

use std::path::Path;
use std::sync::mpsc;

use glance_presence_service::config::{ConfigError, ServiceConfig, TlsConfig, DEMO_GROUP_ID};
use glance_presence_service::ServiceHandle;

use crate::args::{ServeArgs, DEFAULT_LISTEN};
use crate::failure::Failure;

/// The service configuration for these flags.
pub fn config(args: &ServeArgs) -> Result<ServiceConfig, Failure> {
    let (mut builder, file_listens) = match &args.config {
        Some(path) => {
            let from_file =
                ServiceConfig::from_toml_file(path).map_err(|e| file_failure(path, e))?;
            (from_file.to_builder(), sets_listen(path)?)
        }
        None => (ServiceConfig::builder(), false),
    };
    match args.listen {
        Some(listen) => builder = builder.listen(listen),
        None if file_listens => {}
        None => builder = builder.listen(DEFAULT_LISTEN),
    }
    if args.no_demo_group {
        builder = builder.demo_group(false);
    }
    if args.load_balanced {
        builder = builder.load_balanced(true);
    }
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        builder = builder.tls(TlsConfig::from_pem_files(cert, key));
    }
    builder.build().map_err(Failure::usage)
}

/// A configuration file that cannot be used: the file named once, a TOML diagnostic shown as
/// the TOML library formats it (line, column, the line and a caret), and what to do.
fn file_failure(path: &Path, error: ConfigError) -> Failure {
    let shown = path.display();
    match error {
        ConfigError::Read { source, .. } => Failure::usage(format_args!(
            "cannot read the configuration file {shown}: {source}"
        ))
        .hint("check the --config path"),
        ConfigError::Toml(diagnostic) => {
            Failure::diagnostic(format_args!("{shown}: {}", diagnostic.trim_end()))
                .hint("fix the file; the README lists every setting and its type")
        }
        other => Failure::usage(format_args!("{shown}: {other}")),
    }
}

/// Whether the configuration file names a listen address (its `listen` then beats the default).
fn sets_listen(path: &Path) -> Result<bool, Failure> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::usage(format_args!("{}: {e}", path.display())))?;
    let table: toml::Table = toml::from_str(&text)
        .map_err(|e| Failure::usage(format_args!("{}: {e}", path.display())))?;
    Ok(table.contains_key("listen"))
}

/// Runs until Ctrl-C (SIGINT) or SIGTERM.
pub fn run(args: &ServeArgs) -> Result<(), Failure> {
    let config = config(args)?;
    let demo = config.api_keys(demo_group()).is_some();
    let (stop_tx, stop_rx) = mpsc::channel();
    ctrlc::set_handler(move || {
        let _ = stop_tx.send(());
    })
    .map_err(|e| Failure::usage(format_args!("cannot handle Ctrl-C: {e}")))?;
    let service = ServiceHandle::spawn(config).map_err(Failure::connection)?;
    println!(
        "glance-presence reference service on {}",
        service.http_base()
    );
    println!("  agents:   {}/agent", service.ws_base());
    println!("  visitors: {}/visitorws", service.ws_base());
    if demo {
        println!("  demo group {DEMO_GROUP_ID} (its API key is in the README)");
    }
    println!("Ctrl-C stops it.");
    let _ = stop_rx.recv();
    service.shutdown();
    println!("stopped");
    Ok(())
}

fn demo_group() -> glance_presence_protocol::GroupId {
    match glance_presence_protocol::GroupId::new(DEMO_GROUP_ID) {
        Ok(group) => group,
        Err(_) => unreachable!("the demo group id is positive"),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::args::{Cli, Command};

    fn serve_args(args: &[&str]) -> ServeArgs {
        let argv = ["glance-presence", "serve"].iter().chain(args);
        match Cli::try_parse_from(argv).unwrap().command {
            Command::Serve(args) => args,
            _ => unreachable!(),
        }
    }

    fn file(name: &str, text: &str) -> std::path::PathBuf {
        let path = std::env::temp_dir().join(format!(
            "glance-presence-serve-{}-{name}.toml",
            std::process::id()
        ));
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn listen_precedence_is_flag_then_file_then_default() {
        let listen = |args: &[&str]| config(&serve_args(args)).unwrap().listen().to_string();
        assert_eq!(listen(&[]), "127.0.0.1:8080");
        let with = file("with-listen", "listen = \"127.0.0.1:0\"\n");
        let without = file("without-listen", "load_balanced = true\n");
        let with = with.to_str().unwrap();
        let without = without.to_str().unwrap();
        assert_eq!(listen(&["--config", with]), "127.0.0.1:0");
        assert_eq!(listen(&["--config", without]), "127.0.0.1:8080");
        assert_eq!(
            listen(&["--config", with, "--listen", "127.0.0.1:9"]),
            "127.0.0.1:9"
        );
        assert_eq!(listen(&["--listen", "127.0.0.1:9"]), "127.0.0.1:9");
        let _ = std::fs::remove_file(with);
        let _ = std::fs::remove_file(without);
    }

    #[test]
    fn switch_flags_override_the_file_and_leave_it_alone_when_absent() {
        let path = file("switches", "load_balanced = false\ndemo_group = true\n");
        let path = path.to_str().unwrap();
        let plain = config(&serve_args(&["--config", path])).unwrap();
        assert!(!plain.load_balanced());
        assert!(plain.demo_group());
        let on = file("switches-on", "load_balanced = true\n");
        let on = on.to_str().unwrap();
        assert!(config(&serve_args(&["--config", on]))
            .unwrap()
            .load_balanced());
        let flagged = config(&serve_args(&["--config", path, "--load-balanced"])).unwrap();
        assert!(flagged.load_balanced());
        let _ = std::fs::remove_file(path);
        let _ = std::fs::remove_file(on);
    }
}
