//! Attributes of an Access-Accept, from the provider's reply rules and the accepted user's
//! groups: Class, Filter-Id, Session-Timeout, Idle-Timeout, Framed-IP-Address/-Netmask,
//! Framed-Pool, VLAN assignment (RFC 3580) and vendor attributes.

use super::attributes::{
    AttributeType, TUNNEL_MEDIUM_IEEE_802, TUNNEL_TYPE_VLAN, tagged_integer, vendor_specific,
};
use super::packet::Attribute;
use redoubt_outpost_proto::credentials::VerifiedUser;
use redoubt_outpost_proto::provider::RadiusReplyRule;
use std::net::Ipv4Addr;

/// The attributes for `user` under `rules`, in rule order.
pub fn accept_attributes(rules: &[RadiusReplyRule], user: &VerifiedUser) -> Vec<Attribute> {
    let mut out = Vec::new();
    let mut session_timeout = None;
    let mut idle_timeout = None;
    let mut framed_ip = None;
    let mut netmask = None;
    let mut pool = None;
    let mut vlan = None;
    let applies = |rule: &RadiusReplyRule| {
        rule.group
            .as_ref()
            .is_none_or(|g| user.groups.iter().any(|ug| ug.eq_ignore_ascii_case(g)))
    };
    for rule in rules.iter().filter(|r| applies(r)) {
        if let Some(class) = &rule.class {
            out.push(text(AttributeType::Class, class));
        }
        if let Some(filter) = &rule.filter_id {
            out.push(text(AttributeType::FilterId, filter));
        }
        session_timeout = session_timeout.or(rule.session_timeout);
        idle_timeout = idle_timeout.or(rule.idle_timeout);
        if framed_ip.is_none() {
            framed_ip = framed_address(rule, user);
        }
        netmask = netmask.or_else(|| parse_ipv4(rule.framed_ip_netmask.as_deref()));
        pool = pool.or(rule.framed_pool.as_deref());
        vlan = vlan.or(rule.vlan.as_deref());
        for vsa in &rule.vendor_attributes {
            match vsa.encode_value() {
                Ok(value) => out.push(Attribute {
                    kind: AttributeType::VendorSpecific as u8,
                    value: vendor_specific(vsa.vendor_id, vsa.vendor_type, &value),
                }),
                Err(error) => {
                    tracing::warn!(vendor_id = vsa.vendor_id, %error, "vendor attribute skipped");
                }
            }
        }
    }
    if let Some(seconds) = session_timeout {
        out.push(integer(AttributeType::SessionTimeout, seconds));
    }
    if let Some(seconds) = idle_timeout {
        out.push(integer(AttributeType::IdleTimeout, seconds));
    }
    if let Some(ip) = framed_ip {
        out.push(octets(AttributeType::FramedIpAddress, ip.octets().to_vec()));
    }
    if let Some(mask) = netmask {
        out.push(octets(
            AttributeType::FramedIpNetmask,
            mask.octets().to_vec(),
        ));
    }
    if let Some(pool) = pool {
        out.push(text(AttributeType::FramedPool, pool));
    }
    if let Some(vlan) = vlan {
        out.push(octets(
            AttributeType::TunnelType,
            tagged_integer(TUNNEL_TYPE_VLAN),
        ));
        out.push(octets(
            AttributeType::TunnelMediumType,
            tagged_integer(TUNNEL_MEDIUM_IEEE_802),
        ));
        // RFC 3580: tag 0 and a string; a leading octet above 0x1F is not a tag, so plain
        // text is unambiguous (what FreeRADIUS and most switches send).
        out.push(text(AttributeType::TunnelPrivateGroupId, vlan));
    }
    out
}

