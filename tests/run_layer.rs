//! The run layer as a library: a plan and an applying run on the caller's runtime, timed by the
//! caller's clock, against a real SCIM server (scim2-server).

use crate::support;

use scimsync::run::{self, Run};
use scimsync::store::Store;
use support::rt;
use support::scim_server::ScimServer;
use support::site::{person, Site};

/// A fixed time, far from the system clock's.
const T: i64 = 1_500_000_000;

fn fixed() -> i64 {
    T
}

#[test]
fn a_run_reads_time_only_from_its_clock() {
    let server = ScimServer::shared();
    let site = Site::new(server, "", "");
    site.write_source(&(person("ada", "Ada", "Lovelace", 1, &[]) + &person("bob", "Bob", "Byte", 2, &[])));
    let config = scimsync::config::load(&site.config).unwrap();

    let dry = rt().block_on(Run::new(&config, fixed).plan()).unwrap();
    assert_eq!(dry.prepared.plan.summary().create_user, 2, "both users are planned");
    dry.finish().unwrap();

    let outcome = rt().block_on(Run::new(&config, fixed).apply(run::Options::default())).unwrap();
    assert_eq!(outcome.report.applied, 2, "{:?}", outcome.report);

    let store = Store::open(&config.state_path).unwrap();
    let runs = store.recent_runs(10).unwrap();
    assert_eq!(runs.len(), 2);
    for r in &runs {
        assert_eq!(
            (r.started_at, r.finished_at),
            (T, Some(T)),
            "run {} ({}) took the system time",
            r.id,
            r.kind
        );
    }
    let audit = store.audit(None, 10).unwrap();
    assert_eq!(audit.len(), 2);
    assert!(audit.iter().all(|e| e.at == T), "audit entries dated by the clock: {audit:?}");
}
