//! Bounded listings (issue 17, point 7): every paged read follows `@odata.nextLink`
//! through one [`Paging`] guard, which stops it when a link names a page this listing already
//! read (Graph's paging went in a circle) or when it runs past a page count no real
//! tenant reaches. A listing that never ends would otherwise be followed forever, its
//! rows piling up in memory, while nothing is sent.
//!
//! What a stopped listing means is the caller's, as for any listing that fails: the
//! tenant's inventory is dropped and each row is looked up by `$filter`; a lookup fails
//! its row; an expansion (`--where`, `--all-devices`, a user's or a group's devices) fails
//! its job row, and none of the devices it had listed so far is acted on.

use std::collections::HashSet;
use std::fmt;

/// The most pages a listing may take, and why no real tenant needs more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageLimit {
    pub pages: u32,
    /// Why that many is enough, for the sentence when it is not.
    pub why: &'static str,
}

/// The tenant's managed devices (`--lookup-via inventory`, `--where`, `--all-devices`),
/// asked 1,000 a page (`$top=1000`, the page docs/graph.md gives for `managedDevices`).
/// Microsoft publishes no Intune device limit per tenant, but a tenant's Entra ID holds
/// 300,000 objects by default
/// (<https://learn.microsoft.com/en-us/entra/identity/users/directory-service-limits-restrictions>),
/// and every Entra-joined or registered managed device is one of them. 3,000 pages hold
/// those 300,000 even if Graph shrank its pages to 100, and three million devices at the
/// 1,000 asked: no real tenant reaches the limit, a listing that never ends does.
pub const TENANT_PAGES: PageLimit = PageLimit {
    pages: 3_000,
    why: "3,000 pages hold three million devices at 1,000 a page, ten times the 300,000 objects an Entra ID tenant holds by default",
};

/// A user's managed devices: a standard user enrolls at most 15, a device enrollment
/// manager at most 1,000
/// (<https://learn.microsoft.com/en-us/mem/intune/enrollment/device-enrollment-manager-enroll>).
/// Graph does not document the page size of `users/{id}/managedDevices`: 100 pages hold
/// those 1,000 even at 10 a page.
pub const USER_PAGES: PageLimit = PageLimit {
    pages: 100,
    why: "100 pages hold the 1,000 devices a device enrollment manager may enroll, the most one user can have, even at 10 a page",
};

/// A lookup by one serial number, name, IMEI or Entra device id: it matches a handful of
/// devices, so a lookup that needs `pages` pages means Graph ignored the filter and is
/// listing the tenant (docs/graph.md, "Finding devices").
pub fn lookup_pages(pages: usize) -> PageLimit {
    PageLimit {
        pages: u32::try_from(pages).unwrap_or(u32::MAX).max(1),
        why: "a lookup by one value matches a handful of devices; Graph may have ignored the filter",
    }
}

/// A group's transitive members, 100 a page (Graph's default for `transitiveMembers`):
/// 300,000 members, every object of a tenant at Entra ID's default quota (see
/// [`TENANT_PAGES`]).
pub const GROUP_PAGES: PageLimit = PageLimit {
    pages: 3_000,
    why: "300,000 members at 100 a page, every object an Entra ID tenant holds by default",
};

/// One listing being read: the links it followed and the pages it read. Every paged
/// read of the crate goes through one, so a listing has one set of rules.
#[derive(Debug)]
pub struct Paging {
    /// What is listed, in the user's words (`the devices of user ada@contoso.com`).
    what: String,
    limit: PageLimit,
    /// Pages read so far.
    pages: u32,
    /// Every `@odata.nextLink` followed: one seen again is a circle.
    followed: HashSet<String>,
}

impl Paging {
    pub fn new(what: impl Into<String>, limit: PageLimit) -> Paging {
        Paging {
            what: what.into(),
            limit,
            pages: 0,
            followed: HashSet::new(),
        }
    }

    /// Takes the `@odata.nextLink` of the page just read: the link to read next, `None`
    /// when the listing is whole, or why it must stop here.
    pub fn after_page(&mut self, next: Option<String>) -> Result<Option<String>, ListingCut> {
        self.pages += 1;
        let Some(next) = next else {
            return Ok(None);
        };
        let cut = |cause| ListingCut {
            what: self.what.clone(),
            pages: self.pages,
            cause,
        };
        if self.followed.contains(&next) {
            return Err(cut(Cause::Circle));
        }
        if self.pages >= self.limit.pages {
            return Err(cut(Cause::TooLong(self.limit)));
        }
        self.followed.insert(next.clone());
        Ok(Some(next))
    }

    /// Pages read so far.
    pub fn pages(&self) -> u32 {
        self.pages
    }
}

/// Why a listing was stopped before its end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cause {
    /// A nextLink named a page this listing had already read.
    Circle,
    /// The listing still had more pages after its limit.
    TooLong(PageLimit),
}

/// A listing that could not be read whole: what was listed, how far it got, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListingCut {
    pub what: String,
    pub pages: u32,
    pub cause: Cause,
}

impl fmt::Display for ListingCut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pages = match self.pages {
            1 => "1 page".to_owned(),
            n => format!("{n} pages"),
        };
        match &self.cause {
            Cause::Circle => write!(
                f,
                "the listing of {} was not read whole: after {pages}, Graph's @odata.nextLink named a page already read, so its paging goes in a circle",
                self.what
            ),
            Cause::TooLong(limit) => write!(
                f,
                "the listing of {} was not read whole: it still had more after {pages} ({})",
                self.what, limit.why
            ),
        }
    }
}

impl std::error::Error for ListingCut {}

#[cfg(test)]
mod tests {
    use super::*;

    const TINY: PageLimit = PageLimit {
        pages: 3,
        why: "three pages",
    };

    #[test]
    fn a_listing_ends_when_a_page_has_no_next_link() {
        let mut listing = Paging::new("x", TINY);
        assert_eq!(listing.after_page(Some("a".into())), Ok(Some("a".into())));
        assert_eq!(listing.after_page(None), Ok(None));
        assert_eq!(listing.pages(), 2);
    }

    #[test]
    fn a_next_link_seen_before_stops_the_listing() {
        let mut listing = Paging::new("the devices of user ada", TINY);
        assert_eq!(listing.after_page(Some("a".into())), Ok(Some("a".into())));
        let cut = listing.after_page(Some("a".into())).unwrap_err();
        assert_eq!(cut.cause, Cause::Circle);
        assert_eq!(cut.pages, 2);
        let text = cut.to_string();
        assert!(text.contains("the devices of user ada"), "{text}");
        assert!(text.contains("circle"), "{text}");
    }

    #[test]
    fn a_listing_past_its_limit_stops_naming_the_limit() {
        let mut listing = Paging::new("all devices", TINY);
        assert!(listing.after_page(Some("1".into())).is_ok());
        assert!(listing.after_page(Some("2".into())).is_ok());
        let cut = listing.after_page(Some("3".into())).unwrap_err();
        assert_eq!(cut.cause, Cause::TooLong(TINY));
        assert!(cut.to_string().contains("after 3 pages (three pages)"));
        // The last page may end the listing exactly at the limit.
        let mut listing = Paging::new("all devices", TINY);
        listing.after_page(Some("1".into())).unwrap();
        listing.after_page(Some("2".into())).unwrap();
        assert_eq!(listing.after_page(None), Ok(None));
    }
}
