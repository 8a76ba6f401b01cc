//! The stage functions the step list calls, one module per part of the pipeline: `host`
//! (preflight, build directory, teardown), `prepare` (hooks tree and environment), `phase`
//! (one phase's hooks), `chroot` (entering and leaving the image root), `image` (the disk
//! image) and `export` (outputs and manifest). Each is a verb-named
//! `fn(&mut Build) -> Result<(), Failure>`.

pub mod cache;
pub mod chroot;
pub mod export;
pub mod host;
pub mod image;
pub mod phase;
pub mod prepare;
