//! Route patterns and value templates, compiled once at load and matched per request.
//!
//! * [`Glob`]: Zilla's wildcard syntax for header values, sse paths and kafka topics: `*` is any
//!   run of characters, everything else is literal (Zilla leaves regex metacharacters other than
//!   `.` unescaped; we treat them literally). Full match.
//! * [`PathPattern`]: sse-kafka and http-filesystem `when.path`: `*` and `{name}` captures, full
//!   match, greedy like Java's `(?<name>.+)` / `.*` with backtracking, but decided by a table in
//!   O(len(path) × tokens), so hostile paths cannot make it exponential.
//! * [`Template`]: `with` values holding `${params.NAME}`, `${guarded['GUARD'].identity}` and
//!   `${guarded['GUARD'].attributes.NAME}`, resolved in a single pass.

use std::fmt;

// ---------------------------------------------------------------------------------------------
// Glob

/// A `*` wildcard pattern matched against the whole input.
#[derive(Clone, PartialEq, Eq)]
pub struct Glob {
    source: Box<str>,
    /// The literal pieces around the `*`s: one more than the number of stars.
    pieces: Vec<Box<str>>,
    /// `:path` condition: also match the input with a trailing `?query` (Zilla appends
    /// `(\?.*)?` to a `:path` pattern that does not end in `*`).
    query_tolerant: bool,
}

impl Glob {
    /// A pattern matched against the whole input.
    pub fn new(pattern: &str) -> Glob {
        Glob {
            source: pattern.into(),
            pieces: pattern.split('*').map(Into::into).collect(),
            query_tolerant: false,
        }
    }

    /// An http `:path` condition: when the pattern does not end in `*`, an input made of a
    /// match followed by `?anything` matches too.
    pub fn path(pattern: &str) -> Glob {
        Glob {
            query_tolerant: !pattern.ends_with('*'),
            ..Glob::new(pattern)
        }
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// No `*`: the pattern matches exactly one string (ignoring a tolerated query).
    pub fn is_literal(&self) -> bool {
        self.pieces.len() == 1
    }

    pub fn matches(&self, input: &str) -> bool {
        let bytes = input.as_bytes();
        let first: &str = &self.pieces[0];
        if !input.starts_with(first) {
            return false;
        }
        if self.pieces.len() == 1 {
            return bytes.len() == first.len()
                || (self.query_tolerant && bytes[first.len()] == b'?');
        }
        // Place the middle pieces leftmost (greedy leftmost placement is optimal for `*`
        // globs), then check the last piece against each candidate end.
        let mut pos = first.len();
        let last: &str = &self.pieces[self.pieces.len() - 1];
        for middle in &self.pieces[1..self.pieces.len() - 1] {
            match input[pos..].find(&**middle) {
                Some(at) => pos += at + middle.len(),
                None => return false,
            }
        }
        let fits = |end: usize| end >= pos + last.len() && input[..end].ends_with(last);
        if fits(bytes.len()) {
            return true;
        }
        self.query_tolerant
            && bytes
                .iter()
                .enumerate()
                .any(|(at, &b)| b == b'?' && fits(at))
    }
}

impl fmt::Debug for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Glob({:?})", self.source)
    }
}

// ---------------------------------------------------------------------------------------------
// PathPattern

#[derive(Clone, Debug, PartialEq, Eq)]
enum PathToken {
    Literal(Box<str>),
    /// `*`: any run of characters, possibly empty.
    Star,
    /// `{name}`: one or more characters; the index into `PathPattern::names`.
    Param(usize),
}

/// A `when.path` pattern with `*` and `{name}` captures.
#[derive(Clone, PartialEq, Eq)]
pub struct PathPattern {
    source: Box<str>,
    tokens: Vec<PathToken>,
    names: Vec<Box<str>>,
}

/// The captures of a [`PathPattern`] match: parameter name → raw (not percent-decoded) value.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Params<'p> {
    entries: Vec<(&'p str, &'p str)>,
}

