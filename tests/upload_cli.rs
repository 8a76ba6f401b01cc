//! `dibkit upload` and `build --upload` checks that need no cloud: what is refused before
//! anything is sent. The uploads themselves run against a real Glance in tests/glance.rs.

use std::net::TcpListener;

use crate::common::dibkit;

/// A raw file declared qcow2 is refused, and the image service is never contacted.
#[test]
fn a_declared_format_the_content_contradicts_is_refused_before_anything_is_sent() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("clouds.yaml"),
        format!(
            "clouds:\n  local:\n    auth_type: none\n    image_endpoint_override: http://127.0.0.1:{port}\n"
        ),
    )
    .unwrap();
    let raw = dir.path().join("disk.qcow2");
    std::fs::File::create(&raw)
        .unwrap()
        .set_len(1 << 20)
        .unwrap();
    let out = dibkit()
        .current_dir(dir.path())
        .env("HOME", dir.path())
        .args([
            "upload",
            "--cloud",
            "local",
            "--disk-format",
            "qcow2",
            "disk.qcow2",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: disk.qcow2: the content is raw, not the qcow2 given by --disk-format\n  help: convert it (`qemu-img convert -O FORMAT`), or give --disk-format raw; nothing was sent\n"
    );
    assert!(
        listener.accept().is_err(),
        "the image service was contacted"
    );
}

/// A cloud that is not configured fails `build --upload` before anything is built.
#[test]
fn build_upload_to_an_unknown_cloud_fails_before_the_build() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("clouds.yaml"),
        "clouds:\n  mycloud: {auth_type: none, image_endpoint_override: 'http://127.0.0.1:9'}\n",
    )
    .unwrap();
    let out = dibkit()
        .current_dir(dir.path())
        .env("HOME", dir.path())
        .args([
            "build",
            "debian-minimal",
            "vm",
            "-o",
            "x",
            "--upload",
            "nocloud",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("cloud `nocloud` is not in"), "{stderr}");
    assert!(stderr.contains("has: mycloud"), "{stderr}");
    assert!(!dir.path().join("x.log").exists());
}
