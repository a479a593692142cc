//! Shared by the test binaries: one CPU client per binary (each client starts its own thread pool).
#![allow(dead_code)]

use pjrt::Client;
use std::sync::OnceLock;

/// The shared CPU client. Fails the test with the fix when the plugin is not installed.
pub fn client() -> &'static Client {
    static CLIENT: OnceLock<Client> = OnceLock::new();
    CLIENT.get_or_init(|| match Client::cpu() {
        Ok(c) => c,
        Err(e) => panic!(
            "these tests need the PJRT CPU plugin and could not open it:\n{e}\n\
             (install it with ./scripts/setup.sh plugin, or scripts/setup/plugin.sh)"
        ),
    })
}
