//! Cloud configuration as openstacksdk reads it: `clouds.yaml` (and `secure.yaml`, merged over
//! it) from the first directory that has one, `OS_CLIENT_CONFIG_FILE`, `OS_CLOUD`, and the plain
//! `OS_*` variables (a cloud of their own, `envvars`). This module only reads and resolves; it
//! makes no network call, and a secret it reads is held as a [`Secret`], which never prints.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::yaml::{self, Node, Value};

/// A password, application-credential secret or token: its `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    #[must_use]
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// The secret itself, for the one place that sends it.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// Where the settings come from, to name in messages.
#[derive(Debug, Clone)]
pub struct Origin(pub String);

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// How to get a token.
#[derive(Debug, Clone)]
pub enum Auth {
    /// `auth_type: none`: no Keystone; the image endpoint is `image_endpoint_override`.
    None,
    /// Keystone v3 password.
    Password {
        auth_url: String,
        user: UserRef,
        password: Secret,
        scope: Scope,
    },
    /// Keystone v3 application credential (by id, or by name with its user).
    ApplicationCredential {
        auth_url: String,
        id: Option<String>,
        name: Option<String>,
        user: Option<UserRef>,
        secret: Secret,
    },
}

/// A user or project named within a domain, or given by id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserRef {
    Id(String),
    Named { name: String, domain: DomainRef },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DomainRef {
    Id(String),
    Name(String),
}

/// What a password token is scoped to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// No scope: Keystone returns no catalog (unless the user has a default project).
    Unscoped,
    ProjectId(String),
    Project {
        name: String,
        domain: DomainRef,
    },
    Domain(DomainRef),
    System,
}

/// One resolved cloud.
#[derive(Debug, Clone)]
pub struct Cloud {
    pub name: String,
    /// The file (or `OS_* variables`) the cloud came from.
    pub origin: Origin,
    pub auth: Auth,
    pub region: Option<String>,
    /// `public`, `internal` or `admin` (`publicURL` and the like are accepted).
    pub interface: String,
    pub image_endpoint_override: Option<String>,
    /// `cacert`: trusted instead of the host's CA store.
    pub cacert: Option<PathBuf>,
    /// `verify: false` turns TLS verification off.
    pub verify: bool,
}

/// A configuration problem: the message names the file and line, or the variable.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ConfigError {
    pub message: String,
    pub hint: Option<String>,
}

fn config_error(message: impl Into<String>, hint: impl Into<Option<String>>) -> ConfigError {
    ConfigError {
        message: message.into(),
        hint: hint.into(),
    }
}

/// Where the configuration files are looked for, and the variables that matter: a snapshot of
/// the process environment, so tests can give their own.
#[derive(Debug, Clone, Default)]
pub struct Env {
    pub vars: BTreeMap<String, String>,
    pub cwd: PathBuf,
}

impl Env {
    /// The process's environment and working directory.
    #[must_use]
    pub fn from_process() -> Self {
        Self {
            vars: std::env::vars().collect(),
            cwd: std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
        }
    }