impl<'p> Params<'p> {
    pub fn new() -> Params<'p> {
        Params::default()
    }

    pub fn get(&self, name: &str) -> Option<&'p str> {
        self.entries
            .iter()
            .find(|(n, _)| *n == name)
            .map(|&(_, value)| value)
    }

    /// `(name, value)` in pattern order.
    #[cfg(test)]
    pub fn iter(&self) -> impl Iterator<Item = (&'p str, &'p str)> + '_ {
        self.entries.iter().copied()
    }

    pub fn clear(&mut self) {
        self.entries.clear();
    }
}

fn is_param_char(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

impl PathPattern {
    pub fn new(pattern: &str) -> Result<PathPattern, String> {
        let mut tokens = Vec::new();
        let mut names: Vec<Box<str>> = Vec::new();
        let mut literal = String::new();
        let mut rest = pattern;
        while let Some(c) = rest.chars().next() {
            match c {
                '*' => {
                    flush_literal(&mut literal, &mut tokens);
                    tokens.push(PathToken::Star);
                    rest = &rest[1..];
                }
                '{' => {
                    let at = pattern.len() - rest.len();
                    let name_len = rest[1..]
                        .find(|c: char| !is_param_char(c))
                        .unwrap_or(rest.len() - 1);
                    if name_len == 0 || !rest[1 + name_len..].starts_with('}') {
                        return Err(format!(
                            "malformed parameter at byte {at}: expected {{name}} with a name of \
                             letters and '_'"
                        ));
                    }
                    let name = &rest[1..1 + name_len];
                    if names.iter().any(|n| &**n == name) {
                        return Err(format!("parameter {{{name}}} appears twice"));
                    }
                    flush_literal(&mut literal, &mut tokens);
                    tokens.push(PathToken::Param(names.len()));
                    names.push(name.into());
                    rest = &rest[name_len + 2..];
                }
                _ => {
                    literal.push(c);
                    rest = &rest[c.len_utf8()..];
                }
            }
        }
        flush_literal(&mut literal, &mut tokens);
        Ok(PathPattern {
            source: pattern.into(),
            tokens,
            names,
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The `{name}` parameters in pattern order.
    pub fn param_names(&self) -> impl Iterator<Item = &str> {
        self.names.iter().map(|n| &**n)
    }

    /// Whether the whole `path` matches; on success `params` holds the captures (greedy, leftmost
    /// first, as Java's backtracking regex would choose them). `params` is cleared first.
    pub fn match_path<'p>(&'p self, path: &'p str, params: &mut Params<'p>) -> bool {
        params.clear();
        if let [PathToken::Literal(literal)] = &self.tokens[..] {
            return path == &**literal;
        }
        if self.tokens.is_empty() {
            return path.is_empty();
        }
        let table = Feasible::build(&self.tokens, path);
        if !table.get(0, 0) {
            return false;
        }
        let mut pos = 0;
        for (k, token) in self.tokens.iter().enumerate() {
            match token {
                PathToken::Literal(literal) => pos += literal.len(),
                PathToken::Star => pos = table.last_set(k + 1, pos),
                PathToken::Param(index) => {
                    let end = table.last_set(k + 1, pos + 1);
                    params.entries.push((&self.names[*index], &path[pos..end]));
                    pos = end;
                }
            }
        }
        debug_assert_eq!(pos, path.len());
        true
    }

    #[cfg(test)]
    pub fn matches(&self, path: &str) -> bool {
        self.match_path(path, &mut Params::new())
    }
}

fn flush_literal(literal: &mut String, tokens: &mut Vec<PathToken>) {
    if !literal.is_empty() {
        tokens.push(PathToken::Literal(std::mem::take(literal).into()));
    }
}

impl fmt::Debug for PathPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PathPattern({:?})", self.source)
    }
}

/// `rows[k]` is the set of byte positions `pos` (char boundaries of the path) from which
/// `tokens[k..]` match `path[pos..]` entirely; one bit per position.
struct Feasible {
    words: usize,
    bits: Vec<u64>,
}

impl Feasible {
    fn build(tokens: &[PathToken], path: &str) -> Feasible {
        let n = path.len();
        let words = (n + 1).div_ceil(64);
        let mut table = Feasible {
            words,
            bits: vec![0; (tokens.len() + 1) * words],
        };
        table.set(tokens.len(), n);
        for k in (0..tokens.len()).rev() {
            match &tokens[k] {
                PathToken::Literal(literal) => {
                    let len = literal.len();
                    let mut q = n + 1;
                    while let Some(next) = table.prev_set(k + 1, q) {
                        q = next;
                        if next >= len && path[next - len..].starts_with(&**literal) {
                            table.set(k, next - len);
                        }
                    }
                }
                token @ (PathToken::Star | PathToken::Param(_)) => {
                    // `*` may match nothing; `{name}` needs at least one character.
                    let may_be_empty = *token == PathToken::Star;
                    // Whether some q > pos is feasible for tokens[k + 1..].
                    let mut after = false;
                    for pos in (0..=n).rev() {
                        let here = table.get(k + 1, pos);
                        let feasible = after || (may_be_empty && here);
                        if feasible && path.is_char_boundary(pos) {
                            table.set(k, pos);
                        }
                        after |= here;
                    }
                }
            }
        }
        table
    }

    fn get(&self, row: usize, pos: usize) -> bool {
        self.bits[row * self.words + pos / 64] & (1 << (pos % 64)) != 0
    }

    fn set(&mut self, row: usize, pos: usize) {
        self.bits[row * self.words + pos / 64] |= 1 << (pos % 64);
    }

    /// The largest set position `< below` in `row`.
    fn prev_set(&self, row: usize, below: usize) -> Option<usize> {
        if below == 0 {
            return None;
        }
        let line = &self.bits[row * self.words..(row + 1) * self.words];
        let top = below - 1;
        let mut word = top / 64;
        let mut mask = if top % 64 == 63 {
            u64::MAX
        } else {
            (1u64 << (top % 64 + 1)) - 1
        };
        loop {
            let masked = line[word] & mask;
            if masked != 0 {
                return Some(word * 64 + 63 - masked.leading_zeros() as usize);
            }
            if word == 0 {
                return None;
            }
            word -= 1;
            mask = u64::MAX;
        }
    }

    /// The largest set position `>= from` in `row`; one exists whenever the walk calls this.
    fn last_set(&self, row: usize, from: usize) -> usize {
        let found = self
            .prev_set(row, self.words * 64)
            .expect("feasible row has a set position");
        debug_assert!(found >= from);
        found
    }
}

// ---------------------------------------------------------------------------------------------
// Template

#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    Literal(Box<str>),
    Param(Box<str>),
    Identity { guard: Box<str> },
    Attribute { guard: Box<str>, name: Box<str> },
}

