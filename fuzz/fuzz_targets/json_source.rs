//! The JSON source (a SCIM ListResponse or JSON Lines) over arbitrary bytes; what it reads is
//! mapped and planned.
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use scimsync::config::Config;
use std::sync::OnceLock;

fn config() -> &'static Config {
    static CONFIG: OnceLock<Config> = OnceLock::new();
    CONFIG.get_or_init(|| common::config("[source]\nkind = \"json\"\npath = \"fuzz.json\"\n"))
}

fuzz_target!(|data: &[u8]| {
    if let Ok(dir) = scimsync::source::json::read(data, "fuzz.json") {
        common::plan_and_render(config(), dir);
    }
});
