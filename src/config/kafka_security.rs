//! SASL credentials of a kafka `client` binding: `options.authorization` (2.x: one guard, its
//! `credentials` with `mechanism` and `username`/`password` or `token`), or the 1.x
//! `options.sasl: { mechanism, username, password }`.
//!
//! A value exactly `{identity}` or `{credentials}` is the named `inline` guard's
//! `options.identity` / `options.credentials` (any other string is used as written, as Zilla
//! does); a guard without that value is a configuration error (Zilla would send the template
//! text itself).

use std::sync::Arc;

use super::guard::InlineGuard;
use super::loader::Loader;
use super::plan::{SaslMechanism, SaslPlan};
use super::yaml::{Key, Map};

impl<'y, 'e> Loader<'y, 'e> {
    /// The SASL plan of kafka client binding `idx` from its `options` (`None`: no SASL, or an
    /// error already reported).
    pub fn kafka_sasl(&mut self, idx: usize, options: &Map<'y>) -> Option<Arc<SaslPlan>> {
        match (options.get("authorization"), options.get("sasl")) {
            (Some(_), Some(sasl)) => {
                self.cx.error(
                    &sasl.path,
                    "give either options.authorization or the older options.sasl, not both",
                );
                None
            }
            (Some(auth), None) => {
                let map = auth.map(&mut self.cx)?;
                let entries = map.entries(&mut self.cx);
                let [(name, entry)] = &entries[..] else {
                    self.cx.error(
                        &auth.path,
                        format!("expected exactly one guard, found {}", entries.len()),
                    );
                    return None;
                };
                let guard = self.inline_guard(&entry.path, name);
                let entry = entry.map(&mut self.cx)?;
                entry.check(&mut self.cx, &[("credentials", Key::Known)], "unknown key");
                let credentials = entry
                    .require(&mut self.cx, "credentials")?
                    .map(&mut self.cx)?;
                let plan = self.read_credentials(&credentials, guard.as_ref(), name, true);
                guard.and(plan)
            }
            (None, Some(sasl)) => {
                let map = sasl.map(&mut self.cx)?;
                self.read_credentials(&map, None, "", false)
            }
            (None, None) => {
                let _ = idx;
                None
            }
        }
    }

    /// An `inline` guard named by `options.authorization`.
    fn inline_guard(&mut self, path: &str, name: &str) -> Option<InlineGuard> {
        if let Some((_, guard)) = self.inline_guards.iter().find(|(n, _)| n == name) {
            return Some(guard.clone());
        }
        if self.guards.iter().any(|g| g.name == name) {
            self.cx.error(
                path,
                format!(
                    "guard {name:?} is not an inline guard: broker credentials come from an \
                     inline guard (type: inline, options.identity, options.credentials)"
                ),
            );
        } else if !self.guard_names.iter().any(|n| n == name) {
            self.cx.error(path, format!("unknown guard {name:?}"));
        }
        None
    }

    /// `{ mechanism, username, password }` or `{ mechanism: oauthbearer, token }`.
    fn read_credentials(
        &mut self,
        map: &Map<'y>,
        guard: Option<&InlineGuard>,
        guard_name: &str,
        oauth_allowed: bool,
    ) -> Option<Arc<SaslPlan>> {
        map.check(
            &mut self.cx,
            &[
                ("mechanism", Key::Known),
                ("username", Key::Known),
                ("password", Key::Known),
                ("token", Key::Known),
            ],
            "unknown key",
        );
        let mechanism = self.sasl_mechanism(map, oauth_allowed)?;
        let value = |this: &mut Self, key: &str| this.credential(map, key, guard, guard_name);
        let (username, secret) = if mechanism == SaslMechanism::OAuthBearer {
            for key in ["username", "password"] {
                if map.get(key).is_some() {
                    self.cx
                        .error(&map.key_path(key), "not used by oauthbearer (give token)");
                }
            }
            (String::new(), value(self, "token")?)
        } else {
            if map.get("token").is_some() {
                self.cx
                    .error(&map.key_path("token"), "only for mechanism oauthbearer");
            }
            let username = value(self, "username");
            let password = value(self, "password");
            (username?, password?)
        };
        Some(Arc::new(SaslPlan {
            mechanism,
            username,
            secret,
            scram_cache: Default::default(),
        }))
    }

    /// `mechanism`: one we speak (oauthbearer only where a guard gives the token).
    fn sasl_mechanism(&mut self, map: &Map<'y>, oauth_allowed: bool) -> Option<SaslMechanism> {
        let mechanism_node = map.require(&mut self.cx, "mechanism")?;
        let name = mechanism_node.string(&mut self.cx)?;
        match SaslMechanism::from_config(&name) {
            Some(SaslMechanism::OAuthBearer) if !oauth_allowed => {
                self.cx.error(
                    &mechanism_node.path,
                    "oauthbearer is not in options.sasl: use options.authorization with an \
                     inline guard and token",
                );
                None
            }
            Some(m) => Some(m),
            None => {
                self.cx.error(
                    &mechanism_node.path,
                    format!(
                        "mechanism {name:?} not supported (plain, scram-sha-1, scram-sha-256, \
                         scram-sha-512{})",
                        if oauth_allowed { ", oauthbearer" } else { "" }
                    ),
                );
                None
            }
        }
    }

    /// A required credential `key`; `{identity}` and `{credentials}` stand for the inline
    /// guard's options of those names.
    fn credential(
        &mut self,
        map: &Map<'y>,
        key: &str,
        guard: Option<&InlineGuard>,
        guard_name: &str,
    ) -> Option<String> {
        let node = map.require(&mut self.cx, key)?;
        let text = node.string(&mut self.cx)?;
        let (field, wanted) = match text.as_str() {
            "{identity}" => ("identity", guard.map(|g| g.identity.clone())),
            "{credentials}" => ("credentials", guard.map(|g| g.credentials.clone())),
            _ => return Some(text),
        };
        match wanted {
            Some(Some(v)) => Some(v),
            Some(None) => {
                self.cx.error(
                    &node.path,
                    format!(
                        "{text}: guard {guard_name:?} has no options.{field} (it would be \
                         sent as the literal text)"
                    ),
                );
                None
            }
            // 1.x `sasl`: no guard, the text is the value (as Zilla).
            None => Some(text),
        }
    }
}
