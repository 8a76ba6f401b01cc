//! Uploading a disk image to OpenStack Glance, as openstacksdk's `create_image` (and so
//! nodepool) does, with the checks it leaves out: the disk format read from the content and a
//! contradicting declaration refused before anything is sent; hashes computed first, so an
//! image already there under the name with the same `owner_specified.openstack.*` hashes is
//! not sent again; the upload streamed, waited on until `active` and checked against
//! Glance's `checksum` and `os_hash_value`; and on any failure after the record is created
//! (an error, a lost connection, an interrupt) that record deleted, retried while the cloud
//! is unreachable.
//!
//! The library never prints: progress goes to the caller as [`Event`]s.
//!
//! - [`cloud`]: clouds.yaml, secure.yaml and the `OS_*` variables;
//! - [`format`]: the disk format and virtual size from the file's content;
//! - [`api`]: the Keystone and Glance calls.

pub mod api;
pub mod cloud;
pub mod format;

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use md5::Md5;
use serde_json::{Value, json};
use sha2::{Digest, Sha256, Sha512};

use api::{Image, Session};
use cloud::Cloud;
use format::{DiskFormat, Inspected};

/// The properties openstacksdk sets, and reads to skip an upload of the same image.
pub const MD5_KEY: &str = "owner_specified.openstack.md5";
pub const SHA256_KEY: &str = "owner_specified.openstack.sha256";
pub const OBJECT_KEY: &str = "owner_specified.openstack.object";

/// Why an upload did not happen or did not finish.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The cloud's configuration is missing or wrong.
    #[error("{message}")]
    Config {
        message: String,
        hint: Option<String>,
    },
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    /// `--disk-format` says one thing, the content another.
    #[error("{}: the content is {found}, not the {declared} given by --disk-format", path.display())]
    FormatMismatch {
        path: PathBuf,
        declared: DiskFormat,
        found: DiskFormat,
    },
    #[error("{}: {problem}", path.display())]
    Unsafe {
        path: PathBuf,
        problem: format::Unsafe,
    },
    /// A property the user gave cannot be set.
    #[error("{message}")]
    Property { message: String },
    /// Other images have the name, and `--replace` was not given.
    #[error("an image named `{name}` is already there with other content ({})", ids.join(", "))]
    Exists { name: String, ids: Vec<String> },
    /// Keystone or Glance refused the credentials or the token.
    #[error("{message}")]
    Auth { message: String },
    /// Glance refused the request (a 4xx other than 401 and 403).
    #[error("{message}")]
    Refused { status: u16, message: String },
    /// The cloud failed: a server error, no answer, a lost connection, a time limit, or an
    /// image that is not what was sent.
    #[error("{message}")]
    Cloud { message: String },
    #[error("interrupted")]
    Interrupted,
}

impl From<cloud::ConfigError> for Error {
    fn from(e: cloud::ConfigError) -> Self {
        Error::Config {
            message: e.message,
            hint: e.hint,
        }
    }
}

/// What was done about the image dibkit created, when the upload failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cleanup {
    /// Nothing had been created.
    Nothing,
    Deleted {
        id: String,
    },
    /// The delete failed too: the image is still there.
    Left {
        id: String,
        reason: String,
    },
}

/// A failed upload: the first error, and what became of the created image.
#[derive(Debug)]
pub struct Failed {
    pub error: Error,
    pub cleanup: Cleanup,
}

impl From<Error> for Failed {
    fn from(error: Error) -> Self {
        Self {
            error,
            cleanup: Cleanup::Nothing,
        }
    }
}

/// What to do with images that already have the name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Replace {
    /// Rename each old image to `NAME.replaced-DATE`.
    Rename,
    /// Delete each old image.
    Delete,
}

/// Properties from the build: the elements tell the distribution and the firmware.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildFacts {
    /// `os_distro`, as dib's `DISTRO_NAME` (debian, ubuntu, fedora, centos, rhel, ...).
    pub os_distro: Option<String>,
    /// Built with `block-device-efi`: `hw_firmware_type=uefi`.
    pub uefi: bool,
    /// Glance's `architecture` (x86_64, aarch64, ...).
    pub architecture: Option<String>,
}

/// dib's operating-system elements and the `DISTRO_NAME` each sets.
const DISTROS: &[(&str, &str)] = &[
    ("debian", "debian"),
    ("debian-minimal", "debian"),
    ("ubuntu", "ubuntu"),
    ("ubuntu-minimal", "ubuntu"),
    ("fedora", "fedora"),
    ("fedora-minimal", "fedora"),
    ("centos", "centos"),
    ("centos-minimal", "centos"),
    ("rhel", "rhel"),
    ("rocky-container", "rocky"),
    ("almalinux-container", "almalinux"),
    ("opensuse", "opensuse"),
    ("opensuse-minimal", "opensuse"),
    ("gentoo", "gentoo"),
    ("openeuler-minimal", "openeuler"),
];

