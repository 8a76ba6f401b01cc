//! `dibkit upload` against a real Glance (and Keystone) from PyPI, installed under
//! `target/openstack` by `tests/openstack/setup`. Each test starts its own services on
//! 127.0.0.1 (gunicorn, sqlite, a file store in a temporary directory; Glance's
//! unauthenticated pipeline, or Keystone's in front of it) and stops them when it ends.
//!
//! Without the venvs each test prints why it is skipped; `DIBKIT_REQUIRE_OPENSTACK=1` (set by
//! `.ci/run`) makes that a failure.
#![allow(clippy::print_stderr)]

use std::io::Read;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

fn venv(name: &str) -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("target/openstack")
        .join(name);
    if dir.join("bin/gunicorn").exists() {
        return Some(dir);
    }
    assert!(
        std::env::var("DIBKIT_REQUIRE_OPENSTACK").as_deref() != Ok("1"),
        "{} is missing and DIBKIT_REQUIRE_OPENSTACK=1: run tests/openstack/setup",
        dir.display()
    );
    eprintln!(
        "skipping: {} is missing (run tests/openstack/setup)",
        dir.display()
    );
    None
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .new_agent()
}

/// A gunicorn serving one WSGI application from `venv`, in its own process group.
struct Server {
    child: Option<Child>,
    venv: PathBuf,
    dir: PathBuf,
    env: Vec<(String, String)>,
    url: String,
    ready_path: String,
}

