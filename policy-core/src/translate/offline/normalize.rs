//! Unicode normalisation with a map back to the original text.
//!
//! Administrators type full-width letters and digits (ＴＰＭ, ０.８), half-width
//! katakana and ideographic spaces; NFKC folds them all to one form. The translator
//! works on the folded text but must cite spans of the *original*, so every byte of
//! the folded text remembers where its source character started and ended.

use std::ops::Range;

use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

/// NFKC-folded text with, for each of its bytes, the original byte range.
pub(crate) struct Normalized {
    pub text: String,
    origin: Vec<Range<usize>>,
}

impl Normalized {
    pub fn new(source: &str) -> Normalized {
        let mut text = String::with_capacity(source.len());
        let mut origin = Vec::with_capacity(source.len());
        let mut iter = source.char_indices().peekable();
        while let Some((start, c)) = iter.next() {
            // A base character plus its combining marks (ｶﾞ → ガ) folds as one unit.
            let mut end = start + c.len_utf8();
            while let Some(&(i, m)) = iter.peek() {
                if !is_combining_mark(m) && m != '\u{FF9E}' && m != '\u{FF9F}' {
                    break;
                }
                end = i + m.len_utf8();
                iter.next();
            }
            let unit = &source[start..end];
            for folded in unit.nfkc() {
                let folded = fold_extra(folded);
                let before = text.len();
                text.push(folded);
                origin.extend(std::iter::repeat_n(start..end, text.len() - before));
            }
        }
        Normalized { text, origin }
    }

    /// The original byte range covering folded bytes `r`.
    pub fn source_range(&self, r: Range<usize>) -> Range<usize> {
        if r.start >= r.end || r.end > self.origin.len() {
            return 0..0;
        }
        self.origin[r.start].start..self.origin[r.end - 1].end
    }
}

/// Folds characters NFKC leaves apart but administrators use interchangeably.
fn fold_extra(c: char) -> char {
    match c {
        '〜' | '～' | '∼' => '~',
        '，' | '､' => '、',
        '．' | '｡' => '。',
        '“' | '”' | '＂' => '"',
        '‘' | '’' => '\'',
        '（' => '(',
        '）' => ')',
        '\u{3000}' | '\t' | '\n' | '\r' => ' ',
        c => c,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_and_maps_back() {
        let src = "ＴＰＭが有効　で０.８";
        let n = Normalized::new(src);
        assert_eq!(n.text, "TPMが有効 で0.8");
        let i = n.text.find("0.8").unwrap();
        assert_eq!(&src[n.source_range(i..i + 3)], "０.８");
        let half = Normalized::new("ｶﾞ");
        assert_eq!(half.text, "ガ");
    }
}
