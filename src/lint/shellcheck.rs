//! `--shellcheck`: runs ShellCheck over the elements' bash scripts and reports its findings
//! as diagnostics with their own `SCnnnn` codes.

use std::collections::HashMap;
use std::process::Command;

use serde::Deserialize;

use super::diagnostic::{Diagnostic, FileId, Severity};
use super::model::Workspace;
use super::rules;

#[derive(Deserialize)]
struct Output {
    comments: Vec<Comment>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Comment {
    file: String,
    line: usize,
    column: usize,
    end_line: usize,
    end_column: usize,
    level: String,
    code: u32,
    message: String,
}

/// Runs ShellCheck on every bash script and environment file.
///
/// # Errors
/// ShellCheck is not installed or its output cannot be read.
pub fn run(ws: &Workspace) -> Result<Vec<Diagnostic>, String> {
    let mut scripts: Vec<FileId> = Vec::new();
    let mut env_files: Vec<FileId> = Vec::new();
    for e in &ws.elements {
        for &id in &e.files {
            let f = ws.file(id);
            if rules::is_environment_file(f) && rules::is_text_file(f) {
                env_files.push(id);
            } else if rules::is_bash_script(f) {
                scripts.push(id);
            }
        }
    }
    let mut out = Vec::new();
    // environment.d files are sourced for their exports: "unused" variables are the point,
    // and they have no shebang.
    out.extend(batch(ws, &scripts, &[])?);
    out.extend(batch(
        ws,
        &env_files,
        &["--exclude=SC2034", "--exclude=SC2148"],
    )?);
    Ok(out)
}

fn batch(ws: &Workspace, ids: &[FileId], extra: &[&str]) -> Result<Vec<Diagnostic>, String> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let by_path: HashMap<String, FileId> = ids
        .iter()
        .map(|id| (ws.file(*id).path.display().to_string(), *id))
        .collect();
    let output = Command::new("shellcheck")
        .args([
            "--format=json1",
            "--shell=bash",
            "--severity=info",
            "--external-sources",
        ])
        .args(extra)
        .args(ids.iter().map(|id| ws.file(*id).path.as_os_str()))
        .output()
        .map_err(|e| {
            format!("cannot run shellcheck ({e}); install it (apt-get install shellcheck)")
        })?;
    let parsed: Output = serde_json::from_slice(&output.stdout).map_err(|e| {
        format!(
            "unexpected output ({e}): {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )
    })?;
    let mut out = Vec::new();
    for c in parsed.comments {
        let Some(&id) = by_path.get(&c.file) else {
            continue;
        };
        let f = ws.file(id);
        let start = f.line_span(c.line.max(1)).start + c.column.saturating_sub(1);
        let end = if c.end_line == c.line {
            f.line_span(c.line.max(1)).start + c.end_column.saturating_sub(1)
        } else {
            f.line_span(c.line.max(1)).end
        };
        out.push(Diagnostic {
            rule: &rules::shellcheck::RULE,
            code: Some(format!("SC{}", c.code)),
            severity: if c.level == "error" {
                Severity::Error
            } else {
                Severity::Warning
            },
            file: id,
            span: Some(start..end.max(start)),
            message: c.message,
            related: Vec::new(),
            help: Some(format!("see https://www.shellcheck.net/wiki/SC{}", c.code)),
            fix: None,
        });
    }
    Ok(out)
}
