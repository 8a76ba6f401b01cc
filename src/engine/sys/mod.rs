//! The only place with system calls: mounts, chroot entry and signals. Everything here is
//! owned by guards that undo it in reverse order, on success, error or interruption.
#![allow(unsafe_code)]

pub mod fs;
pub mod lock;
pub mod mount;
pub mod proc;
pub mod random;
