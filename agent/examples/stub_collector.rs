//! A stand-in collector for demos and measurements until the real one is merged.
//!
//! Writes a throw-away PKI (CA, collector certificate, device certificate CN=dev-1 O=acme) and a
//! matching `agent.toml` into DIR, listens on ADDR (default 127.0.0.1:4433), acknowledges every
//! batch as committed and prints one line per batch.
//!
//! ```text
//! cargo run -p ampel-agent --example stub_collector -- /tmp/ampel-demo
//! ampel-agent run --config /tmp/ampel-demo/agent.toml
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/integration/support.rs"]
mod support;

use std::net::SocketAddr;
use std::path::PathBuf;

use support::{Event, Pki, Server, write_config};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().expect("usage: stub_collector DIR [ADDR]"));
    let addr: SocketAddr = args.next().unwrap_or_else(|| "127.0.0.1:4433".to_owned()).parse().expect("ADDR must be ip:port");
    std::fs::create_dir_all(&dir).expect("cannot create DIR");
    let pki = Pki::new();
    pki.write_device_files(&dir);
    let mut server = Server::start(&pki, &pki, addr).await;
    let config = write_config(&dir, server.addr, "1s");
    println!("listening on {}; run: ampel-agent run --config {}", server.addr, config.display());
    while let Some(event) = server.recv_event().await {
        match event {
            Event::Connected(id) => println!("connected: {id}"),
            Event::Batch(b) => println!("batch seq={} records={} sender={:?}", b.seq, b.records.len(), b.sender),
            Event::Closed(e) => println!("connection closed: {e}"),
        }
    }
}
