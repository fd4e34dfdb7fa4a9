//! Source positions for config values. serde_yaml reports positions for
//! syntax and type errors only; semantic checks (an unknown upstream, a
//! duplicate name) need the position of a value by its path. This module walks
//! the YAML event stream once (yaml-rust2's marked events) and records where
//! each path such as `routes[2].upstream` starts. The walk is done the
//! first time a position is asked for: a config without problems (every
//! start, every reload that succeeds) never pays for it.

use std::collections::HashMap;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// Map from a dotted path (`upstreams.api.targets[0].address`) to its 1-based
/// line and column, made from the text when first asked.
#[derive(Debug, Default)]
pub(crate) struct Positions {
    text: String,
    map: once_cell::sync::OnceCell<HashMap<String, (usize, usize)>>,
}

impl Positions {
    /// The positions of `text`, indexed when first asked; a document that
    /// does not parse yields an empty index (serde_yaml reports the syntax
    /// error with its own position).
    pub(crate) fn index(text: &str) -> Self {
        Positions {
            text: text.to_string(),
            map: once_cell::sync::OnceCell::new(),
        }
    }

    fn map(&self) -> &HashMap<String, (usize, usize)> {
        self.map.get_or_init(|| {
            let mut rx = Walker::default();
            let mut parser = Parser::new_from_str(&self.text);
            match parser.load(&mut rx, false) {
                Ok(()) => rx.map,
                Err(_) => HashMap::new(),
            }
        })
    }

    /// Whether the file writes `path` itself (not only a parent of it).
    pub(crate) fn contains(&self, path: &str) -> bool {
        self.map().contains_key(path)
    }

    /// Position of `path`, or of its closest indexed parent.
    pub(crate) fn find(&self, path: &str) -> Option<(usize, usize)> {
        let map = self.map();
        let mut p = path;
        loop {
            if let Some(pos) = map.get(p) {
                return Some(*pos);
            }
            let cut = p.rfind(['.', '['])?;
            p = &p[..cut];
        }
    }
}

enum Frame {
    Map {
        path: String,
        key: Option<String>,
        placed: bool,
    },
    Seq {
        path: String,
        index: usize,
    },
}

#[derive(Default)]
struct Walker {
    stack: Vec<Frame>,
    map: HashMap<String, (usize, usize)>,
}

impl Walker {
    /// The path of the value that the next event starts, or None when the
    /// next scalar is a mapping key.
    fn next_value_path(&mut self) -> Option<String> {
        match self.stack.last_mut() {
            None => Some(String::new()),
            Some(Frame::Map { path, key, .. }) => key.take().map(|k| join(path, &k)),
            Some(Frame::Seq { path, index }) => {
                let p = format!("{path}[{index}]");
                *index += 1;
                Some(p)
            }
        }
    }
}

fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

impl MarkedEventReceiver for Walker {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let pos = (mark.line(), mark.col() + 1);
        match ev {
            Event::Scalar(value, ..) => match self.next_value_path() {
                Some(path) => {
                    self.map.insert(path, pos);
                }
                None => {
                    if let Some(Frame::Map { path, key, placed }) = self.stack.last_mut() {
                        // A block mapping's start event sits after its first key:
                        // the first key's position is where the mapping starts.
                        if !*placed {
                            self.map.entry(path.clone()).or_insert(pos);
                            *placed = true;
                        }
                        // Point at the key until the value is seen.
                        self.map.entry(join(path, &value)).or_insert(pos);
                        *key = Some(value);
                    }
                }
            },
            Event::MappingStart(..) => {
                // No position here: the event sits after the first key; the
                // first key (or the mapping's own key) places the mapping.
                let path = self.next_value_path().unwrap_or_default();
                self.stack.push(Frame::Map {
                    path,
                    key: None,
                    placed: false,
                });
            }
            Event::SequenceStart(..) => {
                let path = self.next_value_path().unwrap_or_default();
                self.map.entry(path.clone()).or_insert(pos);
                self.stack.push(Frame::Seq { path, index: 0 });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            Event::Alias(_) => {
                self.next_value_path();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_nested_paths() {
        let text = "server:\n  threads: 2\nroutes:\n  - name: a\n    upstream: x\n  - name: b\n    upstream: y\n";
        let p = Positions::index(text);
        assert_eq!(p.find("server.threads"), Some((2, 12)));
        assert_eq!(p.find("routes[1].upstream"), Some((7, 15)));
        assert_eq!(p.find("routes[1].nothing"), Some((6, 5)));
    }
}