/// A `with` value (`topic`, filter `key` and header values, http-filesystem `path`) parsed
/// into literal and `${...}` segments once at load.
#[derive(Clone, PartialEq, Eq)]
pub struct Template {
    source: Box<str>,
    segments: Vec<Segment>,
}

/// What a guard knows about the request's session (JWT: `sub` or the `identity` claim, and the
/// mapped `attributes`).
pub trait Guarded {
    fn identity(&self, guard: &str) -> Option<&str>;
    fn attribute(&self, guard: &str, name: &str) -> Option<&str>;
}

/// No guard on the request: every `${guarded[...]}` resolves to the empty string (as Zilla).
pub struct NoGuard;

impl Guarded for NoGuard {
    fn identity(&self, _guard: &str) -> Option<&str> {
        None
    }

    fn attribute(&self, _guard: &str, _name: &str) -> Option<&str> {
        None
    }
}

impl Template {
    /// Parses `${params.NAME}`, `${guarded['GUARD'].identity}` and
    /// `${guarded['GUARD'].attributes.NAME}` (double quotes accepted in the brackets); any other
    /// `${...}` is an error.
    pub fn parse(text: &str) -> Result<Template, String> {
        let mut segments = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            if start > 0 {
                segments.push(Segment::Literal(rest[..start].into()));
            }
            let after = &rest[start + 2..];
            let Some(close) = after.find('}') else {
                return Err(format!(
                    "unterminated `${{` at byte {}",
                    text.len() - rest.len() + start
                ));
            };
            let inner = &after[..close];
            segments.push(parse_expression(inner).ok_or_else(|| {
                format!(
                    "malformed `${{{inner}}}`: expected ${{params.NAME}}, \
                     ${{guarded['GUARD'].identity}} or ${{guarded['GUARD'].attributes.NAME}}"
                )
            })?);
            rest = &after[close + 1..];
        }
        if !rest.is_empty() {
            segments.push(Segment::Literal(rest.into()));
        }
        Ok(Template {
            source: text.into(),
            segments,
        })
    }

    /// The template as written (`${params.id}`).
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Resolves to the same value for every request.
    #[cfg(test)]
    pub fn is_static(&self) -> bool {
        self.as_static().is_some()
    }

    /// The value when the template has no `${...}`.
    pub fn as_static(&self) -> Option<&str> {
        match &self.segments[..] {
            [] => Some(""),
            [Segment::Literal(text)] => Some(text),
            _ => None,
        }
    }

    /// The `${params.NAME}` names used.
    pub fn param_names(&self) -> impl Iterator<Item = &str> {
        self.segments.iter().filter_map(|s| match s {
            Segment::Param(name) => Some(&**name),
            _ => None,
        })
    }

    /// The guard names used by `${guarded['GUARD']...}`.
    pub fn guard_names(&self) -> impl Iterator<Item = &str> {
        self.segments.iter().filter_map(|s| match s {
            Segment::Identity { guard } | Segment::Attribute { guard, .. } => Some(&**guard),
            _ => None,
        })
    }

    /// The `(GUARD, NAME)` pairs of `${guarded['GUARD'].attributes.NAME}` used.
    pub fn guard_attributes(&self) -> impl Iterator<Item = (&str, &str)> {
        self.segments.iter().filter_map(|s| match s {
            Segment::Attribute { guard, name } => Some((&**guard, &**name)),
            _ => None,
        })
    }

    /// Appends the value to `out`. Single pass: substituted values are never re-scanned, so a
    /// path segment that reads `${params.x}` stays literal. Missing values are empty (as Zilla).
    pub fn resolve(&self, params: &Params<'_>, guarded: &dyn Guarded, out: &mut String) {
        for segment in &self.segments {
            let value = match segment {
                Segment::Literal(text) => Some(&**text),
                Segment::Param(name) => params.get(name),
                Segment::Identity { guard } => guarded.identity(guard),
                Segment::Attribute { guard, name } => guarded.attribute(guard, name),
            };
            out.push_str(value.unwrap_or(""));
        }
    }

    /// [`Template::resolve`] into a new string.
    pub fn resolve_to_string(&self, params: &Params<'_>, guarded: &dyn Guarded) -> String {
        let mut out = String::new();
        self.resolve(params, guarded, &mut out);
        out
    }
}

