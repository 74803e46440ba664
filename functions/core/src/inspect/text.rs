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
        self.lines += memchr::memchr_iter(b'\n', chunk).count() as u64;
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
        match simdutf8::basic::from_utf8(chunk).or_else(|_| std::str::from_utf8(chunk)) {
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

    /// 64 bytes at a time through bit masks: which bytes are white space, which continue a
    /// character; a word starts at a character that is not space after one that is. Only lead
    /// bytes that can begin a non-ASCII space (0xC2, 0xE1–0xE3: U+0085, U+00A0, U+1680,
    /// U+2000–U+205F, U+3000) look their character up. The tail (under 64 bytes) goes byte by byte.
    fn count(&mut self, s: &str) {
        let bytes = s.as_bytes();
        // Bytes of a multi-byte space character that spill into the next block.
        let mut spill = 0usize;
        let mut at = 0;
        while at + 64 <= bytes.len() {
            let (mut space, cont, mut lead) = masks(bytes[at..at + 64].try_into().unwrap());
            space |= (1u64 << spill) - 1;
            spill = 0;
            while lead != 0 {
                let i = lead.trailing_zeros() as usize;
                lead &= lead - 1;
                if let Some(c) = s[at + i..].chars().next().filter(|c| c.is_whitespace()) {
                    let end = i + c.len_utf8();
                    space |= (u64::MAX >> (64 - (end.min(64) - i))) << i;
                    spill = end.saturating_sub(64);
                }
            }
            let word = !space;
            let before = (word << 1) | u64::from(self.in_word);
            self.words += u64::from((word & !cont & !before).count_ones());
            self.chars += u64::from((!cont).count_ones());
            self.in_word = word >> 63 == 1;
            at += 64;
        }
        self.count_bytes(s, at, bytes.len());
    }

    /// The bytes `from..to` of `s`, one at a time (continuation bytes keep their lead's state).
    fn count_bytes(&mut self, s: &str, from: usize, to: usize) {
        let bytes = s.as_bytes();
        for i in from..to {
            let b = bytes[i];
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

/// Bit i set where `f(block[i])`: the flags are computed in a loop the compiler vectorises, then
/// packed eight at a time (a multiply gathers the low bit of each byte into the top byte).
#[inline(always)]
fn mask(block: &[u8; 64], f: impl Fn(u8) -> bool) -> u64 {
    let mut flags = [0u8; 64];
    for (flag, &b) in flags.iter_mut().zip(block) {
        *flag = u8::from(f(b));
    }
    let mut m = 0;
    for (j, word) in flags.chunks_exact(8).enumerate() {
        let w = u64::from_le_bytes(word.try_into().unwrap());
        m |= (w.wrapping_mul(0x0102_0408_1020_4080) >> 56) << (8 * j);
    }
    m
}

/// ASCII white space (what `char::is_whitespace` says of ASCII), continuation bytes, and lead
/// bytes that can begin a non-ASCII space.
#[inline(always)]
fn masks(block: &[u8; 64]) -> (u64, u64, u64) {
    (
        mask(block, |b| (b == b' ') | (b.wrapping_sub(9) < 5)),
        mask(block, |b| b & 0xc0 == 0x80),
        mask(block, |b| (b == 0xc2) | (b.wrapping_sub(0xe1) < 3)),
    )
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

    /// Today's definition, character by character: what the fast path must agree with.
    fn reference(text: &str) -> (u64, u64, u64) {
        let lines = text.matches('\n').count() as u64 + u64::from(!text.is_empty() && !text.ends_with('\n'));
        (lines, text.split_whitespace().count() as u64, text.chars().count() as u64)
    }

    #[test]
    fn counts_equal_the_character_by_character_definition() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        // ASCII prose, runs of every ASCII space, and Unicode letters and spaces mixed in.
        let pieces = [
            "word",
            " ",
            "\t",
            "\n",
            "\r\n",
            "\x0b",
            "\x0c",
            "  ",
            "é",
            "ünï",
            "\u{a0}",
            "\u{2003}",
            "\u{3000}",
            "\u{85}",
            "\u{2028}",
            "✓",
            "日本語",
            "🙂",
            "x",
            "a-b",
            "\u{1680}",
            "end.",
        ];
        for len in [0usize, 1, 63, 64, 65, 127, 128, 129, 1000, 10_000] {
            for _ in 0..20 {
                let mut text = String::new();
                while text.len() < len {
                    text.push_str(pieces[(next() % pieces.len() as u64) as usize]);
                    if next() % 3 == 0 {
                        text.push_str(&"lorem ipsum dolor ".repeat((next() % 8) as usize));
                    }
                }
                let m = stats(&[text.as_bytes()]);
                let (lines, words, chars) = reference(&text);
                assert_eq!(
                    (m["lines"].as_u64(), m["words"].as_u64(), m["chars"].as_u64()),
                    (Some(lines), Some(words), Some(chars)),
                    "{text:?}"
                );
                // And fed in odd pieces, as a stream arrives.
                let cuts: Vec<&[u8]> = text.as_bytes().chunks(1 + (next() % 97) as usize).collect();
                assert_eq!(stats(&cuts), m);
            }
        }
    }

    #[test]
    fn a_multi_byte_space_across_a_block_boundary_still_separates_words() {
        for space in ["\u{a0}", "\u{3000}", "\u{1680}", "\u{2029}"] {
            for offset in 58..70 {
                let text = format!("{}{space}{}", "a".repeat(offset), "é".repeat(40));
                let m = stats(&[text.as_bytes()]);
                assert_eq!(
                    (m["words"].as_u64(), m["chars"].as_u64()),
                    (Some(2), Some(offset as u64 + 41)),
                    "{space:?} at {offset}"
                );
            }
        }
    }

    #[test]
    fn a_mask_has_bit_i_set_exactly_where_byte_i_matches() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..200 {
            let mut block = [0u8; 64];
            for b in &mut block {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                *b = seed as u8;
            }
            let (space, cont, lead) = masks(&block);
            for (i, &b) in block.iter().enumerate() {
                let bit = |m: u64| m >> i & 1 == 1;
                assert_eq!(bit(space), b < 0x80 && (b as char).is_whitespace(), "{b:#x} at {i}");
                assert_eq!(bit(cont), (0x80..0xc0).contains(&b), "{b:#x} at {i}");
                assert_eq!(bit(lead), [0xc2, 0xe1, 0xe2, 0xe3].contains(&b), "{b:#x} at {i}");
            }
        }
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
