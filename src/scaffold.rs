//! `dibkit new`: renders an element skeleton from the templates in `templates/element/`
//! (embedded; a user templates folder overrides them file by file). Pure: returns the files,
//! the CLI writes them.

use std::collections::BTreeMap;
use std::path::Path;

use crate::element::model::{PHASES, Phase};

/// Template files, by name. Each may be overridden by a file of the same name in a user
/// templates folder.
pub const TEMPLATES: &[(&str, &str)] = &[
    (
        "README.rst",
        include_str!("../templates/element/README.rst"),
    ),
    (
        "phase-script",
        include_str!("../templates/element/phase-script"),
    ),
    (
        "environment.bash",
        include_str!("../templates/element/environment.bash"),
    ),
    (
        "os-environment.bash",
        include_str!("../templates/element/os-environment.bash"),
    ),
    (
        "os-root-script",
        include_str!("../templates/element/os-root-script"),
    ),
    (
        "package-installs.yaml",
        include_str!("../templates/element/package-installs.yaml"),
    ),
    (
        "test-README.rst",
        include_str!("../templates/element/test-README.rst"),
    ),
];

/// The template variables, for `dibkit new --help`.
pub const VARIABLES: &str = "Template variables ({{name}} in a template file): name, var_name (NAME in \
upper case with `_`), title_bar, description, env_docs, env_exports, elements_dir, \
example_elements, packages, release, phase, phase_purpose, phase_where, phase_vars, \
phase_body, title_bar_test. Template files: README.rst, phase-script, environment.bash, \
os-environment.bash, os-root-script, package-installs.yaml, test-README.rst.";

/// What to create.
#[derive(Debug, Clone, Default)]
pub struct Spec {
    pub name: String,
    pub phases: Vec<Phase>,
    pub deps: Vec<String>,
    pub packages: Vec<String>,
    /// `(VARIABLE, default)`; names get a `DIB_` prefix when they lack one.
    pub env: Vec<(String, String)>,
    pub os: bool,
    pub test_element: bool,
    /// Where the element goes (for the README's example `ELEMENTS_PATH`).
    pub elements_dir: String,
    /// Only what the flags ask for (a README.rst at least). Otherwise the element is the
    /// skeleton most elements have, which the flags shape: an install.d script unless
    /// `phases` names others, and `package-installs` in element-deps with a
    /// package-installs.yaml to fill in unless `packages` lists them.
    pub minimal: bool,
}

/// The package-installs.yaml body of a skeleton without `--packages`: valid, empty (an empty
/// or comment-only file crashes package-installs), and saying how to fill it in.
const PACKAGES_TO_FILL_IN: &str = "# Replace {} with the packages to install, one key each, e.g.:
#   curl:
#   git:
#     phase: pre-install.d
{}";

/// A file to write, relative to the new element's directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    pub path: String,
    pub content: String,
    pub mode: u32,
}

/// Why a name cannot be an element name.
#[must_use]
pub fn name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        return Some("it is empty");
    }
    if name == "." || name == ".." || name.contains('/') {
        return Some("it must be a plain directory name (no `/`, `.` or `..`)");
    }
    if name.chars().any(char::is_whitespace) {
        return Some("it contains whitespace, which breaks dib's hook copy");
    }
    if name.starts_with('-') {
        return Some("it starts with `-`, which tools read as an option");
    }
    if name.starts_with('.') {
        return Some("it starts with `.`: a hidden directory");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Some(
            "hook names are built from it and dib-run-parts only runs names made of \
             [0-9A-Za-z_-]",
        );
    }
    None
}

/// The default two-digit number of a phase's first script.
#[must_use]
pub fn default_number(phase: &str) -> u32 {
    match phase {
        "root.d" | "extra-data.d" | "pre-install.d" => 20,
        "finalise.d" => 60,
        "cleanup.d" => 80,
        _ => 50,
    }
}

