//! `serve`: run the reference presence service until Ctrl-C, then shut it down gracefully
//! (every socket gets `serverclose`).

use std::sync::mpsc;

use glance_presence_service::config::{ServiceConfig, TlsConfig, DEMO_GROUP_ID};
use glance_presence_service::ServiceHandle;

use crate::args::ServeArgs;
use crate::failure::Failure;

/// The service configuration for these flags.
pub fn config(args: &ServeArgs) -> Result<ServiceConfig, Failure> {
    let mut builder = match &args.config {
        Some(path) => ServiceConfig::from_toml_file(path)
            .map_err(|e| Failure::usage(format_args!("{}: {e}", path.display())))?
            .to_builder(),
        None => ServiceConfig::builder(),
    };
    builder = builder.listen(args.listen);
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

/// Runs until Ctrl-C.
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
