//! The CSV source over arbitrary bytes, with the default settings and with `;`-delimited rows and
//! `,`-separated groups; what it reads is mapped and planned.
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use scimsync::config::Config;
use std::sync::OnceLock;

fn configs() -> &'static [Config; 2] {
    static CONFIGS: OnceLock<[Config; 2]> = OnceLock::new();
    CONFIGS.get_or_init(|| {
        [
            common::config("[source]\nkind = \"csv\"\npath = \"fuzz.csv\"\n"),
            common::config(
                "[source]\nkind = \"csv\"\npath = \"fuzz.csv\"\ndelimiter = \";\"\ngroups_separator = \",\"\n\
                 [target]\nprofile = \"generic\"\n",
            ),
        ]
    })
}

fuzz_target!(|data: &[u8]| {
    for config in configs() {
        if let Ok(dir) = scimsync::source::csv::read(data, "fuzz.csv", &config.source) {
            common::plan_and_render(config, dir);
        }
    }
});
