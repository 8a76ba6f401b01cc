//! Rule selection: `dibkit.toml`, tox.ini's `[dib-lint] ignore`, and command-line overrides.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::diagnostic::Severity;
use super::registry::{self, Rule};

/// The `[lint]` table of `dibkit.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LintTable {
    /// Only these rules (codes, slugs or dib-lint names; `ALL` for every rule).
    pub select: Option<Vec<String>>,
    #[serde(default)]
    pub ignore: Vec<String>,
    /// Rule → `error` | `warning`.
    #[serde(default)]
    pub severity: BTreeMap<String, String>,
    /// Path suffix → rules ignored in matching files.
    #[serde(default)]
    pub per_file_ignores: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default)]
    lint: LintTable,
}

/// An error reading configuration: exit status 2.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ConfigError {
    pub path: String,
    pub message: String,
}

/// The effective rule configuration.
#[derive(Debug, Default)]
pub struct Config {
    /// Where dibkit.toml was found.
    pub file: Option<PathBuf>,
    pub select: Option<Vec<&'static Rule>>,
    pub ignore: Vec<&'static Rule>,
    pub severity: HashMap<&'static str, Severity>,
    pub per_file_ignores: Vec<(String, Vec<&'static Rule>)>,
    /// Rule names that matched nothing: `(where, name)`.
    pub unknown: Vec<(String, String)>,
}

impl Config {
    /// Whether `rule` runs at all.
    #[must_use]
    pub fn enabled(&self, rule: &Rule) -> bool {
        let selected = self
            .select
            .as_ref()
            .is_none_or(|s| s.iter().any(|r| r.code == rule.code));
        selected && !self.ignore.iter().any(|r| r.code == rule.code)
    }

    /// The severity of `rule` after re-levelling.
    #[must_use]
    pub fn severity(&self, rule: &Rule) -> Severity {
        self.severity
            .get(rule.code)
            .copied()
            .unwrap_or(rule.severity)
    }

    /// Whether `rule` is ignored for the file at `path`.
    #[must_use]
    pub fn ignored_in(&self, rule: &Rule, path: &Path) -> bool {
        let p = path.to_string_lossy();
        self.per_file_ignores.iter().any(|(suffix, rules)| {
            p.ends_with(suffix.as_str()) && rules.iter().any(|r| r.code == rule.code)
        })
    }

    fn resolve(&mut self, names: &[String], origin: &str) -> Vec<&'static Rule> {
        let mut out = Vec::new();
        for n in names {
            if n == "ALL" {
                out.extend(registry::RULES.iter().copied());
            } else if let Some(r) = registry::find(n) {
                out.push(r);
            } else {
                self.unknown.push((origin.to_owned(), n.clone()));
            }
        }
        out
    }
}

/// Finds `dibkit.toml` in `start` or its ancestors.
#[must_use]
pub fn find_config(start: &Path) -> Option<PathBuf> {
    let start = std::fs::canonicalize(start).ok()?;
    start
        .ancestors()
        .map(|d| d.join("dibkit.toml"))
        .find(|p| p.is_file())
}

/// Loads configuration from `dibkit.toml` (if any), `tox.ini` in the current directory (as
/// dib-lint reads it) and command-line `--select`/`--ignore`.
///
/// # Errors
/// An unreadable or malformed dibkit.toml, or a bad severity value.
pub fn load(
    file: Option<&Path>,
    cli_select: &[String],
    cli_ignore: &[String],
) -> Result<Config, ConfigError> {
    let mut config = Config::default();
    if let Some(path) = file {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            path: shown.clone(),
            message: e.to_string(),
        })?;
        let parsed: ConfigFile = toml::from_str(&text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].lines().count().max(1));
            ConfigError {
                path: line.map_or(shown.clone(), |l| format!("{shown}:{l}")),
                message: e.message().to_owned(),
            }
        })?;
        config.file = Some(path.to_path_buf());
        let lint = parsed.lint;
        if let Some(select) = &lint.select {
            config.select = Some(config.resolve(select, &shown));
        }
        config.ignore = config.resolve(&lint.ignore, &shown);
        for (name, level) in &lint.severity {
            let level = match level.as_str() {
                "error" => Severity::Error,
                "warning" => Severity::Warning,
                other => {
                    return Err(ConfigError {
                        path: shown,
                        message: format!(
                            "severity of `{name}` is `{other}`: use `error` or `warning`"
                        ),
                    });
                }
            };
            for r in config.resolve(std::slice::from_ref(name), &shown) {
                config.severity.insert(r.code, level);
            }
        }
        for (suffix, names) in &lint.per_file_ignores {
            let rules = config.resolve(names, &shown);
            config.per_file_ignores.push((suffix.clone(), rules));
        }
    }
    if let Ok(text) = std::fs::read_to_string("tox.ini") {
        let names = tox_ignores(&text);
        // dib-lint silently ignores names it does not know; dibkit says so (DIB904).
        let rules = config.resolve(&names, "tox.ini");
        config.ignore.extend(rules);
    }
    if !cli_select.is_empty() {
        config.select = Some(config.resolve(cli_select, "--select"));
    }
    let ignore = config.resolve(cli_ignore, "--ignore");
    config.ignore.extend(ignore);
    Ok(config)
}

/// The names in tox.ini's `[dib-lint]` `ignore =` option (configparser syntax, continuation
/// lines included).
#[must_use]
pub fn tox_ignores(text: &str) -> Vec<String> {
    let mut in_section = false;
    let mut in_ignore = false;
    let mut out = Vec::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('[') {
            in_section = trimmed == "[dib-lint]";
            in_ignore = false;
            continue;
        }
        if !in_section || trimmed.starts_with(['#', ';']) {
            continue;
        }
        if line.starts_with([' ', '\t']) && in_ignore {
            out.extend(trimmed.split_whitespace().map(str::to_owned));
            continue;
        }
        in_ignore = false;
        if let Some((key, value)) = trimmed.split_once(['=', ':']) {
            if key.trim() == "ignore" {
                in_ignore = true;
                out.extend(value.split_whitespace().map(str::to_owned));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn tox() {
        let text = "[tox]\nignore = x\n[dib-lint]\nignore = sete setu\n    which\nother = 1\n";
        assert_eq!(super::tox_ignores(text), ["sete", "setu", "which"]);
    }
}
