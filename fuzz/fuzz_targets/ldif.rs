//! The LDIF reader over arbitrary bytes: read to the end, once from one buffer and once through a
//! 1-byte `BufReader` (every line, fold and BOM split across buffer refills). Both must give the
//! same records and the same error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scimsync::source::ldif::{LdifReader, UrlPolicy};
use scimsync::source::Record;
use std::io::{BufRead, BufReader};

fn read_all(input: impl BufRead) -> Vec<Result<Record, String>> {
    let mut out = Vec::new();
    let mut reader = LdifReader::new(input, "fuzz.ldif", UrlPolicy::default());
    for item in reader.by_ref() {
        let failed = item.is_err();
        out.push(item.map_err(|e| e.to_string()));
        if failed {
            break;
        }
    }
    // After the end or an error the reader yields nothing more.
    assert!(reader.next().is_none(), "the reader yielded something after its end");
    out
}

fuzz_target!(|data: &[u8]| {
    let whole = read_all(data);
    let tiny = read_all(BufReader::with_capacity(1, data));
    assert_eq!(whole, tiny, "reading through a 1-byte buffer changed the result");
});
