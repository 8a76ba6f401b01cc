//! The HTTP calls: Keystone v3 (a token and the image endpoint from the service catalog) and
//! Glance v2 (`/v2/images`: list by name, create, upload the data, get, rename, delete). TLS is
//! rustls with the host's CA store. Nothing here prints; every message built from a server's
//! answer has the cloud's secrets taken out before it leaves this module.

use std::io::Read;
use std::time::Duration;

use serde_json::{Value, json};
use ureq::Agent;
use ureq::http::Response;

use super::Error;
use super::cloud::{Auth, Cloud, DomainRef, Scope, Secret, UserRef};

/// One image as Glance shows it.
#[derive(Debug, Clone)]
pub struct Image {
    pub id: String,
    pub name: String,
    pub status: String,
    /// Every field, properties included, as Glance sent them.
    pub fields: serde_json::Map<String, Value>,
}

impl Image {
    fn from_json(v: Value) -> Option<Self> {
        let Value::Object(fields) = v else {
            return None;
        };
        let s = |k: &str| fields.get(k).and_then(Value::as_str).map(str::to_owned);
        Some(Self {
            id: s("id")?,
            name: s("name").unwrap_or_default(),
            status: s("status").unwrap_or_default(),
            fields,
        })
    }

    /// A string field or property.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields.get(key).and_then(Value::as_str)
    }

    #[must_use]
    pub fn size(&self) -> Option<u64> {
        self.fields.get("size").and_then(Value::as_u64)
    }
}

/// A connection to one cloud's image service.
pub struct Session {
    agent: Agent,
    /// For the upload: no overall time limit (a large image takes long), but a limit on the
    /// wait for Glance's answer once the data is sent.
    upload_agent: Agent,
    /// The Glance endpoint, without a version (`http://host:9292`).
    pub image_url: String,
    token: Option<Secret>,
    /// Strings that must never appear in a message (password, secret, token).
    secrets: Vec<String>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("image_url", &self.image_url)
            .finish_non_exhaustive()
    }
}

/// Takes every secret out of a message.
fn redact(message: &str, secrets: &[String]) -> String {
    let mut m = message.to_owned();
    for s in secrets.iter().filter(|s| s.len() >= 4) {
        m = m.replace(s.as_str(), "[redacted]");
    }
    m
}

/// The useful words of an error body: Keystone's and Glance's JSON `message`, or the text
/// without markup, shortened.
fn body_message(body: &str) -> String {
    if let Ok(v) = serde_json::from_str::<Value>(body) {
        let m = v
            .pointer("/error/message")
            .or_else(|| v.get("message"))
            .or_else(|| v.pointer("/badRequest/message"))
            .and_then(Value::as_str);
        if let Some(m) = m {
            return m.to_owned();
        }
    }
    let mut text = String::new();
    let mut in_tag = false;
    for c in body.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                text.push(' ');
            }
            _ if !in_tag => text.push(c),
            _ => {}
        }
    }
    let words: Vec<&str> = text.split_whitespace().collect();
    let mut m = words.join(" ");
    if m.len() > 400 {
        let cut = (0..=400)
            .rev()
            .find(|i| m.is_char_boundary(*i))
            .unwrap_or(0);
        m.truncate(cut);
        m.push_str("...");
    }
    m
}

fn agent(cloud: &Cloud, upload: bool) -> Result<Agent, Error> {
    use ureq::tls::{RootCerts, TlsConfig};
    let mut tls = TlsConfig::builder().root_certs(RootCerts::PlatformVerifier);
    if let Some(path) = &cloud.cacert {
        let pem = std::fs::read(path).map_err(|e| Error::Config {
            message: format!("cloud `{}`: cacert {}: {e}", cloud.name, path.display()),
            hint: None,
        })?;
        let certs: Vec<_> = ureq::tls::parse_pem(&pem)
            .filter_map(|item| match item {
                Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                _ => None,
            })
            .collect();
        if certs.is_empty() {
            return Err(Error::Config {
                message: format!(
                    "cloud `{}`: cacert {} holds no PEM certificate",
                    cloud.name,
                    path.display()
                ),
                hint: None,
            });
        }
        tls = tls.root_certs(RootCerts::new_with_certs(&certs));
    }
    if !cloud.verify {
        tls = tls.disable_verification(true);
    }
    let mut config = Agent::config_builder()
        .tls_config(tls.build())
        .http_status_as_error(false)
        .user_agent(concat!("dibkit/", env!("CARGO_PKG_VERSION")))
        .timeout_connect(Some(Duration::from_secs(30)));
    config = if upload {
        config
            .timeout_global(None)
            .timeout_recv_response(Some(Duration::from_secs(900)))
    } else {
        config.timeout_global(Some(Duration::from_secs(120)))
    };
    Ok(config.build().new_agent())
}

