//! Advisory whole-file locks (`flock`): a lock belongs to the open file, so it is released
//! when the holder closes it or dies, however it ends (SIGKILL included). The hook scripts'
//! `flock(1)` takes the same locks.

use std::fs::{File, OpenOptions};
use std::path::Path;

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

/// Shared (readers) or exclusive (a writer, or eviction).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Shared,
    Exclusive,
}

/// A held lock; dropping it releases it.
#[derive(Debug)]
pub struct Lock(#[allow(dead_code)] Flock<File>);

fn open(path: &Path) -> Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening the lock file {}", path.display()))
}

/// Waits for the lock on `path` (created when absent).
///
/// # Errors
/// The file cannot be opened or locked.
pub fn lock(path: &Path, mode: Mode) -> Result<Lock> {
    let arg = match mode {
        Mode::Shared => FlockArg::LockShared,
        Mode::Exclusive => FlockArg::LockExclusive,
    };
    loop {
        match Flock::lock(open(path)?, arg) {
            Ok(l) => return Ok(Lock(l)),
            Err((_, Errno::EINTR)) => {}
            Err((_, e)) => return Err(e).with_context(|| format!("locking {}", path.display())),
        }
    }
}

/// The lock on `path` if nobody holds it now; `None` when someone does.
///
/// # Errors
/// The file cannot be opened or locked for another reason.
pub fn try_lock(path: &Path, mode: Mode) -> Result<Option<Lock>> {
    let arg = match mode {
        Mode::Shared => FlockArg::LockSharedNonblock,
        Mode::Exclusive => FlockArg::LockExclusiveNonblock,
    };
    match Flock::lock(open(path)?, arg) {
        Ok(l) => Ok(Some(Lock(l))),
        Err((_, Errno::EWOULDBLOCK)) => Ok(None),
        Err((_, e)) => Err(e).with_context(|| format!("locking {}", path.display())),
    }
}