impl Server {
    fn start(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("gunicorn.log"))
            .unwrap();
        let mut cmd = Command::new(self.venv.join("bin/gunicorn"));
        // The application comes from gunicorn.conf.py: Keystone reads the command line itself.
        cmd.current_dir(&self.dir)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("HOME", &self.dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .process_group(0);
        self.child = Some(cmd.spawn().unwrap());
        let start = Instant::now();
        let agent = agent();
        loop {
            if let Ok(r) = agent.get(format!("{}{}", self.url, self.ready_path)).call() {
                if r.status().as_u16() < 500 {
                    return;
                }
            }
            assert!(
                start.elapsed() < Duration::from_secs(120),
                "{} did not start; log:\n{}",
                self.url,
                std::fs::read_to_string(self.dir.join("gunicorn.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// SIGKILL to the whole group: the master and its workers, as a crash would.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pgid = nix::unistd::Pid::from_raw(-(i32::try_from(child.id()).unwrap()));
            nix::sys::signal::kill(pgid, nix::sys::signal::Signal::SIGKILL).ok();
            child.wait().ok();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

fn write_gunicorn_conf(dir: &Path, app: &str, port: u16) {
    std::fs::write(
        dir.join("gunicorn.conf.py"),
        format!(
            "wsgi_app = {app:?}\nbind = \"127.0.0.1:{port}\"\nworkers = 1\nthreads = 4\n\
             timeout = 600\ncontrol_socket_disable = True\n"
        ),
    )
    .unwrap();
}

fn run_checked(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A Glance with sqlite and a file store in `dir`: unauthenticated, or validating tokens
/// with `keystone`.
struct Glance {
    server: Server,
}

impl Glance {
    fn start(dir: &Path, keystone: Option<&Keystone>) -> Option<Self> {
        let venv = venv("glance")?;
        let port = free_port();
        for d in ["images", "staging", "tasks"] {
            std::fs::create_dir_all(dir.join(d)).unwrap();
        }
        std::fs::copy(
            venv.join("etc/glance/glance-api-paste.ini"),
            dir.join("glance-api-paste.ini"),
        )
        .unwrap();
        let d = dir.display();
        let auth = match keystone {
            None => "[paste_deploy]\nflavor =\n".to_owned(),
            Some(k) => format!(
                "[paste_deploy]\nflavor = keystone\n[keystone_authtoken]\n\
                 www_authenticate_uri = {url}\nauth_url = {url}\nauth_type = password\n\
                 username = admin\npassword = {pw}\nproject_name = admin\n\
                 user_domain_id = default\nproject_domain_id = default\n",
                url = k.server.url,
                pw = ADMIN_PASSWORD
            ),
        };
        std::fs::write(
            dir.join("glance-api.conf"),
            format!(
                "[DEFAULT]\nenabled_backends = fs:file\n\
                 [database]\nconnection = sqlite:///{d}/glance.sqlite\n\
                 [glance_store]\ndefault_backend = fs\n\
                 [fs]\nfilesystem_store_datadir = {d}/images\n\
                 [os_glance_staging_store]\nfilesystem_store_datadir = {d}/staging\n\
                 [os_glance_tasks_store]\nfilesystem_store_datadir = {d}/tasks\n\
                 [oslo_policy]\nenforce_new_defaults = False\nenforce_scope = False\n{auth}"
            ),
        )
        .unwrap();
        run_checked(
            Command::new(venv.join("bin/glance-manage"))
                .arg("--config-file")
                .arg(dir.join("glance-api.conf"))
                .arg("db_sync"),
        );
        write_gunicorn_conf(dir, "glance.wsgi.api:application", port);
        let mut server = Server {
            child: None,
            venv,
            dir: dir.to_owned(),
            env: vec![("OS_GLANCE_CONFIG_DIR".into(), dir.display().to_string())],
            url: format!("http://127.0.0.1:{port}"),
            ready_path: "/versions".into(),
        };
        server.start();
        Some(Self { server })
    }

    fn url(&self) -> &str {
        &self.server.url
    }

    /// Every image, whatever its status (as an admin sees them; no token needed
    /// unauthenticated).
    fn images(&self, token: Option<&str>) -> Vec<Value> {
        let mut req = agent().get(format!("{}/v2/images", self.url()));
        if let Some(t) = token {
            req = req.header("X-Auth-Token", t);
        }
        let mut resp = req.call().unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        let v: Value = resp.body_mut().read_json().unwrap();
        v["images"].as_array().unwrap().clone()
    }

    fn named(&self, name: &str) -> Vec<Value> {
        self.images(None)
            .into_iter()
            .filter(|i| i["name"] == name)
            .collect()
    }
}

const ADMIN_PASSWORD: &str = "correct-horse-battery-staple";

/// A Keystone with sqlite and fernet keys in `dir`, bootstrapped with an admin in RegionOne.
struct Keystone {
    server: Server,
    token: String,
    user_id: String,
}

impl Keystone {
    fn start(dir: &Path) -> Option<Self> {
        let venv = venv("keystone")?;
        let port = free_port();
        let url = format!("http://127.0.0.1:{port}");
        let d = dir.display();
        for k in ["fernet", "credential"] {
            std::fs::create_dir_all(dir.join(k)).unwrap();
        }
        let conf = dir.join("keystone.conf");
        std::fs::write(
            &conf,
            format!(
                "[database]\nconnection = sqlite:///{d}/keystone.sqlite\n\
                 [fernet_tokens]\nkey_repository = {d}/fernet\n\
                 [fernet_receipts]\nkey_repository = {d}/fernet\n\
                 [credential]\nkey_repository = {d}/credential\n\
                 [token]\nprovider = fernet\n"
            ),
        )
        .unwrap();
        let manage = |args: &[&str]| {
            run_checked(
                Command::new(venv.join("bin/keystone-manage"))
                    .arg("--config-file")
                    .arg(&conf)
                    .args(args),
            );
        };
        let me = nix::unistd::User::from_uid(nix::unistd::getuid())
            .unwrap()
            .unwrap()
            .name;
        let group = nix::unistd::Group::from_gid(nix::unistd::getgid())
            .unwrap()
            .unwrap()
            .name;
        manage(&["db_sync"]);
        for repo in ["fernet_setup", "credential_setup"] {
            manage(&[repo, "--keystone-user", &me, "--keystone-group", &group]);
        }
        let v3 = format!("{url}/v3");
        manage(&[
            "bootstrap",
            "--bootstrap-password",
            ADMIN_PASSWORD,
            "--bootstrap-admin-url",
            &v3,
            "--bootstrap-public-url",
            &v3,
            "--bootstrap-internal-url",
            &v3,
            "--bootstrap-region-id",
            "RegionOne",
        ]);
        write_gunicorn_conf(dir, "keystone.wsgi.api:application", port);
        let mut server = Server {
            child: None,
            venv,
            dir: dir.to_owned(),
            env: vec![
                ("OS_KEYSTONE_CONFIG_DIR".into(), dir.display().to_string()),
                ("OS_KEYSTONE_CONFIG_FILES".into(), "keystone.conf".into()),
            ],
            url,
            ready_path: "/v3".into(),
        };
        server.start();
        let mut resp = agent()
            .post(format!("{}/v3/auth/tokens", server.url))
            .send_json(json!({"auth": {
                "identity": {"methods": ["password"], "password": {"user": {
                    "name": "admin", "domain": {"id": "default"}, "password": ADMIN_PASSWORD}}},
                "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}}))
            .unwrap();
        assert_eq!(resp.status().as_u16(), 201);
        let token = resp.headers()["X-Subject-Token"]
            .to_str()
            .unwrap()
            .to_owned();
        let v: Value = resp.body_mut().read_json().unwrap();
        let user_id = v["token"]["user"]["id"].as_str().unwrap().to_owned();
        Some(Self {
            server,
            token,
            user_id,
        })
    }

    fn post(&self, path: &str, body: &Value) -> Value {
        let mut resp = agent()
            .post(format!("{}/v3/{path}", self.server.url))
            .header("X-Auth-Token", &self.token)
            .send_json(body)
            .unwrap();
        assert_eq!(resp.status().as_u16(), 201, "POST {path}");
        resp.body_mut().read_json().unwrap()
    }

    /// Puts Glance in the catalog: an image service with a public endpoint in `region`.
    fn register_glance(&self, glance: &Glance, region: &str) {
        if region != "RegionOne" {
            self.post("regions", &json!({"region": {"id": region}}));
        }
        let service = self.post(
            "services",
            &json!({"service": {"type": "image", "name": "glance"}}),
        );
        for interface in ["public", "internal"] {
            self.post(
                "endpoints",
                &json!({"endpoint": {"service_id": service["service"]["id"],
                    "interface": interface, "region_id": region, "url": glance.url()}}),
            );
        }
    }

    /// A new application credential of the admin: (id, secret).
    fn application_credential(&self) -> (String, String) {
        let v = self.post(
            &format!("users/{}/application_credentials", self.user_id),
            &json!({"application_credential": {"name": "dibkit-test"}}),
        );
        let c = &v["application_credential"];
        (
            c["id"].as_str().unwrap().to_owned(),
            c["secret"].as_str().unwrap().to_owned(),
        )
    }
}

/// A working directory for `dibkit upload` with this clouds.yaml, and a home without one.
fn workdir(clouds: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    std::fs::write(dir.path().join("clouds.yaml"), clouds).unwrap();
    std::fs::create_dir(dir.path().join("home")).unwrap();
    dir
}

fn local_cloud(glance: &Glance) -> String {
    format!(
        "clouds:\n  local:\n    auth_type: none\n    image_endpoint_override: {}\n",
        glance.url()
    )
}

/// `dibkit` in `dir`, with no OS_* variable of the caller's.
fn dibkit(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dibkit"));
    cmd.current_dir(dir)
        .env("HOME", dir.join("home"))
        .env_remove("XDG_CONFIG_HOME")
        .env("NO_COLOR", "1");
    for (k, _) in std::env::vars() {
        if k.starts_with("OS_") {
            cmd.env_remove(k);
        }
    }
    cmd
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A hash of the file by coreutils (`md5sum`, `sha256sum`, `sha512sum`).
fn sum(tool: &str, file: &Path) -> String {
    let out = Command::new(tool).arg(file).output().unwrap();
    String::from_utf8(out.stdout).unwrap()[..]
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

fn qcow2(path: &Path, size: &str) {
    run_checked(
        Command::new("qemu-img")
            .args(["create", "-q", "-f", "qcow2"])
            .arg(path)
            .arg(size),
    );
    // Some data at the start, so two images made this way can differ.
    let out = Command::new("qemu-io")
        .args(["-f", "qcow2", "-c"])
        .arg(format!(
            "write -P 0x{:02x} 0 64k",
            path.as_os_str().len() % 250 + 1
        ))
        .arg(path)
        .output();
    // qemu-io comes with qemu-utils; the tests still hold without the data.
    drop(out);
}

fn sparse(path: &Path, len: u64, fill: u8) {
    let f = std::fs::File::create(path).unwrap();
    f.set_len(len).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&f, &[fill; 4096], 0).unwrap();
}

#[test]
fn upload_is_active_with_the_files_hashes_and_a_second_upload_is_skipped() {
    let store = tempfile::tempdir().unwrap();
    let Some(glance) = Glance::start(store.path(), None) else {
        return;
    };
    let dir = workdir(&local_cloud(&glance));
    let image = dir.path().join("template-f40-os.qcow2");
    qcow2(&image, "3G");
    // The manifest `dibkit build` writes beside its output gives the build's facts.
    std::fs::write(
        dir.path().join("template-f40-os.manifest.json"),
        r#"{"elements": ["base", "fedora-minimal", "block-device-efi", "vm"]}"#,
    )
    .unwrap();
    let out = dibkit(dir.path())
        .args(["upload", "template-f40-os.qcow2", "--cloud", "local"])
        .args(["--property", "hw_disk_bus=virtio"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let images = glance.named("template-f40-os");
    assert_eq!(images.len(), 1, "{images:?}");
    let i = &images[0];
    assert_eq!(i["status"], "active");
    assert_eq!(i["disk_format"], "qcow2");
    assert_eq!(i["container_format"], "bare");
    assert_eq!(i["visibility"], "private");
    assert_eq!(i["checksum"], sum("md5sum", &image));
    assert_eq!(i["os_hash_algo"], "sha512");
    assert_eq!(i["os_hash_value"], sum("sha512sum", &image));
    assert_eq!(i["size"], std::fs::metadata(&image).unwrap().len());
    assert_eq!(i["min_disk"], 3);
    assert_eq!(i["hw_disk_bus"], "virtio");
    assert_eq!(i["os_distro"], "fedora");
    assert_eq!(i["hw_firmware_type"], "uefi");
    assert_eq!(i["owner_specified.openstack.md5"], sum("md5sum", &image));
    assert_eq!(
        i["owner_specified.openstack.sha256"],
        sum("sha256sum", &image)
    );
    assert_eq!(
        i["owner_specified.openstack.object"],
        "images/template-f40-os"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(i["id"].as_str().unwrap()), "{stdout}");

    // The same file again: nothing is sent, and it says so.
    let again = dibkit(dir.path())
        .args(["upload", "--cloud", "local", "--name", "template-f40-os"])
        .arg(&image)
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    assert!(
        String::from_utf8_lossy(&again.stdout).starts_with(&format!(
            "skipped: image {} named `template-f40-os`",
            i["id"].as_str().unwrap()
        )),
        "{}",
        text(&again)
    );
    assert!(!String::from_utf8_lossy(&again.stderr).contains("created image"));
    assert_eq!(glance.images(None).len(), 1);
}

#[test]
fn a_taken_name_is_refused_unless_replace_renames_or_deletes_the_old_image() {
    let store = tempfile::tempdir().unwrap();
    let Some(glance) = Glance::start(store.path(), None) else {
        return;
    };
    let dir = workdir(&local_cloud(&glance));
    let (a, b, c) = (
        dir.path().join("a.raw"),
        dir.path().join("b.raw"),
        dir.path().join("c.raw"),
    );
    sparse(&a, 1 << 20, 1);
    sparse(&b, 1 << 20, 2);
    sparse(&c, 1 << 20, 3);
    let upload = |file: &Path, replace: Option<&str>| {
        let mut cmd = dibkit(dir.path());
        cmd.args(["upload", "--cloud", "local", "--name", "worker"])
            .arg(file);
        if let Some(r) = replace {
            cmd.args(["--replace", r]);
        }
        cmd.output().unwrap()
    };
    let first = upload(&a, None);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    let old_id = glance.named("worker")[0]["id"].clone();

    let refused = upload(&b, None);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(
        String::from_utf8_lossy(&refused.stderr)
            .contains("an image named `worker` is already there with other content"),
        "{}",
        text(&refused)
    );
    assert_eq!(glance.images(None).len(), 1, "nothing was created");

    let renamed = upload(&b, Some("rename"));
    assert_eq!(renamed.status.code(), Some(0), "{}", text(&renamed));
    let now = glance.named("worker");
    assert_eq!(now.len(), 1);
    assert_eq!(now[0]["checksum"], sum("md5sum", &b));
    let all = glance.images(None);
    assert_eq!(all.len(), 2);
    let old = all.iter().find(|i| i["id"] == old_id).unwrap();
    assert!(
        old["name"]
            .as_str()
            .unwrap()
            .starts_with("worker.replaced-"),
        "{old}"
    );
    assert_eq!(old["status"], "active");

    let deleted = upload(&c, Some("delete"));
    assert_eq!(deleted.status.code(), Some(0), "{}", text(&deleted));
    let now = glance.named("worker");
    assert_eq!(now.len(), 1);
    assert_eq!(now[0]["checksum"], sum("md5sum", &c));
    let all = glance.images(None);
    assert_eq!(all.len(), 2, "b's image is deleted, a's renamed one stays");
    assert!(all.iter().any(|i| i["id"] == old_id));
}

#[test]
fn content_glance_refuses_is_deleted_and_a_declared_format_the_content_contradicts_is_never_sent() {
    let store = tempfile::tempdir().unwrap();
    let Some(glance) = Glance::start(store.path(), None) else {
        return;
    };
    let dir = workdir(&local_cloud(&glance));
    let raw = dir.path().join("disk.qcow2");
    sparse(&raw, 8 << 20, 0);
    let out = dibkit(dir.path())
        .args(["upload", "--cloud", "local", "--disk-format", "qcow2"])
        .arg(&raw)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("the content is raw, not the qcow2 given by --disk-format"),
        "{}",
        text(&out)
    );
    assert!(glance.images(None).is_empty());

    // A file that starts like a qcow2 but is not one passes dibkit's check and reaches
    // Glance, whose format inspector refuses it: the record dibkit made must not stay queued.
    let fake = dir.path().join("fake.qcow2");
    let mut header = b"QFI\xfb\0\0\0\x03".to_vec();
    header.extend([0; 16]);
    header.extend((1_u64 << 30).to_be_bytes());
    std::fs::write(&fake, [header, vec![0xAB; 1 << 20]].concat()).unwrap();
    let out = dibkit(dir.path())
        .args(["upload", "--cloud", "local"])
        .arg(&fake)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    assert!(stderr.contains("was deleted"), "{}", text(&out));
    assert!(glance.images(None).is_empty(), "{:?}", glance.images(None));
}

/// Waits until Glance shows an image receiving data (`saving`).
fn wait_saving(glance: &Glance, child: &mut Child) {
    let start = Instant::now();
    loop {
        if glance.images(None).iter().any(|i| i["status"] == "saving") {
            return;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "dibkit ended before the upload was under way"
        );
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no upload started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn finish(child: Child) -> Output {
    child.wait_with_output().unwrap()
}

#[test]
fn a_server_killed_mid_upload_leaves_no_queued_image_once_it_is_back() {
    let store = tempfile::tempdir().unwrap();
    let Some(mut glance) = Glance::start(store.path(), None) else {
        return;
    };
    let dir = workdir(&local_cloud(&glance));
    let big = dir.path().join("big.raw");
    sparse(&big, 1 << 30, 7);
    let mut child = dibkit(dir.path())
        .args(["upload", "--cloud", "local", "--name", "big"])
        .arg(&big)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_saving(&glance, &mut child);
    glance.server.kill();
    std::thread::sleep(Duration::from_secs(3));
    glance.server.start();
    let out = finish(child);
    assert_eq!(out.status.code(), Some(7), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("could not delete image"), "{}", text(&out));
    assert!(stderr.contains("was deleted"), "{}", text(&out));
    assert!(glance.images(None).is_empty(), "{:?}", glance.images(None));
}

#[test]
fn an_interrupt_mid_upload_deletes_the_image() {
    let store = tempfile::tempdir().unwrap();
    let Some(glance) = Glance::start(store.path(), None) else {
        return;
    };
    let dir = workdir(&local_cloud(&glance));
    let big = dir.path().join("big.raw");
    sparse(&big, 1 << 30, 9);
    let mut child = dibkit(dir.path())
        .args(["upload", "--cloud", "local"])
        .arg(&big)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_saving(&glance, &mut child);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap()),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let out = finish(child);
    assert_eq!(out.status.code(), Some(130), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("was deleted"),
        "{}",
        text(&out)
    );
    assert!(glance.images(None).is_empty(), "{:?}", glance.images(None));
}

/// The peak resident memory of a process (`VmHWM`), sampled until it ends.
fn peak_rss_kib(mut child: Child) -> (Output, u64) {
    let status_path = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut b = Vec::new();
        stdout.read_to_end(&mut b).ok();
        b
    });
    let err_reader = std::thread::spawn(move || {
        let mut b = Vec::new();
        stderr.read_to_end(&mut b).ok();
        b
    });
    while child.try_wait().unwrap().is_none() {
        if let Ok(s) = std::fs::read_to_string(&status_path) {
            if let Some(kib) = s
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            {
                peak = peak.max(kib);
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = child.wait().unwrap();
    (
        Output {
            status,
            stdout: out_reader.join().unwrap(),
            stderr: err_reader.join().unwrap(),
        },
        peak,
    )
}

#[test]
fn a_1_gib_sparse_image_uploads_in_bounded_memory() {
    let store = tempfile::tempdir().unwrap();
    let Some(glance) = Glance::start(store.path(), None) else {
        return;
    };
    let dir = workdir(&local_cloud(&glance));
    let big = dir.path().join("sparse.raw");
    sparse(&big, 1 << 30, 5);
    let child = dibkit(dir.path())
        .args(["upload", "--cloud", "local"])
        .arg(&big)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (out, peak_kib) = peak_rss_kib(child);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    eprintln!("peak RSS of dibkit upload of a 1 GiB image: {peak_kib} KiB");
    assert!(
        peak_kib > 0 && peak_kib < 64 * 1024,
        "dibkit used {peak_kib} KiB to upload 1 GiB"
    );
    let images = glance.named("sparse");
    assert_eq!(images[0]["status"], "active");
    assert_eq!(images[0]["size"], 1_u64 << 30);
    assert_eq!(images[0]["os_hash_value"], sum("sha512sum", &big));
}

#[test]
fn keystone_password_and_application_credential_find_glance_in_the_catalog() {
    let ks_dir = tempfile::tempdir().unwrap();
    let Some(keystone) = Keystone::start(ks_dir.path()) else {
        return;
    };
    let store = tempfile::tempdir().unwrap();
    let Some(glance) = Glance::start(store.path(), Some(&keystone)) else {
        return;
    };
    keystone.register_glance(&glance, "RegionTwo");
    // Glance validates tokens with Keystone: no token, no answer.
    let anonymous = agent()
        .get(format!("{}/v2/images", glance.url()))
        .call()
        .unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);

    let (cred_id, cred_secret) = keystone.application_credential();
    let ks = &keystone.server.url;
    let dir = workdir(&format!(
        "clouds:\n  pw:\n    auth:\n      auth_url: {ks}\n      username: admin\n      \
         project_name: admin\n      user_domain_name: Default\n      project_domain_id: default\n    \
         region_name: RegionTwo\n    interface: public\n  \
         appcred:\n    auth_type: v3applicationcredential\n    auth:\n      auth_url: {ks}/v3\n      \
         application_credential_id: {cred_id}\n      application_credential_secret: {cred_secret}\n    \
         region_name: RegionTwo\n  \
         wrong:\n    auth:\n      auth_url: {ks}\n      username: admin\n      password: not-the-{ADMIN_PASSWORD}\n      \
         project_name: admin\n    region_name: RegionTwo\n  \
         elsewhere:\n    auth:\n      auth_url: {ks}\n      username: admin\n      password: {ADMIN_PASSWORD}\n      \
         project_name: admin\n    region_name: Nowhere\n"
    ));
    // The password lives in secure.yaml, merged over clouds.yaml.
    std::fs::write(
        dir.path().join("secure.yaml"),
        format!("clouds:\n  pw:\n    auth:\n      password: {ADMIN_PASSWORD}\n"),
    )
    .unwrap();
    let image = dir.path().join("ks.raw");
    sparse(&image, 2 << 20, 4);
    let secrets = [
        ADMIN_PASSWORD,
        cred_secret.as_str(),
        keystone.token.as_str(),
    ];
    let clean = |out: &Output| {
        let t = text(out);
        for s in &secrets {
            assert!(!t.contains(s), "a secret is in the output:\n{t}");
        }
    };

    let pw = dibkit(dir.path())
        .args(["upload", "--cloud", "pw", "--name", "by-password"])
        .arg(&image)
        .output()
        .unwrap();
    assert_eq!(pw.status.code(), Some(0), "{}", text(&pw));
    clean(&pw);
    assert!(
        String::from_utf8_lossy(&pw.stderr).contains(&format!("image service: {}", glance.url()))
    );

    let cred = dibkit(dir.path())
        .args(["upload", "--name", "by-credential"])
        .arg(&image)
        .env("OS_CLOUD", "appcred")
        .output()
        .unwrap();
    assert_eq!(cred.status.code(), Some(0), "{}", text(&cred));
    clean(&cred);

    // The plain OS_* variables, with the internal interface.
    let vars = dibkit(dir.path())
        .args(["upload", "--name", "by-variables"])
        .arg(&image)
        .env("OS_AUTH_URL", ks)
        .env("OS_USERNAME", "admin")
        .env("OS_PASSWORD", ADMIN_PASSWORD)
        .env("OS_PROJECT_NAME", "admin")
        .env("OS_USER_DOMAIN_ID", "default")
        .env("OS_PROJECT_DOMAIN_ID", "default")
        .env("OS_REGION_NAME", "RegionTwo")
        .env("OS_INTERFACE", "internal")
        .output()
        .unwrap();
    assert_eq!(vars.status.code(), Some(0), "{}", text(&vars));
    clean(&vars);

    let wrong = dibkit(dir.path())
        .args(["upload", "--cloud", "wrong"])
        .arg(&image)
        .output()
        .unwrap();
    assert_eq!(wrong.status.code(), Some(6), "{}", text(&wrong));
    clean(&wrong);
    assert!(
        String::from_utf8_lossy(&wrong.stderr).contains("refused the credentials of cloud `wrong`"),
        "{}",
        text(&wrong)
    );
    assert!(!text(&wrong).contains("not-the-"), "{}", text(&wrong));

    // A region the catalog does not have: a configuration error naming what it has.
    let region = dibkit(dir.path())
        .args(["upload", "--cloud", "elsewhere"])
        .arg(&image)
        .output()
        .unwrap();
    assert_eq!(region.status.code(), Some(2), "{}", text(&region));
    assert!(
        String::from_utf8_lossy(&region.stderr)
            .contains("no public image endpoint in region Nowhere in the catalog (it has: public in RegionTwo, internal in RegionTwo)"),
        "{}",
        text(&region)
    );

    let names: Vec<String> = glance
        .images(Some(&keystone.token))
        .iter()
        .map(|i| i["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names.len(), 3, "{names:?}");
    for n in ["by-password", "by-credential", "by-variables"] {
        assert!(names.iter().any(|x| x == n), "{names:?}");
    }
}