    fn var(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// The directories searched, in openstacksdk's order: the working directory, the user's
    /// (`$XDG_CONFIG_HOME/openstack`, by default `~/.config/openstack`), the site's
    /// (`/etc/openstack`).
    #[must_use]
    pub fn search_dirs(&self) -> Vec<PathBuf> {
        let mut dirs = vec![self.cwd.clone()];
        let user = self
            .var("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .or_else(|| self.var("HOME").map(|h| Path::new(h).join(".config")));
        if let Some(u) = user {
            dirs.push(u.join("openstack"));
        }
        dirs.push(PathBuf::from("/etc/openstack"));
        dirs
    }

    /// The candidate files for `stem` (`clouds`, `secure`), with the variable that names one
    /// first.
    fn candidates(&self, stem: &str, var: &str) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = self.var(var).map(PathBuf::from).into_iter().collect();
        for d in self.search_dirs() {
            for ext in ["yaml", "yml", "json"] {
                files.push(d.join(format!("{stem}.{ext}")));
            }
        }
        files
    }
}

/// A setting as read, with where it was written.
#[derive(Debug, Clone)]
struct Setting {
    value: SettingValue,
    at: String,
}

#[derive(Debug, Clone)]
enum SettingValue {
    Text(String),
    List(Vec<String>),
}

impl Setting {
    fn text(&self) -> Result<&str, ConfigError> {
        match &self.value {
            SettingValue::Text(t) => Ok(t),
            SettingValue::List(_) => Err(config_error(
                format!("{}: a single value is expected here, not a list", self.at),
                None,
            )),
        }
    }
}

/// Keys openstacksdk moves from a cloud's top level into `auth` (and reads there).
const AUTH_KEYS: &[&str] = &[
    "auth_url",
    "username",
    "user_id",
    "password",
    "project_name",
    "project_id",
    "tenant_name",
    "tenant_id",
    "user_domain_name",
    "user_domain_id",
    "project_domain_name",
    "project_domain_id",
    "domain_name",
    "domain_id",
    "system_scope",
    "application_credential_id",
    "application_credential_name",
    "application_credential_secret",
    "token",
];

/// A cloud's settings, flat: `auth.password`, `region_name`, ...
type Flat = BTreeMap<String, Setting>;

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// A parsed configuration file.
struct File {
    path: PathBuf,
    text: String,
    root: Option<Node>,
}

impl File {
    fn read(path: &Path) -> Result<Option<Self>, ConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(config_error(
                    format!("{}: cannot read: {e}", path.display()),
                    None,
                ));
            }
        };
        let root = yaml::parse(&text).map_err(|e| {
            let line = e.offset.map_or(1, |o| line_of(&text, o));
            config_error(
                format!("{}:{line}: {}", path.display(), e.message),
                Some(
                    "clouds.yaml is YAML: `clouds:` maps each cloud's name to its settings"
                        .to_owned(),
                ),
            )
        })?;
        Ok(Some(Self {
            path: path.to_owned(),
            text,
            root,
        }))
    }

    fn at(&self, node: &Node) -> String {
        format!(
            "{}:{}",
            self.path.display(),
            line_of(&self.text, node.offset)
        )
    }

    /// The `clouds:` mapping.
    fn clouds(&self) -> Result<Vec<(&str, &Node)>, ConfigError> {
        let Some(root) = &self.root else {
            return Ok(Vec::new());
        };
        let Value::Map(entries) = &root.value else {
            return Err(config_error(
                format!("{}: the file is not a mapping", self.at(root)),
                Some("clouds.yaml starts with `clouds:`".to_owned()),
            ));
        };
        let Some((_, clouds)) = entries.iter().find(|(k, _)| k.as_str() == Some("clouds")) else {
            return Ok(Vec::new());
        };
        match &clouds.value {
            Value::Map(m) => Ok(m
                .iter()
                .filter_map(|(k, v)| k.as_str().map(|k| (k, v)))
                .collect()),
            Value::Scalar { .. } if clouds.is_falsy() => Ok(Vec::new()),
            _ => Err(config_error(
                format!(
                    "{}: `clouds` is not a mapping of cloud names",
                    self.at(clouds)
                ),
                None,
            )),
        }
    }

    /// One cloud's settings, flattened (keys with `-` read as `_`, as openstacksdk does).
    fn flat(&self, cloud: &Node) -> Result<Flat, ConfigError> {
        let mut out = Flat::new();
        let Value::Map(entries) = &cloud.value else {
            return Err(config_error(
                format!("{}: a cloud's settings must be a mapping", self.at(cloud)),
                None,
            ));
        };
        for (k, v) in entries {
            let Some(key) = k.as_str() else { continue };
            let key = key.replace('-', "_");
            if key == "auth" {
                let Value::Map(auth) = &v.value else {
                    if v.is_falsy() {
                        continue;
                    }
                    return Err(config_error(
                        format!("{}: `auth` must be a mapping", self.at(v)),
                        None,
                    ));
                };
                for (ak, av) in auth {
                    let Some(akey) = ak.as_str() else { continue };
                    if let Some(s) = self.setting(av) {
                        out.insert(format!("auth.{}", akey.replace('-', "_")), s);
                    }
                }
            } else if let Some(s) = self.setting(v) {
                out.insert(key, s);
            }
        }
        Ok(out)
    }

    fn setting(&self, node: &Node) -> Option<Setting> {
        let at = self.at(node);
        let value = match &node.value {
            Value::Scalar { text, .. } => {
                if node.scalar_type() == Some(yaml::ScalarType::Null) {
                    return None;
                }
                SettingValue::Text(text.clone())
            }
            Value::Seq(items) => SettingValue::List(
                items
                    .iter()
                    .filter_map(|i| match &i.value {
                        Value::Scalar { text, .. } => Some(text.clone()),
                        // `regions:` may list mappings with a `name`.
                        Value::Map(m) => m
                            .iter()
                            .find(|(k, _)| k.as_str() == Some("name"))
                            .and_then(|(_, v)| v.as_str().map(str::to_owned)),
                        _ => None,
                    })
                    .collect(),
            ),
            // Nested settings dibkit does not use (e.g. `image_api_version` maps): ignored.
            Value::Map(_) | Value::Alias => return None,
        };
        Some(Setting { value, at })
    }
}