impl fmt::Debug for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Template({:?})", self.source)
    }
}

/// Zilla's guard and attribute name syntax: `[a-zA-Z][a-zA-Z0-9._:-]*`.
fn is_guard_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-'))
}

fn parse_expression(inner: &str) -> Option<Segment> {
    if let Some(name) = inner.strip_prefix("params.") {
        return (!name.is_empty() && name.chars().all(is_param_char))
            .then(|| Segment::Param(name.into()));
    }
    let quoted = inner.strip_prefix("guarded[")?;
    let quote = quoted.chars().next().filter(|c| matches!(c, '\'' | '"'))?;
    let quoted = &quoted[1..];
    let end = quoted.find(quote)?;
    let guard = &quoted[..end];
    let member = quoted[end + 1..].strip_prefix(']')?;
    if !is_guard_name(guard) {
        return None;
    }
    if member == ".identity" {
        return Some(Segment::Identity {
            guard: guard.into(),
        });
    }
    let name = member.strip_prefix(".attributes.")?;
    is_guard_name(name).then(|| Segment::Attribute {
        guard: guard.into(),
        name: name.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn captures(pattern: &str, path: &str) -> Option<Vec<(String, String)>> {
        let pattern = PathPattern::new(pattern).unwrap();
        let mut params = Params::new();
        pattern.match_path(path, &mut params).then(|| {
            params
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect()
        })
    }

    fn pairs(list: &[(&str, &str)]) -> Option<Vec<(String, String)>> {
        Some(
            list.iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn glob_literal_and_wildcards() {
        let g = Glob::new("/events");
        assert!(g.is_literal());
        assert!(g.matches("/events"));
        assert!(!g.matches("/events/"));
        assert!(!g.matches("/event"));
        assert!(!g.matches("/events?x=1"));

        let g = Glob::new("/events/*");
        assert!(g.matches("/events/"));
        assert!(g.matches("/events/a/b"));
        assert!(!g.matches("/events"));

        let g = Glob::new("*");
        assert!(g.matches(""));
        assert!(g.matches("anything"));

        let g = Glob::new("a*b*c");
        assert!(g.matches("abc"));
        assert!(g.matches("axxbyyc"));
        assert!(g.matches("abcbc"));
        assert!(!g.matches("ac"));
        assert!(!g.matches("abca"));

        let g = Glob::new("a*a");
        assert!(!g.matches("a"));
        assert!(g.matches("aa"));
        assert!(g.matches("aba"));
    }

    #[test]
    fn glob_is_literal_for_regex_metacharacters() {
        let g = Glob::new("items.v1+(x)");
        assert!(g.matches("items.v1+(x)"));
        assert!(!g.matches("itemsXv1+(x)"));
        assert!(!g.matches("items.v11(x)"));
        assert!(Glob::new("a?c").matches("a?c"));
        assert!(!Glob::new("a?c").matches("abc"));
        assert!(Glob::new("[ab]").matches("[ab]"));
    }

    #[test]
    fn glob_path_tolerates_query() {
        let g = Glob::path("/events");
        assert!(g.matches("/events"));
        assert!(g.matches("/events?access_token=x"));
        assert!(g.matches("/events?"));
        assert!(!g.matches("/events/x"));
        assert!(!g.matches("/eventsx?y"));

        let g = Glob::path("/events/*/tail");
        assert!(g.matches("/events/a/tail"));
        assert!(g.matches("/events/a/tail?x"));
        assert!(g.matches("/events/a?b/tail?x"));
        assert!(g.matches("/events/a/tail?x/tail"));
        assert!(!g.matches("/events/a/tailx"));
        assert!(!g.matches("/events/tail?x"));

        // Ending in `*` already covers any query.
        let g = Glob::path("/events/*");
        assert!(g.matches("/events/x?y"));
        assert!(!g.matches("/events?y"));
    }

    #[test]
    fn path_pattern_greedy_captures() {
        assert_eq!(
            captures("/{topic}/{key}/{tag}", "/a/b/c/d"),
            pairs(&[("topic", "a/b"), ("key", "c"), ("tag", "d")])
        );
        assert_eq!(
            captures("/{topic}", "/events"),
            pairs(&[("topic", "events")])
        );
        assert_eq!(captures("/{topic}", "/a/b"), pairs(&[("topic", "a/b")]));
        assert_eq!(
            captures("/{a}{b}", "/xyz"),
            pairs(&[("a", "xy"), ("b", "z")])
        );
        assert_eq!(
            captures("/events/{key}/{tag}", "/events/k1/t1"),
            pairs(&[("key", "k1"), ("tag", "t1")])
        );
        assert_eq!(
            captures("/{a}-{b}", "/x-y-z"),
            pairs(&[("a", "x-y"), ("b", "z")])
        );
        // Not percent-decoded.
        assert_eq!(
            captures("/{a}", "/Some%20%2f%20Path"),
            pairs(&[("a", "Some%20%2f%20Path")])
        );
        // Multi-byte characters stay whole.
        assert_eq!(captures("/{a}{b}", "/éé"), pairs(&[("a", "é"), ("b", "é")]));
    }

    #[test]
    fn path_pattern_star_and_literal_dot() {
        assert_eq!(captures("/events/*", "/events/"), pairs(&[]));
        assert_eq!(captures("/events/*", "/events/a/b"), pairs(&[]));
        assert_eq!(captures("*/{x}", "/a/b/c"), pairs(&[("x", "c")]));
        assert_eq!(captures("/{x}*", "/abc"), pairs(&[("x", "abc")]));
        assert_eq!(captures("/{x}.json", "/a.b.json"), pairs(&[("x", "a.b")]));
        assert_eq!(captures("/{x}.json", "/aXjson"), None);
    }

    #[test]
    fn path_pattern_no_match() {
        assert_eq!(captures("/{topic}", "/"), None);
        assert_eq!(captures("/{topic}", "events"), None);
        assert_eq!(captures("/{a}/{b}", "/a/"), None);
        assert_eq!(captures("/{a}/{b}", "/ab"), None);
        assert_eq!(captures("/events", "/events/"), None);
        assert_eq!(captures("/events", "/events"), pairs(&[]));
        assert_eq!(captures("", ""), pairs(&[]));
        assert_eq!(captures("", "/"), None);
        assert!(PathPattern::new("/{a}/x").unwrap().matches("/a/b/x"));
    }

    #[test]
    fn path_pattern_syntax_errors() {
        assert!(PathPattern::new("/{").is_err());
        assert!(PathPattern::new("/{}").is_err());
        assert!(PathPattern::new("/{a-b}").is_err());
        assert!(PathPattern::new("/{a1}").is_err());
        assert!(PathPattern::new("/{a}/{a}").is_err());
        let p = PathPattern::new("/x}/{a_B}").unwrap();
        assert_eq!(p.param_names().collect::<Vec<_>>(), ["a_B"]);
        assert!(p.matches("/x}/v"));
    }

    #[test]
    fn path_pattern_hostile_path_is_fast() {
        let pattern = PathPattern::new("/{a}/{b}/{c}/{d}x").unwrap();
        let hostile = "/".repeat(8 * 1024);
        let started = Instant::now();
        for _ in 0..10 {
            assert!(!pattern.matches(&hostile));
        }
        let mut near = "/a".repeat(4 * 1024);
        near.push('y');
        assert!(!pattern.matches(&near));
        near.pop();
        near.push('x');
        let mut params = Params::new();
        assert!(pattern.match_path(&near, &mut params));
        assert_eq!(params.get("d"), Some("a"));
        assert_eq!(params.get("c"), Some("a"));
        assert_eq!(params.get("b"), Some("a"));
        assert_eq!(params.get("a").unwrap().len(), 4 * 1024 * 2 - 7);
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "took {:?}",
            started.elapsed()
        );
    }

    /// Java's backtracking order: each `*` / `{name}` tries the longest run first.
    fn naive<'p>(tokens: &[PathToken], path: &'p str, out: &mut Vec<&'p str>) -> bool {
        let Some((token, rest)) = tokens.split_first() else {
            return path.is_empty();
        };
        match token {
            PathToken::Literal(literal) => {
                path.starts_with(&**literal) && naive(rest, &path[literal.len()..], out)
            }
            PathToken::Star | PathToken::Param(_) => {
                let min = usize::from(matches!(token, PathToken::Param(_)));
                for end in (min..=path.len()).rev() {
                    if !path.is_char_boundary(end) {
                        continue;
                    }
                    let mark = out.len();
                    if matches!(token, PathToken::Param(_)) {
                        out.push(&path[..end]);
                    }
                    if naive(rest, &path[end..], out) {
                        return true;
                    }
                    out.truncate(mark);
                }
                false
            }
        }
    }

    #[test]
    fn path_pattern_agrees_with_backtracking() {
        // A small deterministic generator (xorshift) keeps the test reproducible.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n) as usize
        };
        let pieces = ["/", "a", "b", "*", "{p}", "ab"];
        let (mut matched, mut captured) = (0, 0);
        for _ in 0..3000 {
            let mut pattern = String::new();
            let mut params = 0;
            for _ in 0..1 + next(5) {
                let piece = pieces[next(pieces.len() as u64)];
                if piece == "{p}" {
                    pattern.push_str(&format!("{{p{}}}", ["a", "b", "c", "d", "e"][params % 5]));
                    params += 1;
                } else {
                    pattern.push_str(piece);
                }
            }
            let Ok(compiled) = PathPattern::new(&pattern) else {
                continue; // a repeated name
            };
            let path: String = (0..next(9)).map(|_| ['a', 'b', '/'][next(3)]).collect();
            let mut expected = Vec::new();
            let expected_match = naive(&compiled.tokens, &path, &mut expected);
            let mut got = Params::new();
            let got_match = compiled.match_path(&path, &mut got);
            assert_eq!(got_match, expected_match, "{pattern} on {path}");
            if got_match {
                let values: Vec<&str> = got.iter().map(|(_, v)| v).collect();
                assert_eq!(values, expected, "{pattern} on {path}");
                matched += 1;
                captured += usize::from(values.len() > 1);
            }
        }
        assert!(
            matched > 100 && captured > 20,
            "{matched} matches, {captured} multi-captures"
        );
    }

    struct Session;

    impl Guarded for Session {
        fn identity(&self, guard: &str) -> Option<&str> {
            (guard == "jwt").then_some("alice")
        }

        fn attribute(&self, guard: &str, name: &str) -> Option<&str> {
            (guard == "jwt" && name == "tenant").then_some("acme")
        }
    }

    #[test]
    fn template_segments_and_resolution() {
        let pattern = PathPattern::new("/{topic}/{key}").unwrap();
        let mut params = Params::new();
        assert!(pattern.match_path("/t1/k1", &mut params));

        let t = Template::parse("${params.topic}-x-${params.key}").unwrap();
        assert!(!t.is_static());
        assert_eq!(t.param_names().collect::<Vec<_>>(), ["topic", "key"]);
        assert_eq!(t.resolve_to_string(&params, &NoGuard), "t1-x-k1");

        let t = Template::parse("${guarded['jwt'].identity}/${guarded[\"jwt\"].attributes.tenant}")
            .unwrap();
        assert_eq!(t.guard_names().collect::<Vec<_>>(), ["jwt", "jwt"]);
        assert_eq!(t.resolve_to_string(&params, &Session), "alice/acme");
        assert_eq!(t.resolve_to_string(&params, &NoGuard), "/");

        let t = Template::parse("${guarded['other'].attributes.x.y}").unwrap();
        assert_eq!(t.resolve_to_string(&params, &Session), "");

        let t = Template::parse("plain $ text {x}").unwrap();
        assert_eq!(t.as_static(), Some("plain $ text {x}"));
        assert_eq!(Template::parse("").unwrap().as_static(), Some(""));
    }

    #[test]
    fn template_is_single_pass() {
        let pattern = PathPattern::new("/{key}/{tag}").unwrap();
        let mut params = Params::new();
        assert!(pattern.match_path("/${params.tag}/${params.key}", &mut params));
        let t = Template::parse("${params.key}|${params.tag}").unwrap();
        assert_eq!(
            t.resolve_to_string(&params, &NoGuard),
            "${params.tag}|${params.key}"
        );
    }

    #[test]
    fn template_syntax_errors() {
        for bad in [
            "${params.}",
            "${params.a1}",
            "${params.a",
            "${etag}",
            "${guarded.jwt.identity}",
            "${guarded['jwt'].identityx}",
            "${guarded['jwt'].attributes.}",
            "${guarded['jwt\"].identity}",
            "${guarded['1jwt'].identity}",
            "x${}",
        ] {
            assert!(Template::parse(bad).is_err(), "{bad} should be refused");
        }
    }
}
