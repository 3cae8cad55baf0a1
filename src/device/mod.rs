//! The device domain: the facts a job row or Graph gives of a device ([`Column`],
//! [`DeviceFields`]) and its ids ([`parse_guid`]).
//!
//! Core module, at the bottom of the house: it imports no other module of the crate.

mod columns;
mod fields;
mod ids;

pub use columns::{Column, is_entra_device_list, match_entra_header, normalize};
pub use fields::DeviceFields;
pub use ids::{NIL_GUID, parse_guid};
