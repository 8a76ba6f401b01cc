//! Elements: the model (`model`), where they are found (`discover`), their metadata formats
//! (`parse`) and the embedded built-in library (`builtin`).

pub(crate) mod builtin;
pub mod discover;
pub mod model;
pub mod parse;
