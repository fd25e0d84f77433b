//! An export rewritten in place while the daemon watches it (`ldapsearch … > people.ldif` from
//! cron, a paged search pausing between pages): the run the change triggers reads part of the
//! file, and must deactivate nobody. `scimsync run` against a real SCIM server (scim2-server).

use crate::daemon::{directory, site, users, wait_until, Daemon, YEARLY};
use std::io::Write as _;
use std::time::Duration;

const PEOPLE: u32 = 100;
/// Short, so that the confirming run comes within the test.
const SETTLE: u64 = 6;

fn everyone() -> Vec<(String, u32)> {
    (0..PEOPLE).map(|n| (format!("p{n:03}"), n + 1)).collect()
}

fn text_of(people: &[(String, u32)]) -> String {
    let refs: Vec<(&str, u32)> = people.iter().map(|(u, n)| (u.as_str(), *n)).collect();
    directory(&refs)
}

fn inactive(site: &crate::support::site::Site) -> Vec<String> {
    users(site).into_iter().filter(|(_, u)| u["active"] == false).map(|(name, _)| name).collect()
}

/// Writes `text` into the export in place, pausing 4 s after `cut` bytes (the watch's quiet
/// second passes, and the run it triggers reads what is there), then writes the rest.
fn rewrite_in_place_with_a_pause(path: &std::path::Path, text: &str, cut: usize) {
    let mut file = std::fs::OpenOptions::new().write(true).truncate(true).open(path).unwrap();
    file.write_all(&text.as_bytes()[..cut]).unwrap();
    file.flush().unwrap();
    std::thread::sleep(Duration::from_secs(4));
    file.write_all(&text.as_bytes()[cut..]).unwrap();
}

#[test]
fn an_export_rewritten_in_place_with_pauses_deactivates_nobody() {
    // `site` opens the [schedule] table: the key goes into it.
    let site = site(YEARLY, "", &format!("settle_seconds = {SETTLE}\n"));
    let people = everyone();
    let text = text_of(&people);
    site.write_source(&text);
    let mut d = Daemon::start(&site, &[]);
    wait_until("the first users", 60, || (users(&site).len() == PEOPLE as usize).then_some(()));
    let runs = |d: &Daemon| d.messages("Run finished.").len() + d.messages("Run failed.").len();

    // Paused at an entry boundary after 95% of the entries, then paused in the middle of an
    // entry (inside its entryUUID value, so the cut entry's key is cut too).
    let boundary = text.match_indices("\ndn: ").nth(95).unwrap().0 + 1;
    let mid_entry = text[boundary..].find("entryUUID: ").unwrap() + boundary + "entryUUID: 0000".len();
    for (what, cut) in [("an entry boundary", boundary), ("the middle of an entry", mid_entry)] {
        let before = runs(&d);
        rewrite_in_place_with_a_pause(&site.source, &text, cut);
        // The run during the pause, the one after the rest was written, and the settled one.
        wait_until(&format!("the runs after a pause at {what}"), 60, || {
            (runs(&d) >= before + 2).then_some(())
        });
        std::thread::sleep(Duration::from_secs(SETTLE + 3));
        // Not even for a moment: a deactivation the next run undoes still locked people out.
        let deactivations: Vec<_> =
            d.messages("Applied.").into_iter().filter(|e| e["op"] == "deactivate_user").collect();
        assert!(deactivations.is_empty(), "paused at {what}: deactivated {deactivations:?}\n{}", d.text());
        assert_eq!(
            inactive(&site),
            Vec::<String>::new(),
            "paused at {what}: somebody is inactive\n{}",
            d.text()
        );
        assert_eq!(
            users(&site).len(),
            PEOPLE as usize,
            "paused at {what}: a user was created from a cut entry"
        );
    }
    let in_doubt = d.messages("This run removes nothing.");
    assert!(!in_doubt.is_empty(), "no run was in doubt:\n{}", d.text());

    // A real departure, written by rename: the run the change triggers only marks it; the run
    // once the file has settled deactivates.
    let mut fewer = people.clone();
    let gone = fewer.pop().unwrap().0;
    site.write_source(&text_of(&fewer));
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(inactive(&site), Vec::<String>::new(), "deactivated before the export settled");
    wait_until("the departure after the export settled", 30, || {
        (inactive(&site) == [format!("{gone}@example.com")]).then_some(())
    });
    let settled = d.messages("Run finished.").into_iter().filter(|r| r["trigger"] == "settled").count();
    assert!(settled >= 1, "no settled run:\n{}", d.text());

    d.signal(libc::SIGTERM);
    assert_eq!(d.wait_exit(30).code(), Some(0), "{}", d.text());
}
