//! The completeness checks of one SCIM listing (`/Users` or `/Groups`), fed one page at a time:
//! pure, so every way a server can page badly is tested without a server.

use super::super::{Origin, SourceError};
use serde_json::Value as Json;
use std::collections::{HashMap, HashSet};

/// How the pages of a listing are asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Paging {
    /// `startIndex` / `count` (RFC 7644 §3.4.2.4).
    Index,
    /// `cursor` / `nextCursor` (RFC 9865).
    Cursor,
}

/// Where the next page starts.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Next {
    Index(u64),
    /// The cursor to send; empty for the first page.
    Cursor(String),
    Done,
}

/// One listing being read: what was read so far and what the server promised.
pub struct Listing {
    /// `/Users`, for messages.
    name: String,
    /// The resource URL prefix for origins (`https://…/v2/Users`).
    location: String,
    count: u32,
    next: Next,
    /// Pages accepted so far.
    pages: u32,
    total: Option<u64>,
    /// Resource id → the page it came on.
    seen: HashMap<String, u32>,
    cursors: HashSet<String>,
    resources: Vec<(Origin, Json)>,
}

fn incomplete(message: String) -> SourceError {
    SourceError::Incomplete(message)
}

impl Listing {
    pub fn new(name: &str, location: &str, paging: Paging, count: u32) -> Listing {
        Listing {
            name: name.to_owned(),
            location: location.to_owned(),
            count,
            next: match paging {
                Paging::Index => Next::Index(1),
                Paging::Cursor => Next::Cursor(String::new()),
            },
            pages: 0,
            total: None,
            seen: HashMap::new(),
            cursors: HashSet::new(),
            resources: Vec::new(),
        }
    }

    /// The query of the next page, or `None` when the listing is complete.
    pub fn next_query(&self) -> Option<Vec<(&'static str, String)>> {
        let count = ("count", self.count.to_string());
        match &self.next {
            Next::Index(start) => Some(vec![("startIndex", start.to_string()), count]),
            Next::Cursor(cursor) => Some(vec![("cursor", cursor.clone()), count]),
            Next::Done => None,
        }
    }

    /// The next page in words, for messages: `/Users page 3 (startIndex 201)`.
    pub fn describe_next(&self) -> String {
        let n = self.pages + 1;
        match &self.next {
            Next::Index(start) => format!("{} page {n} (startIndex {start})", self.name),
            Next::Cursor(_) => format!("{} page {n} (by cursor)", self.name),
            Next::Done => format!("{} after its last page", self.name),
        }
    }

    /// Checks one page and takes its resources, or says why the read cannot be trusted.
    pub fn accept(&mut self, page: Json) -> Result<(), SourceError> {
        let at = self.describe_next();
        let Json::Object(page) = page else {
            return Err(incomplete(format!("{at} is not a SCIM ListResponse (not a JSON object)")));
        };
        let total = self.check_total(&page, &at)?;
        self.total = total;
        let resources = match page.get("Resources") {
            Some(Json::Array(items)) => items.clone(),
            None | Some(Json::Null) => Vec::new(),
            Some(_) => return Err(incomplete(format!("{at}: Resources is not a list"))),
        };
        if let Some(ipp) = page.get("itemsPerPage").filter(|v| !v.is_null()) {
            if ipp.as_u64() != Some(resources.len() as u64) {
                return Err(incomplete(format!(
                    "{at} says itemsPerPage {ipp} but holds {} resources: a short page; the next run reads \
                     it again",
                    resources.len()
                )));
            }
        }
        if let (Next::Index(start), Some(answered)) = (&self.next, page.get("startIndex")) {
            if answered.as_u64() != Some(*start) {
                return Err(incomplete(format!("{at} was answered with startIndex {answered}")));
            }
        }
        let received = resources.len() as u64;
        self.pages += 1;
        self.take(resources, &at)?;
        self.next = self.after(&page, total, received, &at)?;
        Ok(())
    }

    /// The page's `totalResults`, checked against the earlier pages'.
    fn check_total(
        &self,
        page: &serde_json::Map<String, Json>,
        at: &str,
    ) -> Result<Option<u64>, SourceError> {
        let total = match page.get("totalResults") {
            None | Some(Json::Null) => None,
            Some(t) => Some(t.as_u64().ok_or_else(|| {
                incomplete(format!("{at}: totalResults {t} is not a non-negative integer"))
            })?),
        };
        match (total, self.total) {
            (Some(now), Some(before)) if now != before => Err(incomplete(format!(
                "totalResults of {} moved from {before} to {now} during the read (at {at}): the \
                 source changed while it was read; the next run reads it again",
                self.name
            ))),
            (None, _) if matches!(self.next, Next::Index(_)) => Err(incomplete(format!(
                "{at} has no totalResults: without it the end of an index-paged listing is unknown"
            ))),
            (None, Some(before)) => {
                Err(incomplete(format!("{at} has no totalResults although earlier pages said {before}")))
            }
            (Some(now), None) if self.pages > 0 => {
                Err(incomplete(format!("{at} says totalResults {now} although earlier pages had none")))
            }
            _ => Ok(total),
        }
    }

