//! Shared by the targets: the pure part of a run after the source read (map, plan, render).

use figment::providers::{Format, Toml};
use scimsync::config::{self, Config};
use scimsync::reconcile::{self, render, Policy, Snapshot};
use scimsync::source::directory::SourceDirectory;
use std::path::Path;

/// A validated config of the given source kind, as a config file with only these keys gives it.
pub fn config(toml: &str) -> Config {
    let figment = figment::Figment::from(Toml::string(toml));
    let read = config::from_figment(&figment, "fuzz.toml").expect("the fuzz config reads");
    assert!(read.errors.is_empty(), "{}", read.errors);
    match config::validate(read.raw, Path::new("/fuzz")) {
        Ok(c) => c,
        Err(e) => panic!("the fuzz config is invalid: {e}"),
    }
}

/// Maps a source read, plans it against an empty snapshot and renders the plan every way.
#[allow(dead_code)]
pub fn plan_and_render(config: &Config, dir: SourceDirectory) {
    let desired = config.mapping.map_directory(dir);
    let plan = reconcile::plan(&desired, &Snapshot::default(), &Policy::default());
    let names: render::Names = desired.users.iter().map(|(k, u)| (k, u.user_name())).collect();
    let _ = render::json(&plan, &names);
    let _ = render::text(&plan, &names);
    let _ = render::markdown(&plan, &names);
    let _ = plan.summary();
}