impl BuildFacts {
    /// The facts the element list of a build tells.
    #[must_use]
    pub fn from_elements(elements: &[String], arch: Option<&str>) -> Self {
        let os_distro = elements.iter().find_map(|e| {
            DISTROS
                .iter()
                .find(|(name, _)| name == e)
                .map(|(_, d)| (*d).to_owned())
        });
        let architecture = arch.map(|a| {
            match a {
                "amd64" => "x86_64",
                "arm64" => "aarch64",
                "ppc64el" => "ppc64le",
                other => other,
            }
            .to_owned()
        });
        Self {
            os_distro,
            uefi: elements.iter().any(|e| e == "block-device-efi"),
            architecture,
        }
    }

    /// The facts recorded in the manifest `dibkit build` writes beside an image
    /// (`NAME.manifest.json` for `NAME.qcow2`); `None` when there is none.
    pub fn from_manifest(image: &Path) -> Result<Option<(PathBuf, Self)>, Error> {
        let manifest = image.with_extension("manifest.json");
        let text = match std::fs::read_to_string(&manifest) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(Error::Io {
                    path: manifest,
                    source,
                });
            }
        };
        let v: Value = serde_json::from_str(&text).map_err(|e| Error::Config {
            message: format!("{}:{}: {e}", manifest.display(), e.line()),
            hint: Some("it is the manifest `dibkit build` wrote; rebuild, or move it away".into()),
        })?;
        let elements: Vec<String> = v
            .get("elements")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        Ok(Some((manifest, Self::from_elements(&elements, None))))
    }
}

/// An upload to do.
#[derive(Debug, Clone)]
pub struct Request {
    pub file: PathBuf,
    pub name: String,
    /// `--disk-format`: checked against the content.
    pub disk_format: Option<DiskFormat>,
    /// `--property k=v`, in order; they win over the defaults.
    pub properties: Vec<(String, String)>,
    pub facts: BuildFacts,
    pub replace: Option<Replace>,
    /// How long to wait for `active` after the data is sent.
    pub timeout: Duration,
    /// How long to keep trying to delete a failed upload's image while the cloud is away.
    pub cleanup_timeout: Duration,
}

/// Progress, for the caller to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The file was read: its format and sizes.
    Inspected(Inspected),
    /// Hashing: bytes done of the total.
    Hashing {
        done: u64,
        total: u64,
    },
    Connected {
        image_url: String,
    },
    /// Created, `queued`.
    Created {
        id: String,
        name: String,
    },
    /// Sending: bytes sent of the total.
    Sending {
        sent: u64,
        total: u64,
    },
    /// Waiting for `active`; the status seen.
    Waiting {
        status: String,
    },
    /// An old image of that name renamed, or deleted.
    Renamed {
        id: String,
        to: String,
    },
    Deleted {
        id: String,
    },
    /// The cloud could not be reached to delete the failed upload's image; trying again.
    CleanupRetry {
        id: String,
        reason: String,
    },
}

/// What was done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Uploaded, active, and Glance's hashes are the file's.
    Uploaded {
        id: String,
        format: DiskFormat,
        size: u64,
        md5: String,
        sha256: String,
    },
    /// An active image of that name has the same hashes: nothing was sent.
    Skipped { id: String },
}

/// The file's hashes (hex).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hashes {
    pub md5: String,
    pub sha256: String,
    pub sha512: String,
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

const CHUNK: usize = 1 << 20;

/// md5, sha256 and sha512 of the file, read once in 1 MiB chunks.
pub fn hash_file(
    path: &Path,
    total: u64,
    stop: &AtomicBool,
    events: &mut dyn FnMut(Event),
) -> Result<Hashes, Error> {
    let io_err = |source| Error::Io {
        path: path.to_owned(),
        source,
    };
    let mut f = File::open(path).map_err(io_err)?;
    let (mut md5, mut sha256, mut sha512) = (Md5::new(), Sha256::new(), Sha512::new());
    let mut buf = vec![0; CHUNK];
    let mut done = 0;
    loop {
        if stop.load(Ordering::Relaxed) {
            return Err(Error::Interrupted);
        }
        let n = match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_err(e)),
        };
        // Three hashes of one chunk on two threads: sha512 beside md5 + sha256.
        std::thread::scope(|s| {
            s.spawn(|| sha512.update(&buf[..n]));
            md5.update(&buf[..n]);
            sha256.update(&buf[..n]);
        });
        done += n as u64;
        events(Event::Hashing { done, total });
    }
    Ok(Hashes {
        md5: hex(&md5.finalize()),
        sha256: hex(&sha256.finalize()),
        sha512: hex(&sha512.finalize()),
    })
}