    /// Takes a page's resources, each with an id not seen before.
    fn take(&mut self, resources: Vec<Json>, at: &str) -> Result<(), SourceError> {
        for (i, r) in resources.into_iter().enumerate() {
            let id = r.get("id").and_then(Json::as_str).map(str::trim).filter(|s| !s.is_empty());
            let Some(id) = id else {
                return Err(incomplete(format!(
                    "{at}, resource {}: no id (a SCIM service provider gives every resource one)",
                    i + 1
                )));
            };
            if let Some(first) = self.seen.insert(id.to_owned(), self.pages) {
                return Err(incomplete(format!(
                    "{} returned the resource {id} twice (pages {first} and {}): the server's order is \
                     not stable or the source changed during the read; the next run reads it again",
                    self.name, self.pages
                )));
            }
            let origin = Origin { path: format!("{}/{id}", self.location).into(), line: 0 };
            self.resources.push((origin, r));
        }
        Ok(())
    }

    /// Where the listing goes on after this page (`received` resources), or why it cannot.
    fn after(
        &mut self,
        page: &serde_json::Map<String, Json>,
        total: Option<u64>,
        received: u64,
        at: &str,
    ) -> Result<Next, SourceError> {
        let read = self.resources.len() as u64;
        Ok(match &self.next {
            Next::Index(start) => {
                let total = total.unwrap_or(0);
                if read >= total {
                    Next::Done
                } else if received == 0 {
                    return Err(incomplete(format!(
                        "{at} is empty but totalResults is {total} and only {read} were read: a short page; \
                         the next run reads it again"
                    )));
                } else {
                    // Servers may answer fewer than `count`: go on after what arrived.
                    Next::Index(start + received)
                }
            }
            Next::Cursor(_) => {
                match page.get("nextCursor").and_then(Json::as_str).filter(|c| !c.is_empty()) {
                    None => Next::Done,
                    Some(_) if received == 0 => {
                        return Err(incomplete(format!(
                            "{at} is empty but offers a nextCursor: a short page"
                        )));
                    }
                    Some(c) if !self.cursors.insert(c.to_owned()) => {
                        return Err(incomplete(format!(
                            "{at} offers a nextCursor it offered before: the paging would never end"
                        )));
                    }
                    Some(c) => Next::Cursor(c.to_owned()),
                }
            }
            Next::Done => Next::Done,
        })
    }

    /// The resources, once every page is read and their number is what the server promised.
    pub fn finish(self) -> Result<Vec<(Origin, Json)>, SourceError> {
        debug_assert_eq!(self.next, Next::Done, "finish after the last page");
        let read = self.resources.len() as u64;
        if let Some(total) = self.total {
            if read != total {
                return Err(incomplete(format!(
                    "{} says totalResults {total} but returned {read} resources over {} page(s): its paging \
                     cannot be trusted; the next run reads it again",
                    self.name, self.pages
                )));
            }
        }
        Ok(self.resources)
    }