/// A Glance URL without its version suffix: the calls add `/v2/...`.
fn unversioned(url: &str) -> String {
    let url = url.trim_end_matches('/');
    if let Some((base, last)) = url.rsplit_once('/') {
        let v = last.strip_prefix('v').unwrap_or("");
        if !v.is_empty() && v.chars().all(|c| c.is_ascii_digit() || c == '.') {
            return base.to_owned();
        }
    }
    url.to_owned()
}

/// Keystone's v3 root from `auth_url` (with or without the version).
fn keystone_v3(auth_url: &str) -> String {
    let url = auth_url.trim_end_matches('/');
    if url.ends_with("/v3") {
        url.to_owned()
    } else {
        format!("{url}/v3")
    }
}

fn domain_json(d: &DomainRef) -> Value {
    match d {
        DomainRef::Id(id) => json!({ "id": id }),
        DomainRef::Name(name) => json!({ "name": name }),
    }
}

fn user_json(u: &UserRef) -> serde_json::Map<String, Value> {
    let mut m = serde_json::Map::new();
    match u {
        UserRef::Id(id) => {
            m.insert("id".into(), json!(id));
        }
        UserRef::Named { name, domain } => {
            m.insert("name".into(), json!(name));
            m.insert("domain".into(), domain_json(domain));
        }
    }
    m
}

/// The request body of `POST /v3/auth/tokens`.
fn auth_body(auth: &Auth) -> Option<Value> {
    match auth {
        Auth::None => None,
        Auth::Password {
            user,
            password,
            scope,
            ..
        } => {
            let mut u = user_json(user);
            u.insert("password".into(), json!(password.expose()));
            let mut body = json!({ "auth": { "identity": {
                "methods": ["password"],
                "password": { "user": u },
            }}});
            let scope = match scope {
                Scope::Unscoped => None,
                Scope::ProjectId(id) => Some(json!({ "project": { "id": id } })),
                Scope::Project { name, domain } => {
                    Some(json!({ "project": { "name": name, "domain": domain_json(domain) } }))
                }
                Scope::Domain(d) => Some(json!({ "domain": domain_json(d) })),
                Scope::System => Some(json!({ "system": { "all": true } })),
            };
            if let Some(s) = scope {
                body["auth"]["scope"] = s;
            }
            Some(body)
        }
        Auth::ApplicationCredential {
            id,
            name,
            user,
            secret,
            ..
        } => {
            let mut cred = serde_json::Map::new();
            if let Some(id) = id {
                cred.insert("id".into(), json!(id));
            } else {
                cred.insert("name".into(), json!(name));
                if let Some(u) = user {
                    cred.insert("user".into(), Value::Object(user_json(u)));
                }
            }
            cred.insert("secret".into(), json!(secret.expose()));
            Some(json!({ "auth": { "identity": {
                "methods": ["application_credential"],
                "application_credential": cred,
            }}}))
        }
    }
}

