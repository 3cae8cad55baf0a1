//! The one integration test binary (ripgrep's layout): each area is a module.

mod sim;
