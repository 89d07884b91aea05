//! Checks across connectors: each verified domain has one authority, linking needs one (and
//! a source that cannot be recycled), and group namespaces that may collide are pointed out.

use super::connector_kinds::{ConnectorKind, GoogleGroupName, KindSettings};
use super::parties::ConnectorConfig;
use super::tree::{Problem, Reader, index, join};

/// Checks across connectors: each verified domain has one authority, linking needs one,
/// and group namespaces that may collide are pointed out.
pub(super) fn check_connectors(
    r: &mut Reader,
    warnings: &mut Vec<Problem>,
    connectors: &[ConnectorConfig],
) {
    let mut owner: std::collections::HashMap<&str, &str> = Default::default();
    for (i, c) in connectors.iter().enumerate() {
        let path = index("connectors", i);
        for (j, d) in c.verified_email_domains.iter().enumerate() {
            if let Some(first) = owner.insert(&d.domain, &c.id)
                && first != c.id
            {
                r.problem(
                    index(&join(&path, "verified_email_domains"), j),
                    format!(
                        "`{}` is already verified by connector `{first}`: a domain has one authority, or either IdP could sign in as the other's users",
                        d.domain
                    ),
                );
            }
        }
        if c.link_by_email && c.verified_email_domains.is_empty() {
            r.problem(
                join(&path, "link_by_email"),
                "needs verified_email_domains: only addresses in domains this connector is the authority for are linked",
            );
        }
        if c.link_by_email && c.kind == ConnectorKind::Github {
            r.problem(
                join(&path, "link_by_email"),
                "is refused for github: an address GitHub verified once stays verified after its owner loses the mailbox (a recycled address would link to its new owner's subject)",
            );
        }
        if c.link_by_email && c.kind == ConnectorKind::Azure {
            warnings.push(Problem {
                path: join(&path, "link_by_email"),
                message: "Entra ID links only sign-ins whose token carries `xms_edov: true` (add the optional claim in the app registration); others keep a per-connector subject".into(),
            });
        }
        if let KindSettings::Google(g) = &c.settings {
            if g.group_name == GoogleGroupName::Name {
                warnings.push(Problem {
                    path: join(&path, "group_name"),
                    message: "a Google group's name is chosen by its owners and not unique; prefer email or email_local_part".into(),
                });
            }
            if g.directory.is_some() && g.hosted_domains.is_empty() {
                warnings.push(Problem {
                    path: join(&path, "hosted_domains"),
                    message: "any Google account signs in; people of a Workspace the directory admin does not run get no Directory groups".into(),
                });
            }
        }
        if c.groups.trust_display_names {
            warnings.push(Problem {
                path: join(&path, "groups.trust_display_names"),
                message: "group names come from Graph displayName, which is not unique and which any user can choose for a Microsoft 365 group; prefer `map` with object ids".into(),
            });
        }
    }
    for (i, a) in connectors.iter().enumerate() {
        for b in connectors.iter().skip(i + 1) {
            let same_prefix = a
                .groups
                .prefix
                .as_ref()
                .map(|p| (p, &a.groups.prefix_separator))
                == b.groups
                    .prefix
                    .as_ref()
                    .map(|p| (p, &b.groups.prefix_separator));
            if same_prefix && !(a.groups.shared_namespace && b.groups.shared_namespace) {
                warnings.push(Problem {
                    path: join(&index("connectors", i), "groups.prefix"),
                    message: format!(
                        "connectors `{}` and `{}` can emit the same group names, which clients cannot tell apart; give each a prefix, or set groups.shared_namespace: true on both if that is intended",
                        a.id, b.id
                    ),
                });
            }
        }
    }
}
