//! The arguments every command that resolves elements shares: where elements are found and
//! how disk-image-create forms the request.

use std::path::PathBuf;

use super::Failure;
use super::order::resolve_failure;
use crate::deps::expand;
use crate::element::discover::{self, Builtins, Library};
use crate::order::plan::Plan;
use crate::order::simulate;
use crate::order::tree::NameFilter;

#[derive(Debug, Clone, clap::Args)]
pub struct RequestArgs {
    /// Colon-separated element directories, first wins (overrides $ELEMENTS_PATH).
    #[arg(long, value_name = "PATH")]
    pub elements_path: Option<String>,

    /// Built-in library appended after the path: `embedded` (default), `none`, or a directory
    /// used in its place (e.g. an installed upstream dib's elements directory).
    #[arg(long, value_name = "embedded|none|DIR", default_value = "embedded")]
    pub builtins: String,

    /// Do not add the `base` element (disk-image-create -n).
    #[arg(short = 'n', long)]
    pub skip_base: bool,

    /// Target architecture; the `vm` rule adds block-device-efi for arm64/aarch64
    /// [default: $ARCH, else the host's, in Debian's spelling].
    #[arg(short = 'a', long, value_name = "ARCH")]
    pub arch: Option<String>,
}

/// The host architecture in Debian's (and dib's) spelling.
#[must_use]
pub fn host_arch() -> String {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "i386",
        "powerpc64" => "ppc64el",
        other => other,
    }
    .to_owned()
}

impl RequestArgs {
    /// `-a`, else `$ARCH`, else the host's.
    #[must_use]
    pub fn arch(&self) -> String {
        self.arch
            .clone()
            .or_else(|| std::env::var("ARCH").ok().filter(|a| !a.is_empty()))
            .unwrap_or_else(host_arch)
    }

    /// The `ELEMENTS_PATH` entries: `--elements-path`, else the variable.
    #[must_use]
    pub fn entries(&self) -> Vec<String> {
        let from_env = std::env::var("ELEMENTS_PATH").ok();
        discover::split_path(self.elements_path.as_deref().or(from_env.as_deref()))
    }

    #[must_use]
    pub fn builtins(&self) -> Builtins {
        match self.builtins.as_str() {
            "embedded" => Builtins::Embedded,
            "none" => Builtins::None,
            dir => Builtins::Dir(PathBuf::from(dir)),
        }
    }

    /// Discovers the library and returns it with the path entries.
    pub fn library(&self) -> Result<(Library, Vec<String>), Failure> {
        let entries = self.entries();
        let builtins = self.builtins();
        let lib = discover::discover(&entries, &builtins).map_err(|e| {
            let hint = e.hint().to_owned();
            let message = match (&e, &builtins) {
                (discover::Error::NotADirectory { entry }, Builtins::Dir(d))
                    if std::path::Path::new(entry) == d =>
                {
                    format!("--builtins '{entry}' is not a directory")
                }
                _ => e.to_string(),
            };
            Failure::usage(message, Some(hint))
        })?;
        Ok((lib, entries))
    }

    /// Resolves `elements` to the plan, failing as `dibkit order` does.
    pub fn plan(&self, elements: &[String]) -> Result<(Library, Vec<String>, Plan), Failure> {
        let (mut lib, entries) = self.library()?;
        let request = expand::form_request(elements, self.skip_base, &self.arch());
        let outcome = expand::expand(&request, &mut lib).map_err(io)?;
        if let Err(e) = &outcome.result {
            return Err(resolve_failure(e, &mut lib));
        }
        let plan = simulate::plan_with(&lib, &outcome, &run_parts_filter()?).map_err(io)?;
        Ok((lib, entries, plan))
    }
}

/// dib-run-parts' name filter from `RUN_PARTS_REGEX`, as `order` and `build` both read it.
///
/// # Errors
/// The expression does not compile (a usage error).
pub fn run_parts_filter() -> Result<NameFilter, Failure> {
    let regex = std::env::var("RUN_PARTS_REGEX").ok();
    NameFilter::new(regex.as_deref()).map_err(|e| {
        // The message's last line says why (regex-lite's is one line; a regex crate's
        // would draw a caret under the expression first).
        let text = e.to_string();
        let why = text
            .lines()
            .last()
            .unwrap_or_default()
            .trim_start_matches("error: ");
        Failure::usage(
            format!(
                "RUN_PARTS_REGEX `{}` is not a valid regular expression: {why}",
                regex.as_deref().unwrap_or_default()
            ),
            Some(
                "dib-run-parts matches hook names with `grep -E`; unset it for the default \
                 ^[0-9A-Za-z_-]+$"
                    .to_owned(),
            ),
        )
    })
}

/// A discovery error as a usage failure (exit status 2); shaped for `map_err`.
#[must_use]
#[allow(clippy::needless_pass_by_value)]
pub fn io(e: discover::Error) -> Failure {
    Failure::usage(e.to_string(), Some(e.hint().to_owned()))
}