fn framed_address(rule: &RadiusReplyRule, user: &VerifiedUser) -> Option<Ipv4Addr> {
    if let Some(ip) = parse_ipv4(rule.framed_ip_address.as_deref()) {
        return Some(ip);
    }
    let name = rule.framed_ip_address_attribute.as_deref()?;
    let value = user.attributes.get(name)?.as_str()?;
    let parsed = value.trim().parse().ok();
    if parsed.is_none() {
        tracing::warn!(user = %user.username, attribute = name, "user attribute is not an IPv4 address; Framed-IP-Address left out");
    }
    parsed
}

fn parse_ipv4(value: Option<&str>) -> Option<Ipv4Addr> {
    value?.trim().parse().ok()
}

fn text(kind: AttributeType, value: &str) -> Attribute {
    octets(kind, value.as_bytes().to_vec())
}

fn integer(kind: AttributeType, value: u32) -> Attribute {
    octets(kind, value.to_be_bytes().to_vec())
}

fn octets(kind: AttributeType, mut value: Vec<u8>) -> Attribute {
    value.truncate(super::packet::MAX_VALUE_LEN);
    Attribute {
        kind: kind as u8,
        value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use redoubt_outpost_proto::provider::{RadiusValueFormat, RadiusVendorAttribute};

    fn user(groups: &[&str]) -> VerifiedUser {
        let mut attributes = serde_json::Map::new();
        attributes.insert("static_ip".into(), "10.9.8.7".into());
        VerifiedUser {
            id: 1,
            username: "alice".into(),
            name: "Alice".into(),
            email: String::new(),
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
            attributes,
            used_totp: false,
        }
    }

    fn find(attributes: &[Attribute], kind: AttributeType) -> Vec<Vec<u8>> {
        attributes
            .iter()
            .filter(|a| a.kind == kind as u8)
            .map(|a| a.value.clone())
            .collect()
    }

    #[test]
    fn rules_apply_by_group_and_first_single_value_wins() {
        let rules = vec![
            RadiusReplyRule {
                group: Some("admins".into()),
                vlan: Some("10".into()),
                session_timeout: Some(600),
                class: Some("admin".into()),
                ..Default::default()
            },
            RadiusReplyRule {
                group: Some("staff".into()),
                vlan: Some("20".into()),
                framed_ip_address_attribute: Some("static_ip".into()),
                vendor_attributes: vec![RadiusVendorAttribute {
                    vendor_id: 14988,
                    vendor_type: 3,
                    format: RadiusValueFormat::String,
                    value: "staff".into(),
                }],
                ..Default::default()
            },
            RadiusReplyRule {
                session_timeout: Some(3600),
                class: Some("everyone".into()),
                ..Default::default()
            },
        ];
        let staff = accept_attributes(&rules, &user(&["Staff"]));
        assert_eq!(
            find(&staff, AttributeType::TunnelPrivateGroupId),
            [b"20".to_vec()]
        );
        assert_eq!(
            find(&staff, AttributeType::SessionTimeout),
            [3600u32.to_be_bytes().to_vec()]
        );
        assert_eq!(find(&staff, AttributeType::Class), [b"everyone".to_vec()]);
        assert_eq!(
            find(&staff, AttributeType::FramedIpAddress),
            [vec![10, 9, 8, 7]]
        );
        assert_eq!(find(&staff, AttributeType::VendorSpecific).len(), 1);
        assert_eq!(find(&staff, AttributeType::TunnelType), [vec![0, 0, 0, 13]]);

        let admin = accept_attributes(&rules, &user(&["admins", "staff"]));
        assert_eq!(
            find(&admin, AttributeType::TunnelPrivateGroupId),
            [b"10".to_vec()]
        );
        assert_eq!(
            find(&admin, AttributeType::SessionTimeout),
            [600u32.to_be_bytes().to_vec()]
        );
        assert_eq!(find(&admin, AttributeType::Class).len(), 2);

        let nobody = accept_attributes(&rules, &user(&[]));
        assert!(find(&nobody, AttributeType::TunnelType).is_empty());
        assert_eq!(find(&nobody, AttributeType::Class), [b"everyone".to_vec()]);
    }
}