/// The image endpoint in a token's catalog for the cloud's region and interface.
fn image_endpoint(catalog: &Value, cloud: &Cloud) -> Result<String, Error> {
    let services = catalog.as_array().cloned().unwrap_or_default();
    let Some(image) = services
        .iter()
        .find(|s| s.get("type").and_then(Value::as_str) == Some("image"))
    else {
        let types: Vec<&str> = services
            .iter()
            .filter_map(|s| s.get("type").and_then(Value::as_str))
            .collect();
        return Err(Error::Config {
            message: format!(
                "cloud `{}`: the service catalog has no image service (it has: {})",
                cloud.name,
                if types.is_empty() {
                    "nothing".to_owned()
                } else {
                    types.join(", ")
                }
            ),
            hint: Some(
                "an unscoped token has no catalog: set project_name (or project_id); or give \
                 image_endpoint_override"
                    .to_owned(),
            ),
        });
    };
    let endpoints = image
        .get("endpoints")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let region_of = |e: &Value| {
        e.get("region_id")
            .or_else(|| e.get("region"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    let matching: Vec<&Value> = endpoints
        .iter()
        .filter(|e| e.get("interface").and_then(Value::as_str) == Some(cloud.interface.as_str()))
        .filter(|e| cloud.region.as_ref().is_none_or(|r| *r == region_of(e)))
        .collect();
    let mut regions: Vec<String> = matching.iter().map(|e| region_of(e)).collect();
    regions.dedup();
    match (matching.first(), regions.len()) {
        (Some(e), 1) => Ok(e
            .get("url")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()),
        (Some(_), _) => Err(Error::Config {
            message: format!(
                "cloud `{}`: the image service is in several regions ({})",
                cloud.name,
                regions.join(", ")
            ),
            hint: Some("choose one with region_name (or OS_REGION_NAME)".to_owned()),
        }),
        (None, _) => {
            let have: Vec<String> = endpoints
                .iter()
                .map(|e| {
                    format!(
                        "{} in {}",
                        e.get("interface").and_then(Value::as_str).unwrap_or("?"),
                        region_of(e)
                    )
                })
                .collect();
            Err(Error::Config {
                message: format!(
                    "cloud `{}`: no {} image endpoint{} in the catalog (it has: {})",
                    cloud.name,
                    cloud.interface,
                    cloud
                        .region
                        .as_ref()
                        .map(|r| format!(" in region {r}"))
                        .unwrap_or_default(),
                    have.join(", ")
                ),
                hint: Some("check region_name and interface".to_owned()),
            })
        }
    }
}

impl Session {
    /// Gets a token (unless `auth_type: none`) and finds the image endpoint.
    pub fn connect(cloud: &Cloud) -> Result<Self, Error> {
        let agent = agent(cloud, false)?;
        let upload_agent = agent_for_upload(cloud)?;
        let mut secrets = Vec::new();
        match &cloud.auth {
            Auth::None => {}
            Auth::Password { password, .. } => secrets.push(password.expose().to_owned()),
            Auth::ApplicationCredential { secret, .. } => {
                secrets.push(secret.expose().to_owned());
            }
        }
        let (token, catalog_url) = match (&cloud.auth, auth_body(&cloud.auth)) {
            (
                Auth::Password { auth_url, .. } | Auth::ApplicationCredential { auth_url, .. },
                Some(body),
            ) => {
                let url = format!("{}/auth/tokens", keystone_v3(auth_url));
                let resp = agent
                    .post(&url)
                    .header("Accept", "application/json")
                    .send_json(&body)
                    .map_err(|e| Error::Cloud {
                        message: redact(
                            &format!("Keystone at {url} could not be reached: {e}"),
                            &secrets,
                        ),
                    })?;
                let status = resp.status().as_u16();
                let token = resp
                    .headers()
                    .get("X-Subject-Token")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                let text = resp.into_body().read_to_string().unwrap_or_default();
                if status != 201 && status != 200 {
                    let message = redact(
                        &format!(
                            "Keystone at {url} refused the credentials of cloud `{}` ({status}: {})",
                            cloud.name,
                            body_message(&text)
                        ),
                        &secrets,
                    );
                    return Err(if matches!(status, 400 | 401 | 403 | 404) {
                        Error::Auth { message }
                    } else {
                        Error::Cloud { message }
                    });
                }
                let Some(token) = token else {
                    return Err(Error::Cloud {
                        message: format!("Keystone at {url} answered without a token"),
                    });
                };
                secrets.push(token.clone());
                let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                let endpoint = match &cloud.image_endpoint_override {
                    Some(o) => o.clone(),
                    None => {
                        image_endpoint(v.pointer("/token/catalog").unwrap_or(&Value::Null), cloud)?
                    }
                };
                (Some(Secret::new(token)), endpoint)
            }
            _ => (
                None,
                cloud
                    .image_endpoint_override
                    .clone()
                    .expect("auth_type none has an endpoint (checked when read)"),
            ),
        };
        Ok(Self {
            agent,
            upload_agent,
            image_url: unversioned(&catalog_url),
            token,
            secrets,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}/v2/{path}", self.image_url)
    }

    fn with_token<B>(&self, req: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        let req = req.header("Accept", "application/json");
        match &self.token {
            Some(t) => req.header("X-Auth-Token", t.expose()),
            None => req,
        }
    }

    /// A failed call: what it was, the status and Glance's words, secrets removed.
    fn failed(&self, what: &str, resp: Response<ureq::Body>) -> Error {
        let status = resp.status().as_u16();
        let text = resp.into_body().read_to_string().unwrap_or_default();
        let message = redact(
            &format!("{what}: Glance answered {status}: {}", body_message(&text)),
            &self.secrets,
        );
        match status {
            401 | 403 => Error::Auth { message },
            400..=499 => Error::Refused { status, message },
            _ => Error::Cloud { message },
        }
    }

    fn transport(&self, what: &str, e: &ureq::Error) -> Error {
        Error::Cloud {
            message: redact(
                &format!("{what}: {} could not be reached: {e}", self.image_url),
                &self.secrets,
            ),
        }
    }

    fn read_json(&self, what: &str, resp: Response<ureq::Body>) -> Result<Value, Error> {
        resp.into_body()
            .read_json::<Value>()
            .map_err(|e| self.transport(what, &e))
    }

    /// The images named `name`.
    pub fn images_named(&self, name: &str) -> Result<Vec<Image>, Error> {
        let what = format!("listing the images named `{name}`");
        let resp = self
            .with_token(self.agent.get(self.url("images")))
            .query("name", name)
            .query("limit", "100")
            .call()
            .map_err(|e| self.transport(&what, &e))?;
        if resp.status().as_u16() != 200 {
            return Err(self.failed(&what, resp));
        }
        let v = self.read_json(&what, resp)?;
        Ok(v.get("images")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter_map(Image::from_json)
            .collect())
    }

    /// `POST /v2/images`: the record, `queued`.
    pub fn create(&self, body: &Value) -> Result<Image, Error> {
        let what = "creating the image";
        let resp = self
            .with_token(self.agent.post(self.url("images")))
            .send_json(body)
            .map_err(|e| self.transport(what, &e))?;
        if resp.status().as_u16() != 201 {
            return Err(self.failed(what, resp));
        }
        let v = self.read_json(what, resp)?;
        Image::from_json(v).ok_or_else(|| Error::Cloud {
            message: "creating the image: Glance's answer has no image id".to_owned(),
        })
    }

    /// `PUT /v2/images/{id}/file`, streaming `data` (`size` bytes).
    pub fn upload(&self, id: &str, data: &mut dyn Read, size: u64) -> Result<(), Error> {
        let what = "uploading the image data";
        let resp = self
            .with_token(
                self.upload_agent
                    .put(self.url(&format!("images/{id}/file"))),
            )
            .header("Content-Type", "application/octet-stream")
            .header("Content-Length", size.to_string())
            .header("x-openstack-image-size", size.to_string())
            .send(ureq::SendBody::from_reader(data))
            .map_err(|e| match e {
                ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::Interrupted => {
                    Error::Interrupted
                }
                e => self.transport(what, &e),
            })?;
        if resp.status().as_u16() != 204 {
            return Err(self.failed(what, resp));
        }
        Ok(())
    }

    /// `GET /v2/images/{id}`.
    pub fn get(&self, id: &str) -> Result<Image, Error> {
        let what = format!("reading image {id}");
        let resp = self
            .with_token(self.agent.get(self.url(&format!("images/{id}"))))
            .call()
            .map_err(|e| self.transport(&what, &e))?;
        if resp.status().as_u16() != 200 {
            return Err(self.failed(&what, resp));
        }
        let v = self.read_json(&what, resp)?;
        Image::from_json(v).ok_or_else(|| Error::Cloud {
            message: format!("{what}: Glance's answer has no image"),
        })
    }

    /// Renames an image (a JSON patch).
    pub fn rename(&self, id: &str, name: &str) -> Result<(), Error> {
        let what = format!("renaming image {id} to `{name}`");
        let patch = json!([{ "op": "replace", "path": "/name", "value": name }]);
        let resp = self
            .with_token(self.agent.patch(self.url(&format!("images/{id}"))))
            .header(
                "Content-Type",
                "application/openstack-images-v2.1-json-patch",
            )
            .send(patch.to_string().as_bytes())
            .map_err(|e| self.transport(&what, &e))?;
        if resp.status().as_u16() != 200 {
            return Err(self.failed(&what, resp));
        }
        Ok(())
    }

    /// `DELETE /v2/images/{id}`; an image already gone counts as deleted.
    pub fn delete(&self, id: &str) -> Result<(), Error> {
        let what = format!("deleting image {id}");
        let resp = self
            .with_token(self.agent.delete(self.url(&format!("images/{id}"))))
            .call()
            .map_err(|e| self.transport(&what, &e))?;
        match resp.status().as_u16() {
            204 | 200 | 404 => Ok(()),
            _ => Err(self.failed(&what, resp)),
        }
    }
}

fn agent_for_upload(cloud: &Cloud) -> Result<Agent, Error> {
    agent(cloud, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_taken_off_endpoints() {
        assert_eq!(unversioned("http://g:9292/v2/"), "http://g:9292");
        assert_eq!(unversioned("http://g:9292/v2.1"), "http://g:9292");
        assert_eq!(unversioned("https://c/image"), "https://c/image");
        assert_eq!(keystone_v3("http://k:5000"), "http://k:5000/v3");
        assert_eq!(keystone_v3("http://k:5000/v3/"), "http://k:5000/v3");
    }

    #[test]
    fn error_bodies_become_one_line() {
        assert_eq!(
            body_message(
                "<html><body><h1>415 Unsupported Media Type</h1>\n Image disk_format qcow2 does not match stream data raw<br /><br />\n</body></html>"
            ),
            "415 Unsupported Media Type Image disk_format qcow2 does not match stream data raw"
        );
        assert_eq!(
            body_message(
                r#"{"error": {"code": 401, "message": "The request you have made requires authentication.", "title": "Unauthorized"}}"#
            ),
            "The request you have made requires authentication."
        );
        assert_eq!(
            redact("token abcdef in it", &["abcdef".into()]),
            "token [redacted] in it"
        );
    }
}
