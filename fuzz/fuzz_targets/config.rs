//! Config loading: the bytes as a TOML file through figment, read section by section, then
//! validated (CEL expressions of the mapping compiled).
#![no_main]

use figment::providers::{Format, Toml};
use libfuzzer_sys::fuzz_target;
use scimsync::config::{from_figment, validate};
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let figment = figment::Figment::from(Toml::string(text));
    let read = match from_figment(&figment, "fuzz.toml") {
        Ok(read) => read,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    let _ = read.errors.to_string();
    match validate(read.raw, Path::new("/etc/scimsync")) {
        Ok(config) => {
            let _ = format!("{:?} {:?} {:?}", config.source, config.target, config.policy);
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