/// The first file of `stem` that exists, parsed.
fn first_file(env: &Env, stem: &str, var: &str) -> Result<Option<File>, ConfigError> {
    for path in env.candidates(stem, var) {
        if let Some(f) = File::read(&path)? {
            return Ok(Some(f));
        }
    }
    Ok(None)
}

/// The `OS_*` variables as a cloud (openstacksdk's `envvars`): `OS_AUTH_URL` is `auth_url`,
/// and so on. `None` when none is set but `OS_CLOUD` and the file variables.
fn env_cloud(env: &Env) -> Option<Flat> {
    let mut out = Flat::new();
    for (k, v) in &env.vars {
        let Some(key) = k.strip_prefix("OS_") else {
            continue;
        };
        if v.is_empty()
            || matches!(
                key,
                "CLOUD" | "CLIENT_CONFIG_FILE" | "CLIENT_SECURE_FILE" | "CLOUD_NAME"
            )
        {
            continue;
        }
        out.insert(
            key.to_ascii_lowercase(),
            Setting {
                value: SettingValue::Text(v.clone()),
                at: k.clone(),
            },
        );
    }
    (!out.is_empty()).then_some(out)
}

/// The names of the clouds configured, and the file they are in, for a hint.
fn known(file: Option<&File>) -> String {
    match file {
        Some(f) => {
            let names: Vec<&str> = f
                .clouds()
                .unwrap_or_default()
                .into_iter()
                .map(|(n, _)| n)
                .collect();
            if names.is_empty() {
                format!("{} has no clouds", f.path.display())
            } else {
                format!("{} has: {}", f.path.display(), names.join(", "))
            }
        }
        None => "no clouds.yaml was found".to_owned(),
    }
}

/// Resolves the cloud to use: `name` (from `--cloud`), else `OS_CLOUD`, else the `OS_*`
/// variables.
pub fn resolve(name: Option<&str>, env: &Env) -> Result<Cloud, ConfigError> {
    let clouds_file = first_file(env, "clouds", "OS_CLIENT_CONFIG_FILE")?;
    let name = name
        .map(str::to_owned)
        .or_else(|| env.var("OS_CLOUD").map(str::to_owned));
    let Some(name) = name else {
        let Some(flat) = env_cloud(env) else {
            let searched: Vec<String> = env
                .search_dirs()
                .iter()
                .map(|d| d.display().to_string())
                .collect();
            return Err(config_error(
                "no cloud given: no --cloud, no OS_CLOUD and no OS_* variables",
                Some(format!(
                    "name a cloud of clouds.yaml with --cloud ({}; searched {})",
                    known(clouds_file.as_ref()),
                    searched.join(", ")
                )),
            ));
        };
        let name = env.var("OS_CLOUD_NAME").unwrap_or("envvars").to_owned();
        return build(
            name,
            Origin("the OS_* variables".to_owned()),
            &normalize(flat),
        );
    };
    let Some(file) = clouds_file else {
        let searched: Vec<String> = env
            .candidates("clouds", "OS_CLIENT_CONFIG_FILE")
            .iter()
            .map(|d| d.display().to_string())
            .collect();
        return Err(config_error(
            format!("cloud `{name}`: no clouds.yaml found"),
            Some(format!(
                "write it in one of: {} (or name it with OS_CLIENT_CONFIG_FILE)",
                searched.join(", ")
            )),
        ));
    };
    let Some((_, node)) = file.clouds()?.into_iter().find(|(n, _)| *n == name) else {
        return Err(config_error(
            format!("cloud `{name}` is not in {}", file.path.display()),
            Some(known(Some(&file))),
        ));
    };
    let mut flat = file.flat(node)?;
    if let Some(secure) = first_file(env, "secure", "OS_CLIENT_SECURE_FILE")? {
        if let Some((_, node)) = secure.clouds()?.into_iter().find(|(n, _)| *n == name) {
            flat.extend(secure.flat(node)?);
        }
    }
    build(
        name,
        Origin(file.path.display().to_string()),
        &normalize(flat),
    )
}

