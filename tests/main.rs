//! The one integration test binary: CLI behaviour a user sees.
#![allow(clippy::print_stderr)]

mod build_cli;
mod build_hooks;
mod common;
mod debootstrap_element;
mod deps;
mod grammar;
mod images;
mod lint_cli;
mod lint_rules;
mod lint_upstream;
mod local_image;
mod new;
mod order;
mod order_cli;
mod packages_cli;
mod precommit;
mod props;
mod qcow2;
mod redhat;
mod simple_init;
mod upload_cli;
mod upstream;
