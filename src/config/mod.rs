//! Configuration: YAML text -> [`Config`] (serde, strict) -> validated.
//! Every problem is reported as `file:line:col: path: message`, like `nginx -t`,
//! so `portico check` and a refused start or reload point at the exact spot.

pub(crate) mod ai;
mod call_log;
mod console;
mod consumer;
mod locate;
mod mcp;
pub(crate) mod policy;
mod retire;
mod schema;
pub mod sealed;
mod secret;
pub(crate) mod secret_slots;
mod sections;
mod service;
pub mod units;
mod validate;

pub(crate) use call_log::*;
pub(crate) use console::*;
pub(crate) use consumer::*;
pub(crate) use locate::Positions;
pub(crate) use mcp::McpRouteConfig;
pub(crate) use policy::*;
pub(crate) use retire::{RetireConfig, RetireHeaders};
pub(crate) use schema::*;
pub(crate) use secret::{Secret, SecretRef};
pub(crate) use service::*;
pub(crate) use units::{ConfDuration, ConfSize};

use std::fmt;
use std::path::{Path, PathBuf};

/// One problem in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigIssue {
    /// The config file's name.
    pub file: String,
    /// 1-based line of the offending value.
    pub line: usize,
    /// 1-based column of the offending value.
    pub col: usize,
    /// Dotted path of the offending value, e.g. `routes[2].upstream`.
    pub path: String,
    /// What is wrong, for a person.
    pub message: String,
}

impl fmt::Display for ConfigIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.message)
        } else if self.path.is_empty() {
            write!(f, "{}:{}:{}: {}", self.file, self.line, self.col, self.message)
        } else {
            write!(
                f,
                "{}:{}:{}: {}: {}",
                self.file, self.line, self.col, self.path, self.message
            )
        }
    }
}

/// All problems found in one config file.
#[derive(Debug, Clone, thiserror::Error)]
pub struct ConfigError {
    /// Every problem, in the order found.
    pub issues: Vec<ConfigIssue>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, issue) in self.issues.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{issue}")?;
        }
        Ok(())
    }
}

/// Collects issues against a file's positions; used by validation and by the
/// snapshot compiler so both report in the same form.
pub struct Issues<'a> {
    file: &'a str,
    positions: &'a Positions,
    list: Vec<ConfigIssue>,
}

impl<'a> Issues<'a> {
    /// An empty collector for `file`, locating paths with `positions`.
    pub(crate) fn new(file: &'a str, positions: &'a Positions) -> Self {
        Issues {
            file,
            positions,
            list: Vec::new(),
        }
    }

    /// Records `message` about the value at `path` (`routes[2].upstream`).
    pub(crate) fn add(&mut self, path: impl Into<String>, message: impl Into<String>) {
        let path = path.into();
        let (line, col) = self.positions.find(&path).unwrap_or((1, 1));
        self.list.push(ConfigIssue {
            file: self.file.to_string(),
            line,
            col,
            path,
            message: message.into(),
        });
    }

    /// Adds issues found elsewhere (validation, before compiling).
    pub(crate) fn extend(&mut self, more: Vec<ConfigIssue>) {
        self.list.extend(more);
    }

    /// Every issue collected, as one error; `Ok` when there were none.
    pub(crate) fn finish(self) -> Result<(), ConfigError> {
        if self.list.is_empty() {
            Ok(())
        } else {
            Err(ConfigError { issues: self.list })
        }
    }
}

/// A parsed and validated config, with what is needed to report further
/// problems (found while compiling it) at their source position.
#[derive(Debug)]
pub struct LoadedConfig {
    pub(crate) config: Config,
    /// The file's name as given, for messages.
    pub file: String,
    /// The file's path; relative paths in the config are relative to its folder.
    pub path: PathBuf,
    pub(crate) positions: Positions,
}

impl LoadedConfig {
    /// A collector for problems found after loading, located in this file.
    pub(crate) fn issues(&self) -> Issues<'_> {
        Issues::new(&self.file, &self.positions)
    }

    /// `server.pid_file`: where `reload` and `upgrade` find the running process.
    pub fn pid_file(&self) -> &str {
        &self.config.server.pid_file
    }

    /// Whether the file writes the top-level section `key` itself.
    pub(crate) fn declares(&self, key: &str) -> bool {
        self.positions.contains(key)
    }

    /// A file named in the config: relative paths are relative to the
    /// config file's folder.
    pub fn file_path(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            return p.to_path_buf();
        }
        match self.path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.join(p),
            _ => p.to_path_buf(),
        }
    }
}

/// Reads, parses and validates the config at `path`.
pub fn load(path: &Path) -> Result<LoadedConfig, ConfigError> {
    accept(load_lenient(path)?)
}

