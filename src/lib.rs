//! dibkit: tools for diskimage-builder element authors.
//!
//! - [`element`]: the element model and discovery (the only reader of element files);
//! - [`deps`]: dependency expansion, as dib's element-info does it but deterministic;
//! - [`order`]: the hooks-tree and dib-run-parts simulation that yields the execution plan;
//! - [`lint`]: the linter (rules, suppressions, fixes, output formats);
//! - [`packages`]: package-installs and pkg-map semantics;
//! - [`scaffold`]: element skeletons for `dibkit new`;
//! - [`blockdev`]: the block-device YAML configuration and partition layout;
//! - [`boot`]: booting an image in QEMU to prove it works;
//! - [`build`]: the chroot build engine (root only);
//! - [`debootstrap`]: the debootstrap element's local index and cache key;
//! - [`cli`]: the command line, the only place that writes to the terminal.

pub mod blockdev;
pub mod boot;
pub mod build;
pub mod cli;
pub mod debootstrap;
pub mod deps;
pub mod element;
pub mod lint;
pub mod order;
pub mod packages;
pub mod scaffold;
