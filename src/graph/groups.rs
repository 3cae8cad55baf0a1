//! Entra groups: finding one by name, and its transitive members (users and devices),
//! for `--group` and rows naming a group. Needs `GroupMember.Read.All`.
//! <https://learn.microsoft.com/en-us/graph/api/group-list-transitivemembers>

use serde::Deserialize;

/// The permission group reads need; a 403 saying a permission is missing names it.
pub const GROUP_PERMISSION: &str = "GroupMember.Read.All";

/// A group found by name.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupRef {
    pub id: String,
    pub display_name: Option<String>,
}

/// A transitive member: a user, a device, or a nested group (whose own members are
/// listed too, as transitive members are).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Member {
    User {
        id: String,
        upn: Option<String>,
    },
    /// An Entra device object; `device_id` is its Entra device id, a managed device's
    /// `azureADDeviceId`.
    Device {
        device_id: Option<String>,
    },
    Other,
}

#[derive(Debug, Clone, Default)]
pub struct MembersPage {
    pub members: Vec<Member>,
    pub next_link: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct GroupsBody {
    #[serde(default)]
    pub value: Vec<GroupRef>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MemberBody {
    #[serde(rename = "@odata.type")]
    odata_type: Option<String>,
    #[serde(default)]
    id: String,
    user_principal_name: Option<String>,
    device_id: Option<String>,
}

#[derive(Deserialize)]
struct MembersBody {
    #[serde(default)]
    value: Vec<MemberBody>,
    #[serde(rename = "@odata.nextLink")]
    next_link: Option<String>,
}

/// A `transitiveMembers` page.
pub(crate) fn parse_members(body: &str) -> Option<MembersPage> {
    let page: MembersBody = serde_json::from_str(body).ok()?;
    Some(MembersPage {
        members: page
            .value
            .into_iter()
            .map(|m| match m.odata_type.as_deref() {
                Some("#microsoft.graph.user") => Member::User {
                    id: m.id,
                    upn: m.user_principal_name,
                },
                Some("#microsoft.graph.device") => Member::Device {
                    device_id: m.device_id,
                },
                _ => Member::Other,
            })
            .collect(),
        next_link: page.next_link,
    })
}

/// `displayName eq '...'`, quotes doubled as OData wants.
pub fn name_filter(name: &str) -> String {
    format!("displayName eq '{}'", name.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_are_users_devices_or_neither() {
        let page = parse_members(
            r##"{"value":[
                {"@odata.type":"#microsoft.graph.user","id":"u1","userPrincipalName":"ada@contoso.com"},
                {"@odata.type":"#microsoft.graph.device","id":"o1","deviceId":"d1"},
                {"@odata.type":"#microsoft.graph.group","id":"g2"}],
              "@odata.nextLink":"https://graph.microsoft.com/v1.0/groups/g/transitiveMembers?$skiptoken=x"}"##,
        )
        .unwrap();
        assert_eq!(
            page.members,
            [
                Member::User {
                    id: "u1".into(),
                    upn: Some("ada@contoso.com".into())
                },
                Member::Device {
                    device_id: Some("d1".into())
                },
                Member::Other
            ]
        );
        assert!(page.next_link.is_some());
        assert_eq!(
            name_filter("O'Brien team"),
            "displayName eq 'O''Brien team'"
        );
    }
}
