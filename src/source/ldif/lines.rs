//! The lines of a window of the read buffer: physical lines found with `memchr`, unfolded into
//! logical lines. A logical line on one physical line (most of them) is borrowed from the window;
//! only a folded one is copied, into a reused buffer.

/// One logical line.
pub(super) struct Line<'l> {
    /// The number of its first physical line.
    pub(super) number: u64,
    /// Its text without line ends, continuation lines unfolded (their leading space dropped).
    pub(super) text: &'l [u8],
    /// Where `text` starts in the window, when it is one physical line as it lies there.
    pub(super) start: Option<usize>,
}

pub(super) enum Next<'l> {
    Line(Line<'l>),
    /// The input ends.
    End,
    /// The window ends inside the line (or before the byte telling whether the line is
    /// continued): read more and start again.
    More,
}

/// Walks the lines of a window that starts at the start of a line.
pub(super) struct Cursor<'w> {
    window: &'w [u8],
    /// The window holds the rest of the input.
    eof: bool,
    /// Where the next line starts.
    pub(super) at: usize,
    /// Physical lines passed in this window.
    pub(super) lines: u64,
    /// The number of the line before the window.
    before: u64,
}

impl<'w> Cursor<'w> {
    pub(super) fn new(window: &'w [u8], eof: bool, before: u64) -> Self {
        Cursor { window, eof, at: 0, lines: 0, before }
    }

    /// The number of the first line of the window.
    pub(super) fn first_number(&self) -> u64 {
        self.before + 1
    }

    /// The end of the text of the physical line starting at `at` (without `\n` or `\r\n`) and
    /// where the line after it starts; `None` when the window ends before the line does.
    #[inline(always)]
    fn physical(&self, at: usize) -> Option<(usize, usize)> {
        let rest = self.window.get(at..)?;
        match find_newline(rest) {
            Some(i) => {
                let newline = at + i;
                let end = if i > 0 && self.window[newline - 1] == b'\r' { newline - 1 } else { newline };
                Some((end, newline + 1))
            }
            None if self.eof => Some((self.window.len(), self.window.len())),
            None => None,
        }
    }

    /// The value of the line at the cursor when it is `name: value` written plainly on one line
    /// (not folded, not base64 nor a URL) and the window holds it and the byte after it: where
    /// the value is in the window (leading spaces skipped), and the cursor moves past the line.
    /// Otherwise `None`, and the cursor stays. The common line, found with one search.
    #[inline(always)]
    pub(super) fn plain_value(&mut self, name: &[u8], head: Option<&Head>) -> Option<(usize, usize)> {
        let start = self.at;
        let colon = start + name.len();
        let named = match (head, self.window.get(start..start + 16)) {
            (Some(head), Some(bytes)) => head.starts(bytes),
            _ => {
                let written = self.window.get(start..=colon)?;
                written[name.len()] == b':' && written.iter().zip(name).all(|(a, b)| a == b)
            }
        };
        if !named {
            return None;
        }
        let mut value = colon + 1;
        if matches!(self.window.get(value), Some(b':' | b'<')) {
            return None;
        }
        while self.window.get(value) == Some(&b' ') {
            value += 1;
        }
        let (end, next) = self.physical(value)?;
        match self.window.get(next) {
            Some(b' ') => return None,
            None if !self.eof => return None,
            _ => {}
        }
        self.at = next;
        self.lines += 1;
        Some((value, end))
    }

    /// What comes before the first colon of the line at the cursor, when that is in its first
    /// 64 bytes (it may hold anything, a line end included: the caller looks it up).
    #[inline]
    pub(super) fn description(&self) -> Option<&'w [u8]> {
        let line = self.window.get(self.at..)?;
        let colon = line.iter().take(64).position(|&b| b == b':')?;
        line.get(..colon)
    }

    /// The next logical line: a physical line and its continuation lines (lines starting with one
    /// space). A blank line, or a line that itself starts with a space, is never continued: the
    /// caller reports the stray continuation. Nothing is passed over when more is needed.
    pub(super) fn next<'l>(&mut self, unfolded: &'l mut Vec<u8>) -> Next<'l>
    where
        'w: 'l,
    {
        let start = self.at;
        if start >= self.window.len() {
            return if self.eof { Next::End } else { Next::More };
        }
        let Some((end, mut next)) = self.physical(start) else { return Next::More };
        let first = &self.window[start..end];
        let mut lines = 1;
        let mut folded = false;
        if !matches!(first.first(), None | Some(b' ')) {
            loop {
                match self.window.get(next) {
                    Some(b' ') => {}
                    Some(_) => break,
                    None if self.eof => break,
                    None => return Next::More,
                }
                let Some((end, after)) = self.physical(next) else { return Next::More };
                if !folded {
                    unfolded.clear();
                    unfolded.extend_from_slice(first);
                    folded = true;
                }
                // The line starts with its space, so its text is at least that byte long.
                unfolded.extend_from_slice(self.window.get(next + 1..end).unwrap_or_default());
                lines += 1;
                next = after;
            }
        }
        let number = self.before + self.lines + 1;
        self.at = next;
        self.lines += lines;
        Next::Line(if folded {
            Line { number, text: unfolded, start: None }
        } else {
            Line { number, text: first, start: Some(start) }
        })
    }
}