/// Image fields that are not properties; `--property` may not set them (the ones Glance
/// lets a user set have flags, or are set from the file).
const RESERVED: &[&str] = &[
    "id",
    "name",
    "status",
    "disk_format",
    "container_format",
    "checksum",
    "os_hash_algo",
    "os_hash_value",
    "size",
    "virtual_size",
    "owner",
    "created_at",
    "updated_at",
    "file",
    "schema",
    "self",
    "locations",
    "direct_url",
    "tags",
    "stores",
    "os_hidden",
    MD5_KEY,
    SHA256_KEY,
    OBJECT_KEY,
];

/// The body of `POST /v2/images`.
fn create_body(
    req: &Request,
    name: &str,
    inspected: &Inspected,
    hashes: &Hashes,
) -> Result<Value, Error> {
    let mut body = serde_json::Map::new();
    body.insert("name".into(), json!(name));
    body.insert("disk_format".into(), json!(inspected.format.as_str()));
    body.insert("container_format".into(), json!("bare"));
    body.insert("visibility".into(), json!("private"));
    if let Some(v) = inspected.virtual_size {
        body.insert("min_disk".into(), json!(format::min_disk_gib(v)));
    }
    if let Some(d) = &req.facts.os_distro {
        body.insert("os_distro".into(), json!(d));
    }
    if req.facts.uefi {
        body.insert("hw_firmware_type".into(), json!("uefi"));
    }
    if let Some(a) = &req.facts.architecture {
        body.insert("architecture".into(), json!(a));
    }
    body.insert(MD5_KEY.into(), json!(hashes.md5));
    body.insert(SHA256_KEY.into(), json!(hashes.sha256));
    body.insert(OBJECT_KEY.into(), json!(format!("images/{}", req.name)));
    for (k, v) in &req.properties {
        if k.is_empty() || k.len() > 255 || RESERVED.contains(&k.as_str()) {
            return Err(Error::Property {
                message: format!(
                    "--property {k}={v}: `{k}` cannot be set (Glance sets it, or it has a flag)"
                ),
            });
        }
        let value = match k.as_str() {
            "min_disk" | "min_ram" => json!(v.parse::<u64>().map_err(|_| Error::Property {
                message: format!("--property {k}={v}: `{k}` is a whole number (GiB or MiB)"),
            })?),
            "protected" => json!(matches!(v.as_str(), "true" | "True" | "1" | "yes")),
            "visibility" => {
                if !matches!(v.as_str(), "private" | "shared" | "community" | "public") {
                    return Err(Error::Property {
                        message: format!(
                            "--property visibility={v}: one of private, shared, community, public"
                        ),
                    });
                }
                json!(v)
            }
            _ => json!(v),
        };
        body.insert(k.clone(), value);
    }
    Ok(Value::Object(body))
}

/// A reader that reports what was sent and stops on an interrupt.
struct Sending<'a> {
    file: File,
    sent: u64,
    total: u64,
    stop: &'a AtomicBool,
    events: &'a mut dyn FnMut(Event),
    last: u64,
}

impl Read for Sending<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.stop.load(Ordering::Relaxed) {
            return Err(io::Error::other("interrupted"));
        }
        let n = self.file.read(buf)?;
        self.sent += n as u64;
        // Reported every 4 MiB and at the end: the bar need not redraw per buffer.
        if self.sent - self.last >= 4 << 20 || self.sent == self.total || n == 0 {
            self.last = self.sent;
            (self.events)(Event::Sending {
                sent: self.sent,
                total: self.total,
            });
        }
        Ok(n)
    }
}

/// The name an old image gets with `--replace rename`.
fn replaced_name(old: &Image) -> String {
    let when: String = old
        .get("created_at")
        .unwrap_or("")
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect();
    if when.is_empty() {
        format!("{}.replaced-{}", old.name, &old.id[..old.id.len().min(8)])
    } else {
        format!("{}.replaced-{when}", old.name)
    }
}

/// Reads and checks the file: its format against `--disk-format`. Nothing is sent.
pub fn inspect(req: &Request) -> Result<Inspected, Error> {
    let inspected = format::inspect(&req.file)
        .map_err(|source| Error::Io {
            path: req.file.clone(),
            source,
        })?
        .map_err(|problem| Error::Unsafe {
            path: req.file.clone(),
            problem,
        })?;
    if let Some(declared) = req.disk_format {
        if declared != inspected.format {
            return Err(Error::FormatMismatch {
                path: req.file.clone(),
                declared,
                found: inspected.format,
            });
        }
    }
    Ok(inspected)
}