/// Moves auth settings written at a cloud's top level into `auth`, and reads the legacy
/// `tenant_*` names as `project_*`.
fn normalize(mut flat: Flat) -> Flat {
    for key in AUTH_KEYS {
        if let Some(s) = flat.remove(*key) {
            flat.entry(format!("auth.{key}")).or_insert(s);
        }
    }
    for (old, new) in [
        ("auth.tenant_name", "auth.project_name"),
        ("auth.tenant_id", "auth.project_id"),
    ] {
        if let Some(s) = flat.remove(old) {
            flat.entry(new.to_owned()).or_insert(s);
        }
    }
    flat
}

fn get(flat: &Flat, key: &str) -> Result<Option<String>, ConfigError> {
    flat.get(key)
        .map(|s| s.text().map(str::to_owned))
        .transpose()
        .map(|v| v.filter(|v| !v.is_empty()))
}

fn domain(flat: &Flat, prefix: &str) -> Result<Option<DomainRef>, ConfigError> {
    if let Some(id) = get(flat, &format!("auth.{prefix}domain_id"))? {
        return Ok(Some(DomainRef::Id(id)));
    }
    if let Some(name) = get(flat, &format!("auth.{prefix}domain_name"))? {
        return Ok(Some(DomainRef::Name(name)));
    }
    Ok(None)
}

/// The domain of a user or project: its own, else `domain_*`, else `default`.
fn domain_or_default(flat: &Flat, prefix: &str) -> Result<DomainRef, ConfigError> {
    Ok(match domain(flat, prefix)? {
        Some(d) => d,
        None => domain(flat, "")?.unwrap_or_else(|| DomainRef::Id("default".to_owned())),
    })
}

fn user(flat: &Flat) -> Result<Option<UserRef>, ConfigError> {
    if let Some(id) = get(flat, "auth.user_id")? {
        return Ok(Some(UserRef::Id(id)));
    }
    Ok(match get(flat, "auth.username")? {
        Some(name) => Some(UserRef::Named {
            name,
            domain: domain_or_default(flat, "user_")?,
        }),
        None => None,
    })
}

