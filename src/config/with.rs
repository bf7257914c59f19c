//! Route `when[].path` patterns and `with` templates, shared by `sse-kafka` and
//! `http-filesystem`: a `${params.NAME}` must be captured by every `when` path of its route, and
//! a `${guarded['GUARD']...}` must name a declared guard (and a declared attribute of it).

use super::loader::Loader;
use super::pattern::{PathPattern, Template};
use super::yaml::{Key, Node};

impl<'y, 'e> Loader<'y, 'e> {
    /// `when: [{ path: pattern }, ...]`; `extra` lists further condition keys (refused ones).
    pub fn when_paths(&mut self, when: &[Node<'y>], extra: &[(&str, Key)]) -> Vec<PathPattern> {
        let mut keys = vec![("path", Key::Known)];
        keys.extend_from_slice(extra);
        let mut patterns = Vec::with_capacity(when.len());
        for condition in when {
            let Some(map) = condition.map(&mut self.cx) else {
                continue;
            };
            map.check(&mut self.cx, &keys, "unknown key");
            let Some(node) = map.require(&mut self.cx, "path") else {
                continue;
            };
            let Some(text) = node.string(&mut self.cx) else {
                continue;
            };
            match PathPattern::new(&text) {
                Ok(pattern) => patterns.push(pattern),
                Err(message) => self.cx.error(&node.path, message),
            }
        }
        patterns
    }

    /// A `with` value; `when` are the route's path patterns (all parsed, else the check is
    /// skipped: `when_complete` false).
    pub fn template(
        &mut self,
        node: &Node<'y>,
        when: &[PathPattern],
        when_complete: bool,
    ) -> Option<Template> {
        let text = node.string(&mut self.cx)?;
        let template = match Template::parse(&text) {
            Ok(template) => template,
            Err(message) => {
                self.cx.error(&node.path, message);
                return None;
            }
        };
        let mut ok = true;
        for name in template.param_names() {
            if when.is_empty() && when_complete {
                self.cx.error(
                    &node.path,
                    format!("${{params.{name}}} is not defined: the route has no when path"),
                );
                ok = false;
            } else if let Some(pattern) = when
                .iter()
                .find(|pattern| !pattern.param_names().any(|n| n == name))
            {
                self.cx.error(
                    &node.path,
                    format!(
                        "${{params.{name}}} is not defined by when path {:?}",
                        pattern.as_str()
                    ),
                );
                ok = false;
            }
        }
        ok &= self.check_template_guards(&node.path, &template);
        ok.then_some(template)
    }
}