/// Uploads `req.file` to `cloud` as `req.name`.
pub fn upload(
    req: &Request,
    cloud: &Cloud,
    stop: &AtomicBool,
    events: &mut dyn FnMut(Event),
) -> Result<Outcome, Failed> {
    let inspected = inspect(req)?;
    events(Event::Inspected(inspected));
    // Properties are checked before any hashing or network call.
    create_body(
        req,
        &req.name,
        &inspected,
        &Hashes {
            md5: String::new(),
            sha256: String::new(),
            sha512: String::new(),
        },
    )?;
    let hashes = hash_file(&req.file, inspected.file_size, stop, events)?;
    let session = Session::connect(cloud)?;
    events(Event::Connected {
        image_url: session.image_url.clone(),
    });
    let existing = session.images_named(&req.name)?;
    if let Some(same) = existing.iter().find(|i| {
        i.status == "active"
            && i.get(MD5_KEY) == Some(hashes.md5.as_str())
            && i.get(SHA256_KEY) == Some(hashes.sha256.as_str())
    }) {
        return Ok(Outcome::Skipped {
            id: same.id.clone(),
        });
    }
    if !existing.is_empty() && req.replace.is_none() {
        return Err(Error::Exists {
            name: req.name.clone(),
            ids: existing.iter().map(|i| i.id.clone()).collect(),
        }
        .into());
    }
    // With old images to replace, the new one is sent under a name of its own and takes the
    // real one only once it is active and checked: until then the name still means the old.
    let name = if existing.is_empty() {
        req.name.clone()
    } else {
        format!("{}.uploading", req.name)
    };
    if stop.load(Ordering::Relaxed) {
        return Err(Error::Interrupted.into());
    }
    let body = create_body(req, &name, &inspected, &hashes)?;
    let image = session.create(&body)?;
    events(Event::Created {
        id: image.id.clone(),
        name: name.clone(),
    });
    let result = send_and_check(req, &session, &image.id, &inspected, &hashes, stop, events)
        .and_then(|()| {
            for old in &existing {
                match req.replace {
                    Some(Replace::Rename) => {
                        let to = replaced_name(old);
                        session.rename(&old.id, &to)?;
                        events(Event::Renamed {
                            id: old.id.clone(),
                            to,
                        });
                    }
                    Some(Replace::Delete) => {
                        session.delete(&old.id)?;
                        events(Event::Deleted { id: old.id.clone() });
                    }
                    None => {}
                }
            }
            if name != req.name {
                session.rename(&image.id, &req.name)?;
            }
            Ok(())
        });
    match result {
        Ok(()) => Ok(Outcome::Uploaded {
            id: image.id,
            format: inspected.format,
            size: inspected.file_size,
            md5: hashes.md5,
            sha256: hashes.sha256,
        }),
        Err(error) => {
            let error = if stop.load(Ordering::Relaxed) {
                Error::Interrupted
            } else {
                error
            };
            let cleanup = delete_created(&session, &image.id, req.cleanup_timeout, events);
            Err(Failed { error, cleanup })
        }
    }
}