fn phase_info(phase: &str) -> (&'static str, &'static str, &'static str) {
    match phase {
        "root.d" => (
            "create or adjust the image's root filesystem before anything else",
            "outside the chroot, on the build host",
            "TARGET_ROOT (the image root), TMP_MOUNT_PATH, TMP_HOOKS_PATH, ARCH, DIB_RELEASE",
        ),
        "extra-data.d" => (
            "copy data from the build host into the hooks tree for later phases",
            "outside the chroot, on the build host",
            "TMP_HOOKS_PATH (copied into the image at /tmp/in_target.d), TMP_MOUNT_PATH, ARCH",
        ),
        "pre-install.d" => (
            "prepare package installation (repositories, keys, configuration)",
            "inside the image chroot",
            "/tmp/in_target.d (the hooks tree, read-only), DISTRO_NAME, DIB_RELEASE, ARCH",
        ),
        "install.d" => (
            "install and configure software",
            "inside the image chroot",
            "/tmp/in_target.d (the hooks tree, read-only), install-packages, DISTRO_NAME, ARCH",
        ),
        "post-install.d" => (
            "enable services and adjust what install.d put in place",
            "inside the image chroot",
            "/tmp/in_target.d (the hooks tree, read-only), DISTRO_NAME, ARCH",
        ),
        "post-root.d" => (
            "inspect or adjust the finished root tree from the host",
            "outside the chroot, on the build host",
            "TMP_MOUNT_PATH (the image root), TMP_HOOKS_PATH, ARCH",
        ),
        "block-device.d" => (
            "customise the block device (legacy; prefer block-device YAML)",
            "outside the chroot, on the build host",
            "TMP_MOUNT_PATH, TMP_IMAGE_PATH, TMP_HOOKS_PATH",
        ),
        "pre-finalise.d" => (
            "work on the image's block device before finalise.d",
            "outside the chroot, on the build host",
            "TMP_MOUNT_PATH, IMAGE_BLOCK_DEVICE, TMP_HOOKS_PATH",
        ),
        "finalise.d" => (
            "final configuration on the mounted image filesystem",
            "inside the image chroot",
            "/tmp/in_target.d (the hooks tree, read-only), DISTRO_NAME, ARCH",
        ),
        _ => (
            "clean up the image root after everything else",
            "outside the chroot, on the build host",
            "TARGET_ROOT (the image root), TMP_MOUNT_PATH, TMP_HOOKS_PATH",
        ),
    }
}

fn var_name(name: &str) -> String {
    name.to_ascii_uppercase().replace('-', "_")
}

/// `DIB_`-prefixes a variable name that lacks it.
#[must_use]
pub fn env_name(key: &str) -> String {
    if key.starts_with("DIB_") {
        key.to_owned()
    } else {
        format!("DIB_{key}")
    }
}