/// An attribute description and its colon as two words, to compare the start of a line with
/// in a few instructions instead of byte by byte.
pub(super) struct Head {
    pattern: [u64; 2],
    mask: [u64; 2],
}

impl Head {
    /// For a description of at most 15 bytes.
    pub(super) fn new(name: &[u8]) -> Option<Head> {
        let mut pattern = [0u8; 16];
        let mut mask = [0u8; 16];
        pattern.get_mut(..name.len() + 1)?.copy_from_slice(&[name, b":"].concat());
        mask[..name.len() + 1].fill(0xFF);
        let words = |b: [u8; 16]| [word(&b[..8]), word(&b[8..])];
        Some(Head { pattern: words(pattern), mask: words(mask) })
    }

    /// Whether the 16 `bytes` start with the description and its colon.
    #[inline(always)]
    fn starts(&self, bytes: &[u8]) -> bool {
        bytes.len() >= 16
            && word(&bytes[..8]) & self.mask[0] == self.pattern[0]
            && word(&bytes[8..16]) & self.mask[1] == self.pattern[1]
    }
}

/// The first eight bytes as a little-endian word.
#[inline(always)]
fn word(bytes: &[u8]) -> u64 {
    let mut eight = [0; 8];
    eight.copy_from_slice(&bytes[..8]);
    u64::from_le_bytes(eight)
}

/// The first `\n` in `bytes`. Lines are short (27 bytes on average in a directory export): the
/// first words are searched eight bytes at a time here, which costs less than setting up
/// `memchr`'s vector search, and `memchr` takes over for a long line.
#[inline(always)]
fn find_newline(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    const NEWLINES: u64 = ONES * b'\n' as u64;
    let mut at = 0;
    for eight in bytes.chunks_exact(8).take(8) {
        // A byte of `x` is zero where `bytes` holds a newline; the lowest byte flagged is the
        // first zero byte (a borrow can only flag bytes above a zero byte).
        let x = word(eight) ^ NEWLINES;
        let flagged = x.wrapping_sub(ONES) & !x & HIGH;
        if flagged != 0 {
            return Some(at + (flagged.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    let rest = bytes.get(at..)?;
    if rest.len() < 16 {
        return rest.iter().position(|&b| b == b'\n').map(|i| at + i);
    }
    memchr::memchr(b'\n', rest).map(|i| at + i)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The logical lines of `window` as `number:text`, then `End` or `More`.
    fn lines(window: &[u8], eof: bool) -> Vec<String> {
        let mut cursor = Cursor::new(window, eof, 10);
        let mut unfolded = Vec::new();
        let mut out = Vec::new();
        loop {
            match cursor.next(&mut unfolded) {
                Next::Line(line) => out.push(format!(
                    "{}:{}{}",
                    line.number,
                    String::from_utf8_lossy(line.text),
                    if line.start.is_some() { "" } else { " (unfolded)" }
                )),
                Next::End => out.push("End".into()),
                Next::More => out.push(format!("More at {}", cursor.at)),
            }
            if !matches!(out.last(), Some(last) if last.contains(':')) {
                return out;
            }
        }
    }

    #[test]
    fn lines_are_unfolded_and_numbered_by_their_first_line() {
        assert_eq!(
            lines(b"a: 1\r\nb: 2\n  3\r\n 4\n\n c\n\r\n", true),
            ["11:a: 1", "12:b: 2 34 (unfolded)", "15:", "16: c", "17:", "End"]
        );
        assert_eq!(lines(b"a: 1\n\r", true), ["11:a: 1", "12:\r", "End"]);
    }

    #[test]
    fn newlines_are_found_at_every_offset() {
        for len in 0..150 {
            let mut bytes: Vec<u8> = (0..len).map(|i| [b'x', 0x0b, 0x8a, 0x09, 0xff][i % 5]).collect();
            assert_eq!(find_newline(&bytes), None, "{len}");
            let mut alone = bytes.clone();
            for at in (0..len).rev() {
                // The newline alone, then with more newlines after it.
                alone[at] = b'\n';
                assert_eq!(find_newline(&alone), Some(at), "{len} {at}");
                alone[at] = bytes[at];
                bytes[at] = b'\n';
                assert_eq!(find_newline(&bytes), Some(at), "{len} {at}");
            }
        }
    }

    #[test]
    fn a_line_at_the_window_end_waits_for_the_byte_after_it() {
        assert_eq!(lines(b"a: 1\nb: 2\n", false), ["11:a: 1", "More at 5"]);
        assert_eq!(lines(b"a: 1\nb: 2\n", true), ["11:a: 1", "12:b: 2", "End"]);
        assert_eq!(lines(b"a: 1\n\n", false), ["11:a: 1", "12:", "More at 6"]);
        assert_eq!(lines(b"a: 1\n 2", false), ["More at 0"]);
        assert_eq!(lines(b"a: 1\n 2", true), ["11:a: 12 (unfolded)", "End"]);
    }
}