/// Sends the data, waits for `active`, and compares Glance's hashes and size with the file's.
fn send_and_check(
    req: &Request,
    session: &Session,
    id: &str,
    inspected: &Inspected,
    hashes: &Hashes,
    stop: &AtomicBool,
    events: &mut dyn FnMut(Event),
) -> Result<(), Error> {
    let file = File::open(&req.file).map_err(|source| Error::Io {
        path: req.file.clone(),
        source,
    })?;
    let mut reader = Sending {
        file,
        sent: 0,
        total: inspected.file_size,
        stop,
        events,
        last: 0,
    };
    session.upload(id, &mut reader, inspected.file_size)?;
    let events = reader.events;
    let start = Instant::now();
    let mut last_status = String::new();
    let image = loop {
        if stop.load(Ordering::Relaxed) {
            return Err(Error::Interrupted);
        }
        let image = session.get(id)?;
        if image.status != last_status {
            last_status.clone_from(&image.status);
            events(Event::Waiting {
                status: image.status.clone(),
            });
        }
        match image.status.as_str() {
            "active" => break image,
            "queued" | "saving" | "uploading" | "importing" => {}
            other => {
                return Err(Error::Cloud {
                    message: format!("image {id} went `{other}` after the upload"),
                });
            }
        }
        if start.elapsed() > req.timeout {
            return Err(Error::Cloud {
                message: format!(
                    "image {id} is still `{}` after {} s",
                    image.status,
                    req.timeout.as_secs()
                ),
            });
        }
        std::thread::sleep(Duration::from_secs(1));
    };
    let mismatch = |what: &str, theirs: Option<&str>, ours: &str| Error::Cloud {
        message: format!(
            "image {id}: Glance's {what} is {}, the file's {ours}",
            theirs.unwrap_or("missing")
        ),
    };
    if image.get("checksum") != Some(hashes.md5.as_str()) {
        return Err(mismatch(
            "checksum (md5)",
            image.get("checksum"),
            &hashes.md5,
        ));
    }
    match image.get("os_hash_algo") {
        Some("sha512") if image.get("os_hash_value") != Some(hashes.sha512.as_str()) => {
            return Err(mismatch(
                "os_hash_value (sha512)",
                image.get("os_hash_value"),
                &hashes.sha512,
            ));
        }
        Some("sha256") if image.get("os_hash_value") != Some(hashes.sha256.as_str()) => {
            return Err(mismatch(
                "os_hash_value (sha256)",
                image.get("os_hash_value"),
                &hashes.sha256,
            ));
        }
        Some("sha512" | "sha256") => {}
        other => {
            return Err(Error::Cloud {
                message: format!(
                    "image {id}: Glance's os_hash_algo is {}, which dibkit cannot check",
                    other.unwrap_or("missing")
                ),
            });
        }
    }
    if image.size() != Some(inspected.file_size) {
        return Err(Error::Cloud {
            message: format!(
                "image {id}: Glance stored {} bytes, the file has {}",
                image.size().map_or("no".to_owned(), |s| s.to_string()),
                inspected.file_size
            ),
        });
    }
    Ok(())
}

/// Deletes the image a failed upload created; while the cloud cannot be reached (a server
/// restarting), tries again every 2 s for up to `timeout`.
fn delete_created(
    session: &Session,
    id: &str,
    timeout: Duration,
    events: &mut dyn FnMut(Event),
) -> Cleanup {
    let start = Instant::now();
    loop {
        match session.delete(id) {
            Ok(()) => {
                events(Event::Deleted { id: id.to_owned() });
                return Cleanup::Deleted { id: id.to_owned() };
            }
            Err(e @ (Error::Cloud { .. } | Error::Refused { status: 409, .. }))
                if start.elapsed() < timeout =>
            {
                events(Event::CleanupRetry {
                    id: id.to_owned(),
                    reason: e.to_string(),
                });
                std::thread::sleep(Duration::from_secs(2));
            }
            Err(e) => {
                return Cleanup::Left {
                    id: id.to_owned(),
                    reason: e.to_string(),
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_come_from_the_elements() {
        let e: Vec<String> = ["fedora-minimal", "vm", "block-device-efi"]
            .map(String::from)
            .to_vec();
        let f = BuildFacts::from_elements(&e, Some("amd64"));
        assert_eq!(f.os_distro.as_deref(), Some("fedora"));
        assert!(f.uefi);
        assert_eq!(f.architecture.as_deref(), Some("x86_64"));
    }

    #[test]
    fn reserved_properties_are_refused() {
        let req = Request {
            file: PathBuf::from("x"),
            name: "n".into(),
            disk_format: None,
            properties: vec![("checksum".into(), "x".into())],
            facts: BuildFacts::default(),
            replace: None,
            timeout: Duration::from_secs(1),
            cleanup_timeout: Duration::from_secs(1),
        };
        let i = Inspected {
            format: DiskFormat::Raw,
            file_size: 1,
            virtual_size: Some(1),
        };
        let h = Hashes {
            md5: "m".into(),
            sha256: "s".into(),
            sha512: "t".into(),
        };
        assert!(matches!(
            create_body(&req, "n", &i, &h),
            Err(Error::Property { .. })
        ));
        let ok = Request {
            properties: vec![("hw_disk_bus".into(), "virtio".into())],
            ..req
        };
        let body = create_body(&ok, "n", &i, &h).unwrap();
        assert_eq!(body["hw_disk_bus"], "virtio");
        assert_eq!(body["min_disk"], 1);
        assert_eq!(body[OBJECT_KEY], "images/n");
        assert_eq!(body["container_format"], "bare");
    }

    #[test]
    fn hashes_are_the_files() {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), b"abc").unwrap();
        let h = hash_file(f.path(), 3, &AtomicBool::new(false), &mut |_| {}).unwrap();
        assert_eq!(h.md5, "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(
            h.sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(h.sha512.starts_with("ddaf35a193617aba"));
    }
}
