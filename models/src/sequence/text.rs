//! Text as characters for a character-level language model: the vocabulary, the held-out
//! tail, and windows of parallel streams whose state carries from one window to the next.

use crate::data::DataError;
use crate::dataset::Dataset;
use simdnn_layers::{Inputs, LayerError};
use std::collections::HashMap;
use std::path::Path;

/// The input ids and the target ids (the next character) of a batch: `[T, B]` each.
pub const IDS: &str = "ids";
pub const TARGETS: &str = "targets";

/// The distinct characters of a text, sorted by code point; a character's id is its rank.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vocabulary {
    chars: Vec<char>,
    ids: HashMap<char, i64>,
}

impl Vocabulary {
    pub fn of(text: &str) -> Vocabulary {
        let mut chars: Vec<char> = text.chars().collect();
        chars.sort_unstable();
        chars.dedup();
        Vocabulary::from_chars(chars)
    }

    fn from_chars(chars: Vec<char>) -> Vocabulary {
        let ids = chars.iter().enumerate().map(|(i, &c)| (c, i as i64)).collect();
        Vocabulary { chars, ids }
    }

    /// The vocabulary a checkpoint recorded ([`Vocabulary::as_string`]).
    pub fn parse(recorded: &str) -> Result<Vocabulary, String> {
        let chars: Vec<char> = recorded.chars().collect();
        if chars.is_empty() || chars.windows(2).any(|w| w[0] >= w[1]) {
            return Err("not a sorted list of distinct characters".into());
        }
        Ok(Vocabulary::from_chars(chars))
    }

    /// The characters in order, as one string (checkpoint metadata).
    pub fn as_string(&self) -> String {
        self.chars.iter().collect()
    }

    pub fn len(&self) -> usize {
        self.chars.len()
    }

    pub fn is_empty(&self) -> bool {
        self.chars.is_empty()
    }

    pub fn id(&self, c: char) -> Option<i64> {
        self.ids.get(&c).copied()
    }

    /// The character of id `id` (`None` out of range).
    pub fn char(&self, id: usize) -> Option<char> {
        self.chars.get(id).copied()
    }

    /// The ids of `text`; an error naming the first character the vocabulary lacks.
    pub fn encode(&self, text: &str) -> Result<Vec<i64>, String> {
        text.chars()
            .map(|c| self.id(c).ok_or_else(|| format!("the character {c:?} is not in the model's vocabulary")))
            .collect()
    }
}

/// A text file as a string: a clear error for a file that cannot be read or is not UTF-8.
pub fn read_text(path: &Path) -> Result<String, DataError> {
    let bytes = std::fs::read(path).map_err(|source| DataError::Io { path: path.into(), source })?;
    String::from_utf8(bytes).map_err(|e| DataError::Invalid {
        what: path.display().to_string(),
        reason: format!("not UTF-8 text (invalid byte at offset {})", e.utf8_error().valid_up_to()),
    })
}

/// Where the held-out tail starts: the last `tail` fraction of the characters.
pub fn split_point(chars: usize, tail: f64) -> usize {
    chars - (chars as f64 * tail).round() as usize
}

/// A text cut into `streams` contiguous streams of equal length, read in windows of
/// `window` characters: example `w * streams + s` is window `w` of stream `s`, its inputs the
/// window's characters and its targets the characters one further (char-rnn's layout, so
/// that a batch of all streams' window `w` continues the batch of window `w - 1`).
pub struct TextStreams {
    ids: Vec<i64>,
    streams: usize,
    window: usize,
    stream_len: usize,
    windows: usize,
    /// The characters of the last window (`window`, or fewer for a partial last one).
    last_window: usize,
}

impl TextStreams {
    /// Windows of `ids`; with `keep_partial`, a shorter last window takes the characters that
    /// do not fill a whole one (for evaluation over every character).
    pub fn new(ids: Vec<i64>, streams: usize, window: usize, keep_partial: bool) -> Result<TextStreams, DataError> {
        let stream_len = ids.len() / streams.max(1);
        let whole = stream_len.saturating_sub(1) / window.max(1);
        let rest = stream_len.saturating_sub(1) - whole * window.max(1);
        let (windows, last_window) = if keep_partial && rest > 0 { (whole + 1, rest) } else { (whole, window) };
        if streams == 0 || window == 0 || windows == 0 {
            return Err(DataError::Invalid {
                what: "text".into(),
                reason: format!(
                    "{} characters do not make one window of {window} + 1 in each of {streams} streams",
                    ids.len()
                ),
            });
        }
        Ok(TextStreams { ids, streams, window, stream_len, windows, last_window })
    }

    pub fn streams(&self) -> usize {
        self.streams
    }

    /// The characters predicted over the whole set (every window's targets).
    pub fn predicted(&self) -> usize {
        self.streams * ((self.windows - 1) * self.window + self.last_window)
    }

    fn window_len(&self, w: usize) -> usize {
        if w + 1 == self.windows {
            self.last_window
        } else {
            self.window
        }
    }
}

impl Dataset for TextStreams {
    fn len(&self) -> usize {
        self.windows * self.streams
    }

    /// `ids` and `targets`, `[T, B]`: every example of a batch must have the same window
    /// length (a batch of one window index does).
    fn fill(&self, indices: &[usize], inputs: &mut Inputs) -> Result<(), LayerError> {
        let first = indices.first().map_or(0, |&i| i / self.streams);
        let t_len = self.window_len(first);
        if let Some(&bad) = indices.iter().find(|&&i| i >= self.len() || self.window_len(i / self.streams) != t_len) {
            return Err(LayerError::BadIndices {
                what: "text windows",
                problem: format!("example {bad} is not a window of {t_len} characters of this set"),
            });
        }
        let b = indices.len();
        for (name, shift) in [(IDS, 0), (TARGETS, 1)] {
            let t = inputs.int_mut(name);
            t.resize(&[t_len, b]);
            let data = t.data_mut();
            for (col, &i) in indices.iter().enumerate() {
                let (w, s) = (i / self.streams, i % self.streams);
                let start = s * self.stream_len + w * self.window + shift;
                for (row, &id) in self.ids[start..start + t_len].iter().enumerate() {
                    data[row * b + col] = id;
                }
            }
        }
        Ok(())
    }

    fn stream_position(&self, i: usize) -> Option<(usize, usize)> {
        Some((i % self.streams, i / self.streams))
    }

    fn is_stream(&self) -> bool {
        true
    }
}
