//! dibkit: tools for diskimage-builder element authors.
//!
//! - [`element`]: the element model and discovery (how `order`, `deps`, `packages` and `build`
//!   read elements; `lint` reads its targets through `lint::walk`, keeping bytes and modes);
//! - [`deps`]: dependency expansion, as dib's element-info does it but deterministic;
//! - [`order`]: the hooks-tree and dib-run-parts simulation that yields the execution plan;
//! - [`lint`]: the linter (rules, suppressions, fixes, output formats);
//! - [`packages`]: package-installs and pkg-map semantics;
//! - [`scaffold`]: element skeletons for `dibkit new`;
//! - [`severity`]: the one severity scale of plan problems and lint findings;
//! - [`yaml`], [`shell`]: the YAML and shell readers shared by lint, packages, blockdev and `new`;
//! - [`blockdev`]: the block-device YAML configuration and partition layout;
//! - [`boot`]: booting an image in QEMU to prove it works;
//! - [`cache`]: the cache store (atomic entries, a lock per entry, a size limit);
//! - [`engine`]: the chroot build engine behind `dibkit build` (root only);
//! - [`debootstrap`]: the debootstrap element's local index and cache key;
//! - [`extract`]: an existing qcow2 or raw image extracted into a root tree, cached (the
//!   `local-image` element and the image-based OS elements);
//! - [`upload`]: uploading an image to OpenStack Glance (clouds.yaml, Keystone, Glance v2);
//! - [`error`]: the one failure type and its exit statuses;
//! - [`imagefile`]: dib's YAML image files (schema, merging, the disk-image-create arguments);
//! - [`cli`]: the command line, the only place that writes to the terminal (the engine
//!   reports progress as events, `lint` renders findings to strings).

pub mod blockdev;
pub mod boot;
pub mod cache;
pub mod cli;
pub mod debootstrap;
pub mod deps;
pub mod element;
pub mod engine;
pub mod error;
pub mod extract;
pub mod imagefile;
pub mod lint;
pub mod order;
pub mod packages;
pub mod scaffold;
pub mod severity;
pub mod shell;
pub mod upload;
pub mod yaml;

#[cfg(test)]
mod tests {
    /// build.rs links libgcc's unwinder statically in place of libgcc_s: a panic still
    /// unwinds, runs destructors and is caught (the build's cleanup guards rely on it).
    #[test]
    fn panics_unwind_with_the_static_unwinder() {
        struct Flag<'a>(&'a std::cell::Cell<bool>);
        impl Drop for Flag<'_> {
            fn drop(&mut self) {
                self.0.set(true);
            }
        }
        let dropped = std::cell::Cell::new(false);
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _flag = Flag(&dropped);
            std::panic::resume_unwind(Box::new("unwind"));
        }));
        assert!(caught.is_err());
        assert!(dropped.get());
    }
}