/// Reads and parses the config at `path`; the validation problems are
/// returned beside it, so compiling can add its own and all are reported.
pub(crate) fn load_lenient(path: &Path) -> Result<(LoadedConfig, Vec<ConfigIssue>), ConfigError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        issues: vec![ConfigIssue {
            file: file.clone(),
            line: 0,
            col: 0,
            path: String::new(),
            message: match e.kind() {
                std::io::ErrorKind::NotFound => "no such file".to_string(),
                _ => format!("cannot read config: {e}"),
            },
        }],
    })?;
    let (mut loaded, problems) = parse_lenient(&text, &file)?;
    loaded.path = path.to_path_buf();
    Ok((loaded, problems))
}

/// Parses config `text` read for the file at `path` (store mode assembles
/// it from the file and the store); problems are returned beside it.
pub(crate) fn parse_lenient_at(text: &str, path: &Path) -> Result<(LoadedConfig, Vec<ConfigIssue>), ConfigError> {
    let (mut loaded, problems) = parse_lenient(text, &path.display().to_string())?;
    loaded.path = path.to_path_buf();
    Ok((loaded, problems))
}

/// Parses a config already in memory as JSON (store mode's admin writes:
/// no YAML text is made or read), validated; problems carry their path but
/// no line. None when it does not deserialize: the caller then parses its
/// YAML text for every parse error, located.
pub(crate) fn parse_value_at(doc: serde_json::Value, path: &Path) -> Option<(LoadedConfig, Vec<ConfigIssue>)> {
    let config: Config = serde_json::from_value(doc).ok()?;
    let loaded = LoadedConfig {
        config,
        file: path.display().to_string(),
        path: path.to_path_buf(),
        positions: Positions::default(),
    };
    let mut issues = loaded.issues();
    validate::validate(&loaded.config, &mut issues);
    let problems = issues.finish().err().map(|e| e.issues).unwrap_or_default();
    Some((loaded, problems))
}

/// Parses and validates config text; `file` names it in messages.
pub fn parse_str(text: &str, file: &str) -> Result<LoadedConfig, ConfigError> {
    accept(parse_lenient(text, file)?)
}

/// The config when validation found nothing.
fn accept((loaded, issues): (LoadedConfig, Vec<ConfigIssue>)) -> Result<LoadedConfig, ConfigError> {
    if issues.is_empty() {
        Ok(loaded)
    } else {
        Err(ConfigError { issues })
    }
}

/// Parses config text; a parse error fails with every parse error found,
/// and validation problems are returned beside the parsed config.
fn parse_lenient(text: &str, file: &str) -> Result<(LoadedConfig, Vec<ConfigIssue>), ConfigError> {
    // A file truncated to nothing (a half-written save, `: > file`) would
    // otherwise be a gateway with no routes: refuse it.
    let blank = text.lines().all(|l| {
        let l = l.trim();
        l.is_empty() || l.starts_with('#')
    });
    if blank {
        return Err(ConfigError {
            issues: vec![ConfigIssue {
                file: file.to_string(),
                line: 1,
                col: 1,
                path: String::new(),
                message: "the file is empty".into(),
            }],
        });
    }
    let positions = Positions::index(text);
    let config: Config = serde_yaml::from_str(text).map_err(|e| {
        let first = serde_issue(&e, file);
        let mut issues = sections::other_errors(text, file, &positions, first.line);
        issues.insert(0, first);
        ConfigError { issues }
    })?;
    let loaded = LoadedConfig {
        config,
        file: file.to_string(),
        path: PathBuf::from(file),
        positions,
    };
    let mut issues = loaded.issues();
    validate::validate(&loaded.config, &mut issues);
    let problems = issues.finish().err().map(|e| e.issues).unwrap_or_default();
    Ok((loaded, problems))
}

/// serde_yaml's message reads `path: what at line L column C`; split it into our form.
fn serde_issue(e: &serde_yaml::Error, file: &str) -> ConfigIssue {
    let (line, col) = e.location().map_or((1, 1), |l| (l.line(), l.column()));
    let msg = strip_locations(&e.to_string());
    let (path, message) = match msg.split_once(": ") {
        Some((p, m)) if !p.contains(' ') => (p.to_string(), m.to_string()),
        _ => (String::new(), msg),
    };
    ConfigIssue {
        file: file.to_string(),
        line,
        col,
        path,
        message,
    }
}

/// Removes every ` at line L column C` from a serde_yaml message (the position
/// is reported once, in front).
fn strip_locations(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len());
    let mut rest = msg;
    while let Some(i) = rest.find(" at line ") {
        out.push_str(&rest[..i]);
        let tail = &rest[i + " at line ".len()..];
        let tail = tail.trim_start_matches(|c: char| c.is_ascii_digit());
        let tail = tail.strip_prefix(" column ").unwrap_or(tail);
        rest = tail.trim_start_matches(|c: char| c.is_ascii_digit());
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_positions() {
        assert_eq!(
            strip_locations("did not find expected '-' indicator at line 8 column 4, while parsing"),
            "did not find expected '-' indicator, while parsing"
        );
        assert_eq!(
            strip_locations("x: unknown field `a` at line 3 column 5"),
            "x: unknown field `a`"
        );
    }
}