/// Replaces `{{var}}` with values; unknown variables are left as they are.
#[must_use]
pub fn render(template: &str, vars: &BTreeMap<&str, String>) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find("}}") {
            Some(end) if vars.contains_key(after[..end].trim()) => {
                out.push_str(&vars[after[..end].trim()]);
                rest = &after[end + 2..];
            }
            _ => {
                out.push_str("{{");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Renders the element. `templates` maps template names to their (possibly overridden) text.
#[must_use]
pub fn files(spec: &Spec, templates: &BTreeMap<String, String>) -> Vec<File> {
    let t = |name: &str| templates.get(name).cloned().unwrap_or_default();
    let name = &spec.name;
    let mut vars: BTreeMap<&str, String> = BTreeMap::new();
    vars.insert("name", name.clone());
    vars.insert("var_name", var_name(name));
    vars.insert("title_bar", "=".repeat(name.chars().count()));
    vars.insert(
        "title_bar_test",
        "=".repeat(name.chars().count() + "/build-succeeds".len()),
    );
    vars.insert("release", "stable".to_owned());
    vars.insert("elements_dir", spec.elements_dir.clone());
    let description = if spec.os {
        format!(
            "An operating-system element for {name}: it provides ``operating-system`` and builds \
             the image root from a root filesystem tarball."
        )
    } else {
        format!("The ``{name}`` element. Describe what it adds to an image here.")
    };
    vars.insert("description", description);
    let mut env: Vec<(String, String)> = spec
        .env
        .iter()
        .map(|(k, v)| (env_name(k), v.clone()))
        .collect();
    if spec.os {
        env.insert(0, ("DIB_RELEASE".to_owned(), "stable".to_owned()));
        env.insert(1, (format!("DIB_{}_ROOTFS", var_name(name)), String::new()));
    }
    let env_docs = if env.is_empty() {
        "None.".to_owned()
    } else {
        env.iter()
            .map(|(k, v)| {
                let default = if v.is_empty() {
                    "unset".to_owned()
                } else {
                    format!("``{v}``")
                };
                format!("``{k}``\n  Default: {default}.")
            })
            .collect::<Vec<_>>()
            .join("\n\n")
    };
    vars.insert("env_docs", env_docs);
    vars.insert(
        "env_exports",
        spec.env
            .iter()
            .map(|(k, v)| {
                let k = env_name(k);
                format!("export {k}=${{{k}:-{v}}}")
            })
            .collect::<Vec<_>>()
            .join("\n"),
    );
    let example = if spec.os {
        name.clone()
    } else {
        format!("debian-minimal {name}")
    };
    vars.insert("example_elements", example);
    let fill_in_packages = !spec.minimal && spec.packages.is_empty();
    let packages = if fill_in_packages {
        PACKAGES_TO_FILL_IN.to_owned()
    } else {
        spec.packages
            .iter()
            .map(|p| format!("{p}:"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    vars.insert("packages", packages);
    let wants_packages = fill_in_packages || !spec.packages.is_empty();

    let mut out = vec![File {
        path: "README.rst".to_owned(),
        content: render(&t("README.rst"), &vars),
        mode: 0o644,
    }];
    let mut deps: Vec<String> = spec.deps.clone();
    if wants_packages && !deps.iter().any(|d| d == "package-installs") {
        deps.push("package-installs".to_owned());
    }
    deps.sort();
    deps.dedup();
    if !deps.is_empty() {
        out.push(File {
            path: "element-deps".to_owned(),
            content: format!("{}\n", deps.join("\n")),
            mode: 0o644,
        });
    }
    if spec.os {
        out.push(File {
            path: "element-provides".to_owned(),
            content: "operating-system\n".to_owned(),
            mode: 0o644,
        });
        out.push(File {
            path: format!("environment.d/10-{name}.bash"),
            content: render(&t("os-environment.bash"), &vars),
            mode: 0o644,
        });
        out.push(File {
            path: format!("root.d/{:02}-{name}-rootfs", default_number("root.d")),
            content: render(&t("os-root-script"), &vars),
            mode: 0o755,
        });
    }
    if !spec.env.is_empty() {
        let number = if spec.os { 11 } else { 10 };
        out.push(File {
            path: format!("environment.d/{number}-{name}.bash"),
            content: render(&t("environment.bash"), &vars),
            mode: 0o644,
        });
    }
    if wants_packages {
        out.push(File {
            path: "package-installs.yaml".to_owned(),
            content: render(&t("package-installs.yaml"), &vars),
            mode: 0o644,
        });
    }
    let default_phases: Vec<Phase> = Phase::find("install.d").into_iter().collect();
    let phases = if spec.phases.is_empty() && !spec.minimal {
        &default_phases
    } else {
        &spec.phases
    };
    for phase in phases {
        if spec.os && phase.dir == "root.d" {
            continue; // The OS skeleton already has its root.d script.
        }
        let (purpose, place, available) = phase_info(phase.dir);
        let mut v = vars.clone();
        v.insert("phase", phase.dir.to_owned());
        v.insert("phase_purpose", purpose.to_owned());
        v.insert("phase_where", place.to_owned());
        v.insert("phase_vars", available.to_owned());
        v.insert("phase_body", format!("echo \"{name}: {} done\"", phase.dir));
        out.push(File {
            path: format!("{}/{:02}-{name}", phase.dir, default_number(phase.dir)),
            content: render(&t("phase-script"), &v),
            mode: 0o755,
        });
    }
    if spec.test_element {
        let deps = if spec.os {
            name.clone()
        } else {
            format!("debian-minimal\n{name}")
        };
        let mut sorted: Vec<&str> = deps.lines().collect();
        sorted.sort_unstable();
        out.push(File {
            path: "test-elements/build-succeeds/README.rst".to_owned(),
            content: render(&t("test-README.rst"), &vars),
            mode: 0o644,
        });
        out.push(File {
            path: "test-elements/build-succeeds/element-deps".to_owned(),
            content: format!("{}\n", sorted.join("\n")),
            mode: 0o644,
        });
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

/// The embedded templates overridden file by file by `dir`, if given.
///
/// # Errors
/// A template file in `dir` that cannot be read.
pub fn templates(dir: Option<&Path>) -> Result<BTreeMap<String, String>, String> {
    let mut out: BTreeMap<String, String> = TEMPLATES
        .iter()
        .map(|(n, t)| ((*n).to_owned(), (*t).to_owned()))
        .collect();
    if let Some(dir) = dir {
        for (name, _) in TEMPLATES {
            let p = dir.join(name);
            match std::fs::read_to_string(&p) {
                Ok(text) => {
                    out.insert((*name).to_owned(), text);
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(format!("{}: {e}", p.display())),
            }
        }
    }
    Ok(out)
}

/// The phase names, for messages.
#[must_use]
pub fn phase_names() -> Vec<&'static str> {
    PHASES.iter().map(|p| p.dir).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(name_problem("jenkins-slave").is_none());
        for bad in ["", "a/b", "..", "a b", "-x", ".x", "a.b", "é"] {
            assert!(name_problem(bad).is_some(), "{bad:?}");
        }
    }

    #[test]
    fn render_leaves_unknown_variables() {
        let mut v = BTreeMap::new();
        v.insert("a", "1".to_owned());
        assert_eq!(render("{{a}} {{ a }} {{b}} {{", &v), "1 1 {{b}} {{");
    }
}