    pub fn pages(&self) -> u32 {
        self.pages
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn users(ids: std::ops::Range<u32>) -> Vec<Json> {
        ids.map(|i| json!({"id": format!("u{i}"), "userName": format!("u{i}@x.com")})).collect()
    }

    fn page(total: u64, start: u64, items: Vec<Json>) -> Json {
        json!({"totalResults": total, "startIndex": start, "itemsPerPage": items.len(), "Resources": items})
    }

    /// Feeds `pages` and returns the error message, or the ids read.
    fn run(paging: Paging, pages: Vec<Json>) -> Result<Vec<String>, String> {
        let mut l = Listing::new("/Users", "https://s/v2/Users", paging, 2);
        let mut pages = pages.into_iter();
        while l.next_query().is_some() {
            let p = pages.next().expect("the listing asks for no more pages than given");
            l.accept(p).map_err(|e| e.to_string())?;
        }
        assert!(pages.next().is_none(), "pages left unread");
        let ids = l.finish().map_err(|e| e.to_string())?;
        Ok(ids.into_iter().map(|(_, r)| r["id"].as_str().unwrap().to_owned()).collect())
    }

    #[test]
    fn index_pages_are_read_to_total_results() {
        let ids = run(
            Paging::Index,
            vec![page(5, 1, users(0..2)), page(5, 3, users(2..4)), page(5, 5, users(4..5))],
        );
        assert_eq!(ids.unwrap(), ["u0", "u1", "u2", "u3", "u4"]);
        assert_eq!(run(Paging::Index, vec![page(0, 1, vec![])]).unwrap(), Vec::<String>::new());
        // A server that answers fewer than `count` is followed from where it stopped.
        let ids = run(Paging::Index, vec![page(3, 1, users(0..1)), page(3, 2, users(1..3))]).unwrap();
        assert_eq!(ids.len(), 3);
    }

    #[test]
    fn the_queries_follow_the_paging() {
        let mut l = Listing::new("/Users", "u", Paging::Index, 100);
        assert_eq!(l.next_query().unwrap(), [("startIndex", "1".into()), ("count", "100".into())]);
        l.accept(page(150, 1, users(0..100))).unwrap();
        assert_eq!(l.next_query().unwrap()[0], ("startIndex", "101".into()));
        let mut c = Listing::new("/Users", "u", Paging::Cursor, 100);
        assert_eq!(c.next_query().unwrap()[0], ("cursor", String::new()));
        c.accept(json!({"Resources": users(0..2), "nextCursor": "abc"})).unwrap();
        assert_eq!(c.next_query().unwrap()[0], ("cursor", "abc".into()));
        c.accept(json!({"Resources": users(2..3)})).unwrap();
        assert!(c.next_query().is_none());
        assert_eq!(c.finish().unwrap().len(), 3);
    }

    #[test]
    fn a_total_that_disagrees_with_the_resources_aborts() {
        let e =
            run(Paging::Index, vec![page(4, 1, users(0..2)), page(4, 3, users(2..3)), page(4, 4, vec![])]);
        assert!(e.unwrap_err().contains("page 3 (startIndex 4) is empty but totalResults is 4"));
        let e = run(Paging::Index, vec![page(3, 1, users(0..2)), page(3, 3, users(2..4))]);
        assert!(e.unwrap_err().contains("totalResults 3 but returned 4 resources"));
    }

    #[test]
    fn a_short_page_aborts() {
        let mut p = page(5, 1, users(0..1));
        p["itemsPerPage"] = json!(2);
        let e = run(Paging::Index, vec![p]).unwrap_err();
        assert!(e.contains("itemsPerPage 2 but holds 1 resources"), "{e}");
    }

    #[test]
    fn a_resource_seen_twice_aborts() {
        let e = run(Paging::Index, vec![page(4, 1, users(0..2)), page(4, 3, users(1..3))]).unwrap_err();
        assert!(e.contains("the resource u1 twice (pages 1 and 2)"), "{e}");
    }

    #[test]
    fn totals_that_move_during_the_read_abort() {
        let e = run(Paging::Index, vec![page(4, 1, users(0..2)), page(5, 3, users(2..4))]).unwrap_err();
        assert!(e.contains("moved from 4 to 5"), "{e}");
    }

    #[test]
    fn malformed_pages_abort() {
        for (p, want) in [
            (json!([]), "not a SCIM ListResponse"),
            (json!({"Resources": []}), "no totalResults"),
            (json!({"totalResults": -1}), "not a non-negative integer"),
            (json!({"totalResults": 1, "Resources": {}}), "Resources is not a list"),
            (json!({"totalResults": 1, "Resources": [{"userName": "x"}]}), "no id"),
            (
                json!({"totalResults": 1, "startIndex": 7, "Resources": users(0..1)}),
                "answered with startIndex 7",
            ),
        ] {
            let e = run(Paging::Index, vec![p]).unwrap_err();
            assert!(e.contains(want), "{e} lacks {want}");
        }
    }

    #[test]
    fn cursor_paging_checks_its_totals_and_cursors() {
        let c = |items, next: Option<&str>, total: Option<u64>| {
            let mut p = json!({ "Resources": items });
            if let Some(n) = next {
                p["nextCursor"] = json!(n);
            }
            if let Some(t) = total {
                p["totalResults"] = json!(t);
            }
            p
        };
        let ok = run(Paging::Cursor, vec![c(users(0..2), Some("a"), Some(3)), c(users(2..3), None, Some(3))]);
        assert_eq!(ok.unwrap().len(), 3);
        let e = run(Paging::Cursor, vec![c(users(0..2), Some("a"), Some(4)), c(users(2..3), None, Some(4))]);
        assert!(e.unwrap_err().contains("totalResults 4 but returned 3"));
        let e = run(Paging::Cursor, vec![c(users(0..2), Some("a"), None), c(users(2..4), Some("a"), None)]);
        assert!(e.unwrap_err().contains("offers a nextCursor it offered before"));
        let e = run(Paging::Cursor, vec![c(users(0..2), Some("a"), None), c(vec![], Some("b"), None)]);
        assert!(e.unwrap_err().contains("empty but offers a nextCursor"));
        let e = run(Paging::Cursor, vec![c(users(0..2), Some("a"), Some(3)), c(users(2..3), None, Some(2))]);
        assert!(e.unwrap_err().contains("moved from 3 to 2"));
    }
}
