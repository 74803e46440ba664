//! Text statistics, fed chunk by chunk: UTF-8 validity, lines, words, characters.

use serde_json::{Map, Value, json};

/// The ASCII characters `char::is_whitespace` accepts.
static ASCII_SPACE: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 128 {
        t[i] = (i as u8 as char).is_ascii_whitespace() || i == 0x0b;
        i += 1;
    }
    t
};

/// UTF-8 validity and line, word and character counts, fed chunk by chunk.
#[derive(Debug)]
pub struct TextStats {
    valid: bool,
    /// Bytes of a character split across chunks.
    carry: Vec<u8>,
    lines: u64,
    words: u64,
    chars: u64,
    in_word: bool,
    last: Option<u8>,
}

impl Default for TextStats {
    fn default() -> Self {
        Self { valid: true, carry: Vec::new(), lines: 0, words: 0, chars: 0, in_word: false, last: None }
    }
}

impl TextStats {
    /// Valid UTF-8 so far.
    pub fn is_valid(&self) -> bool {
        self.valid
    }

    pub fn feed(&mut self, mut chunk: &[u8]) {
        if chunk.is_empty() {
            return;
        }
        self.lines += chunk.iter().filter(|&&b| b == b'\n').count() as u64;
        self.last = chunk.last().copied();
        if !self.valid {
            return;
        }
        // Complete a character split by the previous chunk.
        while !self.carry.is_empty() && !chunk.is_empty() {
            self.carry.push(chunk[0]);
            chunk = &chunk[1..];
            match std::str::from_utf8(&self.carry) {
                Ok(s) => {
                    let s = s.to_owned();
                    self.count(&s);
                    self.carry.clear();
                }
                Err(e) if e.error_len().is_some() || self.carry.len() >= 4 => {
                    self.valid = false;
                    return;
                }
                Err(_) => {}
            }
        }
        match std::str::from_utf8(chunk) {
            Ok(s) => self.count(s),
            Err(e) => {
                let (ok, rest) = chunk.split_at(e.valid_up_to());
                self.count(std::str::from_utf8(ok).unwrap_or_default());
                if e.error_len().is_some() {
                    self.valid = false;
                } else {
                    self.carry.extend_from_slice(rest);
                }
            }
        }
    }

    /// Byte-wise and branch-light: a `char` walk with `is_whitespace` on every character
    /// ran at a fifth of the hashing speed. Only non-ASCII lead bytes take the slow path.
    fn count(&mut self, s: &str) {
        for (i, &b) in s.as_bytes().iter().enumerate() {
            let space = if b >= 0xc0 {
                s[i..].chars().next().is_some_and(char::is_whitespace)
            } else {
                ASCII_SPACE[b as usize]
            };
            // Continuation bytes belong to the character their lead byte started.
            let starts_char = b & 0xc0 != 0x80;
            let in_word = if starts_char { !space } else { self.in_word };
            self.chars += u64::from(starts_char);
            self.words += u64::from(in_word && !self.in_word);
            self.in_word = in_word;
        }
    }

    pub fn finish(self) -> Map<String, Value> {
        let valid = self.valid && self.carry.is_empty();
        // A last line without a newline still counts.
        let lines = self.lines + u64::from(self.last.is_some_and(|b| b != b'\n'));
        let mut m = Map::new();
        m.insert("utf8".into(), json!(valid));
        m.insert("lines".into(), json!(lines));
        if valid {
            m.insert("words".into(), json!(self.words));
            m.insert("chars".into(), json!(self.chars));
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(chunks: &[&[u8]]) -> Map<String, Value> {
        let mut t = TextStats::default();
        for c in chunks {
            t.feed(c);
        }
        t.finish()
    }

    #[test]
    fn text_counts_do_not_depend_on_chunk_boundaries() {
        let text = "héllo wörld\nsecond line — ünïcode ✓\nlast\u{a0}word\u{2003}em\u{3000}ideographic";
        let whole = stats(&[text.as_bytes()]);
        assert_eq!(whole["utf8"], true);
        assert_eq!(whole["lines"], 3);
        // Unicode spaces (no-break, em, ideographic) separate words too.
        assert_eq!(whole["words"], 11);
        assert_eq!(whole["chars"], text.chars().count());
        let bytes = text.as_bytes();
        for cut in 1..bytes.len() {
            assert_eq!(stats(&[&bytes[..cut], &bytes[cut..]]), whole, "cut at {cut}");
        }
        let singles: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(stats(&singles), whole);
    }

    #[test]
    fn the_ascii_table_agrees_with_is_whitespace() {
        for b in 0u8..128 {
            assert_eq!(ASCII_SPACE[b as usize], (b as char).is_whitespace(), "{b:#x}");
        }
    }

    #[test]
    fn invalid_utf8_is_reported_wherever_it_is() {
        assert_eq!(stats(&[b"ok\n", b"\xff\n"])["utf8"], false);
        assert_eq!(stats(&[b"ends mid char \xc3"])["utf8"], false);
        assert_eq!(stats(&[b"\xc3", b"("])["utf8"], false);
        let m = stats(&[b"a\n\xfe\nb\n"]);
        assert_eq!((m["lines"].as_u64(), m.get("words")), (Some(3), None));
    }
}
