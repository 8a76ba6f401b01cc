//! dibkit: tools for diskimage-builder element authors.
//!
//! - [`element`]: the element model and discovery (how `order`, `deps`, `packages` and `build`
//!   read elements; `lint` reads its targets through `lint::walk`, keeping bytes and modes);
//! - [`deps`]: dependency expansion, as dib's element-info does it but deterministic;
//! - [`order`]: the hooks-tree and dib-run-parts simulation that yields the execution plan;
//! - [`lint`]: the linter (rules, suppressions, fixes, output formats);
//! - [`packages`]: package-installs and pkg-map semantics;
//! - [`scaffold`]: element skeletons for `dibkit new`;
//! - [`blockdev`]: the block-device YAML configuration and partition layout;
//! - [`boot`]: booting an image in QEMU to prove it works;
//! - [`build`]: the chroot build engine (root only);
//! - [`debootstrap`]: the debootstrap element's local index and cache key;
//! - [`cli`]: the command line. It writes the output; besides it only the build's progress
//!   line does (`lint` renders findings to strings, the library never prints).

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