fn build(name: String, origin: Origin, flat: &Flat) -> Result<Cloud, ConfigError> {
    let where_ = |key: &str| {
        flat.get(key)
            .map_or_else(|| origin.to_string(), |s| s.at.clone())
    };
    let missing = |what: &str| {
        config_error(
            format!("cloud `{name}` ({origin}): no `{what}`"),
            Some(format!(
                "set `{what}` under the cloud's `auth:` (or OS_{})",
                what.to_ascii_uppercase()
            )),
        )
    };
    let auth_type = get(flat, "auth_type")?.unwrap_or_else(|| {
        if flat.contains_key("auth.application_credential_secret") {
            "v3applicationcredential".to_owned()
        } else {
            "password".to_owned()
        }
    });
    let auth_url = || -> Result<String, ConfigError> {
        get(flat, "auth.auth_url")?.ok_or_else(|| missing("auth_url"))
    };
    let auth = match auth_type.as_str() {
        "none" | "noauth" => Auth::None,
        "password" | "v3password" => {
            let auth_url = auth_url()?;
            let user = user(flat)?.ok_or_else(|| missing("username"))?;
            let password = get(flat, "auth.password")?.ok_or_else(|| missing("password"))?;
            let scope = if let Some(id) = get(flat, "auth.project_id")? {
                Scope::ProjectId(id)
            } else if let Some(pname) = get(flat, "auth.project_name")? {
                Scope::Project {
                    name: pname,
                    domain: domain_or_default(flat, "project_")?,
                }
            } else if get(flat, "auth.system_scope")?.is_some() {
                Scope::System
            } else if let Some(d) = domain(flat, "")? {
                Scope::Domain(d)
            } else {
                Scope::Unscoped
            };
            Auth::Password {
                auth_url,
                user,
                password: Secret::new(password),
                scope,
            }
        }
        "v3applicationcredential" | "applicationcredential" | "application_credential" => {
            let auth_url = auth_url()?;
            let secret = get(flat, "auth.application_credential_secret")?
                .ok_or_else(|| missing("application_credential_secret"))?;
            let id = get(flat, "auth.application_credential_id")?;
            let cred_name = get(flat, "auth.application_credential_name")?;
            let user = user(flat)?;
            if id.is_none() && (cred_name.is_none() || user.is_none()) {
                return Err(config_error(
                    format!(
                        "cloud `{name}` ({origin}): an application credential needs \
                         `application_credential_id`, or its name and the user's"
                    ),
                    Some("copy the id Keystone gave when the credential was created".to_owned()),
                ));
            }
            Auth::ApplicationCredential {
                auth_url,
                id,
                name: cred_name,
                user,
                secret: Secret::new(secret),
            }
        }
        other => {
            return Err(config_error(
                format!(
                    "{}: auth_type `{other}` is not supported",
                    where_("auth_type")
                ),
                Some("use password, v3applicationcredential or none".to_owned()),
            ));
        }
    };
    let region = match flat.get("region_name") {
        Some(s) => Some(s.text()?.to_owned()),
        None => match flat.get("regions").map(|s| &s.value) {
            Some(SettingValue::List(l)) => l.first().cloned(),
            Some(SettingValue::Text(t)) => Some(t.clone()),
            None => None,
        },
    }
    .filter(|r| !r.is_empty());
    let interface = get(flat, "image_interface")?
        .or(get(flat, "interface")?)
        .or(get(flat, "endpoint_type")?)
        .unwrap_or_else(|| "public".to_owned());
    let interface = interface
        .strip_suffix("URL")
        .unwrap_or(&interface)
        .to_owned();
    if !matches!(interface.as_str(), "public" | "internal" | "admin") {
        return Err(config_error(
            format!(
                "{}: interface `{interface}` is not public, internal or admin",
                where_("interface")
            ),
            None,
        ));
    }
    let image_endpoint_override = get(flat, "image_endpoint_override")?;
    if matches!(auth, Auth::None) && image_endpoint_override.is_none() {
        return Err(config_error(
            format!("cloud `{name}` ({origin}): `auth_type: none` needs `image_endpoint_override`"),
            Some("set it to the Glance URL, e.g. http://glance.example:9292".to_owned()),
        ));
    }
    let verify = match get(flat, "verify")?.as_deref() {
        None => true,
        Some(v) => !matches!(
            v.to_ascii_lowercase().as_str(),
            "false" | "no" | "off" | "0"
        ),
    };
    let insecure = get(flat, "insecure")?
        .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "true" | "yes" | "on" | "1"));
    Ok(Cloud {
        name,
        origin,
        auth,
        region,
        interface,
        image_endpoint_override,
        cacert: get(flat, "cacert")?.map(PathBuf::from),
        verify: verify && !insecure,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(dir: &Path, vars: &[(&str, &str)]) -> Env {
        let mut e = Env {
            vars: BTreeMap::new(),
            cwd: dir.join("cwd"),
        };
        e.vars
            .insert("HOME".into(), dir.join("home").display().to_string());
        for (k, v) in vars {
            e.vars.insert((*k).into(), (*v).into());
        }
        e
    }

    fn write(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    const PASSWORD_CLOUD: &str = "clouds:\n  mycloud:\n    auth:\n      auth_url: https://keystone.example/v3\n      username: alice\n      password: hunter2\n      project_name: ci\n      user_domain_name: Users\n    region_name: RegionTwo\n    interface: internalURL\n";

    #[test]
    fn the_working_directory_comes_before_the_users_directory() {
        let t = tempfile::tempdir().unwrap();
        write(&t.path().join("cwd/clouds.yaml"), PASSWORD_CLOUD);
        write(
            &t.path().join("home/.config/openstack/clouds.yaml"),
            "clouds:\n  mycloud:\n    auth_type: none\n    image_endpoint_override: http://x\n",
        );
        let c = resolve(Some("mycloud"), &env(t.path(), &[])).unwrap();
        let Auth::Password {
            auth_url,
            user,
            password,
            scope,
        } = c.auth
        else {
            panic!("{:?}", c.auth)
        };
        assert_eq!(auth_url, "https://keystone.example/v3");
        assert_eq!(
            user,
            UserRef::Named {
                name: "alice".into(),
                domain: DomainRef::Name("Users".into())
            }
        );
        assert_eq!(password.expose(), "hunter2");
        assert_eq!(
            scope,
            Scope::Project {
                name: "ci".into(),
                domain: DomainRef::Id("default".into())
            }
        );
        assert_eq!(c.region.as_deref(), Some("RegionTwo"));
        assert_eq!(c.interface, "internal");
    }

    #[test]
    fn os_client_config_file_is_read_first_and_secure_yaml_merges_over_it() {
        let t = tempfile::tempdir().unwrap();
        write(&t.path().join("cwd/clouds.yaml"), "clouds: {}\n");
        write(
            &t.path().join("elsewhere.yaml"),
            "clouds:\n  c:\n    auth:\n      auth_url: http://k:5000\n      username: bob\n      project-id: p1\n",
        );
        write(
            &t.path().join("home/.config/openstack/secure.yaml"),
            "clouds:\n  c:\n    auth:\n      password: from-secure\n",
        );
        let path = t.path().join("elsewhere.yaml").display().to_string();
        let c = resolve(
            None,
            &env(
                t.path(),
                &[("OS_CLIENT_CONFIG_FILE", &path), ("OS_CLOUD", "c")],
            ),
        )
        .unwrap();
        let Auth::Password {
            password, scope, ..
        } = c.auth
        else {
            panic!()
        };
        assert_eq!(password.expose(), "from-secure");
        assert_eq!(scope, Scope::ProjectId("p1".into()));
        assert_eq!(c.interface, "public");
    }

    #[test]
    fn os_variables_make_a_cloud_of_their_own() {
        let t = tempfile::tempdir().unwrap();
        let c = resolve(
            None,
            &env(
                t.path(),
                &[
                    ("OS_AUTH_URL", "http://k/v3"),
                    ("OS_APPLICATION_CREDENTIAL_ID", "abc"),
                    ("OS_APPLICATION_CREDENTIAL_SECRET", "s"),
                    ("OS_AUTH_TYPE", "v3applicationcredential"),
                    ("OS_REGION_NAME", "R"),
                ],
            ),
        )
        .unwrap();
        assert_eq!(c.name, "envvars");
        assert!(
            matches!(c.auth, Auth::ApplicationCredential { id: Some(ref i), .. } if i == "abc")
        );
        assert_eq!(c.region.as_deref(), Some("R"));
    }

    #[test]
    fn auth_type_none_needs_an_image_endpoint() {
        let t = tempfile::tempdir().unwrap();
        write(
            &t.path().join("cwd/clouds.yaml"),
            "clouds:\n  l:\n    auth_type: none\n",
        );
        let e = resolve(Some("l"), &env(t.path(), &[])).unwrap_err();
        assert!(e.message.contains("image_endpoint_override"), "{e}");
    }

    #[test]
    fn an_unknown_cloud_lists_the_known_ones() {
        let t = tempfile::tempdir().unwrap();
        write(&t.path().join("cwd/clouds.yaml"), PASSWORD_CLOUD);
        let e = resolve(Some("nope"), &env(t.path(), &[])).unwrap_err();
        assert!(e.message.contains("cloud `nope` is not in"), "{e}");
        assert!(e.hint.unwrap().contains("mycloud"));
    }

    #[test]
    fn a_syntax_error_names_the_file_and_line() {
        let t = tempfile::tempdir().unwrap();
        write(&t.path().join("cwd/clouds.yaml"), "clouds:\n  a: [\n");
        let e = resolve(Some("a"), &env(t.path(), &[])).unwrap_err();
        assert!(e.message.contains("clouds.yaml:"), "{e}");
    }

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("hunter2");
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
