//! A small borrowing JSON scanner for JOSE headers, JWT claims and JWKs.
//!
//! [`parse_document`] checks a whole text once against the RFC 8259 grammar, with nesting
//! bounded by [`MAX_DEPTH`]. Values are then borrowed views of that text: lookups walk it
//! again without allocating. Strings keep their escapes as written ([`JsonStr`]); they are
//! decoded lazily, on comparison or display, so no buffer is needed for them either.
//!
//! A member name that appears twice in one object is ambiguous: lookups of it answer
//! [`Lookup::Duplicate`] (names are compared after decoding escapes, so `"exp"` and
//! `"\u0065xp"` collide).

use std::borrow::Cow;
use std::fmt;

/// Deepest nesting of arrays and objects accepted (the top-level value is depth 1).
pub const MAX_DEPTH: usize = 32;

/// The text is not one well-formed JSON value, or nests deeper than [`MAX_DEPTH`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JsonError;

/// A JSON string: the text between its quotes, escapes as written.
///
/// Only built from text the scanner has checked, so every escape in it is well-formed.
#[derive(Debug, Clone, Copy)]
pub struct JsonStr<'a> {
    raw: &'a str,
    escaped: bool,
}

/// One JSON value, borrowing the scanned text.
#[derive(Debug, Clone, Copy)]
pub enum Value<'a> {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A number, as written.
    Num(&'a str),
    /// A string.
    Str(JsonStr<'a>),
    /// An array, as written (brackets included).
    Array(&'a str),
    /// An object, as written (braces included).
    Object(&'a str),
}

/// Result of looking up one member name in an object.
#[derive(Debug, Clone, Copy)]
pub enum Lookup<'a> {
    /// No member has that name.
    Missing,
    /// Exactly one member has that name.
    Found(Value<'a>),
    /// Several members have that name.
    Duplicate,
}

impl<'a> Lookup<'a> {
    /// The value when exactly one member has the name.
    pub fn found(self) -> Option<Value<'a>> {
        match self {
            Lookup::Found(v) => Some(v),
            _ => None,
        }
    }
}

/// Parses `text` as exactly one JSON value surrounded by optional whitespace.
pub fn parse_document(text: &str) -> Result<Value<'_>, JsonError> {
    let mut cur = Cursor::new(text);
    cur.skip_ws();
    let value = cur.value(1)?;
    cur.skip_ws();
    if cur.pos != cur.bytes.len() {
        return Err(JsonError);
    }
    Ok(value)
}

/// Parses `text` as one JSON object (see [`parse_document`]) and returns its text.
pub fn parse_object(text: &str) -> Result<&str, JsonError> {
    match parse_document(text)? {
        Value::Object(obj) => Ok(obj),
        _ => Err(JsonError),
    }
}

/// Parses `text` as one JSON object (see [`parse_document`]) and, in the same pass, looks
/// up each of `names` in it: one scan instead of one per name.
pub fn scan_object<'a, const N: usize>(
    text: &'a str,
    names: [&str; N],
) -> Result<(&'a str, [Lookup<'a>; N]), JsonError> {
    let mut found = [Lookup::Missing; N];
    let mut cur = Cursor::new(text);
    cur.skip_ws();
    let start = cur.pos;
    cur.expect(b'{')?;
    let mut first = true;
    while let Some((key, value)) = cur.next_member(first, 2)? {
        first = false;
        for (name, slot) in names.iter().zip(found.iter_mut()) {
            if key.eq_str(name) {
                *slot = match slot {
                    Lookup::Missing => Lookup::Found(value),
                    _ => Lookup::Duplicate,
                };
            }
        }
    }
    let object = cur.slice_from(start)?;
    cur.skip_ws();
    if cur.pos != cur.bytes.len() {
        return Err(JsonError);
    }
    Ok((object, found))
}

/// The members of an object's text (as returned in [`Value::Object`]), in order.
pub fn members(object: &str) -> Members<'_> {
    let mut cur = Cursor::new(object);
    let done = !cur.eat(b'{');
    Members {
        cur,
        first: true,
        done,
    }
}

/// The elements of an array's text (as returned in [`Value::Array`]), in order.
pub fn elements(array: &str) -> Elements<'_> {
    let mut cur = Cursor::new(array);
    let done = !cur.eat(b'[');
    Elements {
        cur,
        first: true,
        done,
    }
}

/// Looks up the member `name` of an object's text.
pub fn find<'a>(object: &'a str, name: &str) -> Lookup<'a> {
    let mut found = Lookup::Missing;
    for (key, value) in members(object) {
        if key.eq_str(name) {
            if matches!(found, Lookup::Found(_)) {
                return Lookup::Duplicate;
            }
            found = Lookup::Found(value);
        }
    }
    found
}

/// Looks up a dotted path (`realm_access.roles`) in an object's text: each segment names a
/// member of the object the previous one found. When that walk finds nothing, a member
/// whose whole name is `path` (`https://example.com/roles`) is tried. Ambiguous (duplicate)
/// members and an empty path give `None`.
pub fn find_path<'a>(object: &'a str, path: &str) -> Option<Value<'a>> {
    if path.is_empty() {
        return None;
    }
    let walked = walk(object, path);
    if walked.is_none() && path.contains('.') {
        return find(object, path).found();
    }
    walked
}

fn walk<'a>(object: &'a str, path: &str) -> Option<Value<'a>> {
    let mut current = Value::Object(object);
    for segment in path.split('.') {
        let Value::Object(obj) = current else {
            return None;
        };
        current = find(obj, segment).found()?;
    }
    Some(current)
}

/// Iterator over `(name, value)` members of an object; see [`members`].
#[derive(Debug, Clone)]
pub struct Members<'a> {
    cur: Cursor<'a>,
    first: bool,
    done: bool,
}

impl<'a> Iterator for Members<'a> {
    type Item = (JsonStr<'a>, Value<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.cur.next_member(self.first, 2) {
            Ok(Some(member)) => {
                self.first = false;
                Some(member)
            }
            _ => {
                self.done = true;
                None
            }
        }
    }
}

/// Iterator over the elements of an array; see [`elements`].
#[derive(Debug, Clone)]
pub struct Elements<'a> {
    cur: Cursor<'a>,
    first: bool,
    done: bool,
}

impl<'a> Iterator for Elements<'a> {
    type Item = Value<'a>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.cur.next_element(self.first, 2) {
            Ok(Some(value)) => {
                self.first = false;
                Some(value)
            }
            _ => {
                self.done = true;
                None
            }
        }
    }
}

#[derive(Debug, Clone)]
struct Cursor<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(text: &'a str) -> Self {
        Cursor {
            text,
            bytes: text.as_bytes(),
            pos: 0,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, b: u8) -> Result<(), JsonError> {
        if self.eat(b) {
            Ok(())
        } else {
            Err(JsonError)
        }
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    /// `text[start..self.pos]`; every boundary used is at an ASCII byte.
    fn slice_from(&self, start: usize) -> Result<&'a str, JsonError> {
        self.text.get(start..self.pos).ok_or(JsonError)
    }

    /// One value at `depth` (1 for a top-level value), whitespace before it skipped.
    fn value(&mut self, depth: usize) -> Result<Value<'a>, JsonError> {
        match self.peek().ok_or(JsonError)? {
            b'{' => {
                if depth > MAX_DEPTH {
                    return Err(JsonError);
                }
                let start = self.pos;
                self.pos += 1;
                let mut first = true;
                while self.next_member(first, depth + 1)?.is_some() {
                    first = false;
                }
                Ok(Value::Object(self.slice_from(start)?))
            }
            b'[' => {
                if depth > MAX_DEPTH {
                    return Err(JsonError);
                }
                let start = self.pos;
                self.pos += 1;
                let mut first = true;
                while self.next_element(first, depth + 1)?.is_some() {
                    first = false;
                }
                Ok(Value::Array(self.slice_from(start)?))
            }
            b'"' => self.string().map(Value::Str),
            b't' => self.literal(b"true", Value::Bool(true)),
            b'f' => self.literal(b"false", Value::Bool(false)),
            b'n' => self.literal(b"null", Value::Null),
            b'-' | b'0'..=b'9' => self.number(),
            _ => Err(JsonError),
        }
    }

    /// Inside an object (after `{`, or after a member): the next member, or `None` after
    /// consuming the closing `}`. Member values are at `depth`.
    fn next_member(
        &mut self,
        first: bool,
        depth: usize,
    ) -> Result<Option<(JsonStr<'a>, Value<'a>)>, JsonError> {
        self.skip_ws();
        if self.eat(b'}') {
            return Ok(None);
        }
        if !first {
            self.expect(b',')?;
            self.skip_ws();
        }
        if self.peek() != Some(b'"') {
            return Err(JsonError);
        }
        let key = self.string()?;
        self.skip_ws();
        self.expect(b':')?;
        self.skip_ws();
        let value = self.value(depth)?;
        Ok(Some((key, value)))
    }

    /// Inside an array (after `[`, or after an element): the next element, or `None` after
    /// consuming the closing `]`. Elements are at `depth`.
    fn next_element(&mut self, first: bool, depth: usize) -> Result<Option<Value<'a>>, JsonError> {
        self.skip_ws();
        if self.eat(b']') {
            return Ok(None);
        }
        if !first {
            self.expect(b',')?;
            self.skip_ws();
        }
        self.value(depth).map(Some)
    }

    fn literal(&mut self, word: &[u8], value: Value<'a>) -> Result<Value<'a>, JsonError> {
        if self.bytes.get(self.pos..self.pos + word.len()) == Some(word) {
            self.pos += word.len();
            Ok(value)
        } else {
            Err(JsonError)
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
        self.pos - start
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`
    fn number(&mut self) -> Result<Value<'a>, JsonError> {
        let start = self.pos;
        self.eat(b'-');
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(JsonError),
        }
        if self.eat(b'.') && self.digits() == 0 {
            return Err(JsonError);
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return Err(JsonError);
            }
        }
        Ok(Value::Num(self.slice_from(start)?))
    }

    fn hex4(&mut self) -> Result<u16, JsonError> {
        let digits = self.bytes.get(self.pos..self.pos + 4).ok_or(JsonError)?;
        let mut v = 0u16;
        for &d in digits {
            let nibble = char::from(d).to_digit(16).ok_or(JsonError)?;
            v = (v << 4) | nibble as u16;
        }
        self.pos += 4;
        Ok(v)
    }

    /// A string starting at its opening quote.
    fn string(&mut self) -> Result<JsonStr<'a>, JsonError> {
        self.expect(b'"')?;
        let start = self.pos;
        let mut escaped = false;
        loop {
            match self.peek().ok_or(JsonError)? {
                b'"' => break,
                b'\\' => {
                    escaped = true;
                    self.pos += 1;
                    match self.peek().ok_or(JsonError)? {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.pos += 1,
                        b'u' => {
                            self.pos += 1;
                            let unit = self.hex4()?;
                            if is_low_surrogate(unit) {
                                return Err(JsonError);
                            }
                            if is_high_surrogate(unit) {
                                self.expect(b'\\')?;
                                self.expect(b'u')?;
                                if !is_low_surrogate(self.hex4()?) {
                                    return Err(JsonError);
                                }
                            }
                        }
                        _ => return Err(JsonError),
                    }
                }
                0x00..=0x1f => return Err(JsonError),
                _ => self.pos += 1,
            }
        }
        let raw = self.slice_from(start)?;
        self.pos += 1;
        Ok(JsonStr { raw, escaped })
    }
}

fn is_high_surrogate(unit: u16) -> bool {
    (0xd800..0xdc00).contains(&unit)
}

fn is_low_surrogate(unit: u16) -> bool {
    (0xdc00..0xe000).contains(&unit)
}

impl<'a> JsonStr<'a> {
    /// The text between the quotes, escapes as written.
    pub fn raw(&self) -> &'a str {
        self.raw
    }

    /// True when the text holds at least one escape.
    pub fn has_escapes(&self) -> bool {
        self.escaped
    }

    /// The string itself, borrowed, when it holds no escape.
    pub fn as_str(&self) -> Option<&'a str> {
        (!self.escaped).then_some(self.raw)
    }

    /// The decoded characters.
    pub fn chars(&self) -> DecodedChars<'a> {
        DecodedChars {
            rest: self.raw.chars(),
        }
    }

    /// True when the decoded string equals `s`; allocates nothing.
    pub fn eq_str(&self, s: &str) -> bool {
        if self.escaped {
            self.chars().eq(s.chars())
        } else {
            self.raw == s
        }
    }

    /// The decoded string: borrowed without escapes, otherwise allocated.
    pub fn to_cow(&self) -> Cow<'a, str> {
        match self.as_str() {
            Some(s) => Cow::Borrowed(s),
            None => Cow::Owned(self.chars().collect()),
        }
    }

    /// Decodes into `buf` (no allocation); `None` when it does not fit.
    pub fn decode_into<'b>(&self, buf: &'b mut [u8]) -> Option<&'b str> {
        let mut len = 0;
        for c in self.chars() {
            let end = len + c.len_utf8();
            c.encode_utf8(buf.get_mut(len..end)?);
            len = end;
        }
        std::str::from_utf8(buf.get(..len)?).ok()
    }

    /// The words of the string, split at literal spaces in its text (an escaped `\u0020`
    /// does not split; no escape sequence contains a literal space). Empty words are
    /// skipped.
    pub fn words(self) -> Words<'a> {
        Words {
            rest: self.raw,
            escaped: self.escaped,
        }
    }
}

/// Iterator over the space-separated words of a [`JsonStr`]; see [`JsonStr::words`].
#[derive(Debug, Clone)]
pub struct Words<'a> {
    rest: &'a str,
    escaped: bool,
}

impl<'a> Iterator for Words<'a> {
    type Item = JsonStr<'a>;

    fn next(&mut self) -> Option<JsonStr<'a>> {
        let trimmed = self.rest.trim_start_matches(' ');
        if trimmed.is_empty() {
            self.rest = trimmed;
            return None;
        }
        let end = trimmed.find(' ').unwrap_or(trimmed.len());
        let (raw, rest) = trimmed.split_at(end);
        self.rest = rest;
        Some(JsonStr {
            raw,
            escaped: self.escaped && raw.contains('\\'),
        })
    }
}

impl fmt::Display for JsonStr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.as_str() {
            Some(s) => f.write_str(s),
            None => self.chars().try_for_each(|c| fmt::Write::write_char(f, c)),
        }
    }
}

/// Decoding iterator over a [`JsonStr`]. A malformed escape (impossible in scanned text)
/// decodes as U+FFFD.
#[derive(Debug, Clone)]
pub struct DecodedChars<'a> {
    rest: std::str::Chars<'a>,
}

impl DecodedChars<'_> {
    fn unit(&mut self) -> Option<u16> {
        let mut v = 0u16;
        for _ in 0..4 {
            v = (v << 4) | self.rest.next()?.to_digit(16)? as u16;
        }
        Some(v)
    }

    fn unicode_escape(&mut self) -> Option<char> {
        let hi = self.unit()?;
        if is_high_surrogate(hi) {
            if self.rest.next()? != '\\' || self.rest.next()? != 'u' {
                return None;
            }
            let lo = self.unit()?;
            if !is_low_surrogate(lo) {
                return None;
            }
            let c = 0x10000 + ((u32::from(hi) - 0xd800) << 10) + (u32::from(lo) - 0xdc00);
            char::from_u32(c)
        } else {
            char::from_u32(u32::from(hi))
        }
    }
}

impl Iterator for DecodedChars<'_> {
    type Item = char;

    fn next(&mut self) -> Option<char> {
        let c = self.rest.next()?;
        if c != '\\' {
            return Some(c);
        }
        let decoded = match self.rest.next() {
            Some('"') => Some('"'),
            Some('\\') => Some('\\'),
            Some('/') => Some('/'),
            Some('b') => Some('\u{8}'),
            Some('f') => Some('\u{c}'),
            Some('n') => Some('\n'),
            Some('r') => Some('\r'),
            Some('t') => Some('\t'),
            Some('u') => self.unicode_escape(),
            _ => None,
        };
        Some(decoded.unwrap_or(char::REPLACEMENT_CHARACTER))
    }
}

impl<'a> Value<'a> {
    /// The string, when this is one.
    pub fn as_json_str(&self) -> Option<JsonStr<'a>> {
        match self {
            Value::Str(s) => Some(*s),
            _ => None,
        }
    }

    /// True when this is a string equal to `s` after decoding.
    pub fn eq_str(&self, s: &str) -> bool {
        self.as_json_str().is_some_and(|j| j.eq_str(s))
    }

    /// True when this value displays as `s` (see the `Display` impl); allocates nothing.
    /// Compares a stored identity or attribute with a new token's.
    pub fn text_eq(&self, s: &str) -> bool {
        match self {
            Value::Null => s == "null",
            Value::Bool(b) => s == if *b { "true" } else { "false" },
            Value::Num(text) | Value::Array(text) | Value::Object(text) => *text == s,
            Value::Str(j) => j.eq_str(s),
        }
    }
}

/// Strings display decoded; every other value displays as its JSON text.
impl fmt::Display for Value<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("null"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Num(text) | Value::Array(text) | Value::Object(text) => f.write_str(text),
            Value::Str(s) => s.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> bool {
        parse_document(text).is_ok()
    }

    #[test]
    fn accepts_the_grammar() {
        for text in [
            "{}",
            " { } ",
            "[]",
            "0",
            "-0",
            "-12.5e+3",
            "1E9",
            "0.0",
            "true",
            "false",
            "null",
            r#""""#,
            r#""a\"b\\c\/d\b\f\n\r\t\u00e9\ud83d\ude00""#,
            r#"{"a":[1,{"b":null}],"c":"d"}"#,
            "\t{\r\n\"a\" : [ ] , \"b\":{}}\n",
            "\"é😀\"",
        ] {
            assert!(ok(text), "{text}");
        }
    }

    #[test]
    fn refuses_malformed_text() {
        for text in [
            "",
            " ",
            "{",
            "}",
            "{,}",
            r#"{"a"}"#,
            r#"{"a":}"#,
            r#"{"a":1,}"#,
            r#"{"a":1 "b":2}"#,
            r#"{a:1}"#,
            "[1,]",
            "[,1]",
            "[1 2]",
            "01",
            "-",
            "1.",
            ".5",
            "1e",
            "1e+",
            "+1",
            "NaN",
            "tru",
            "nul",
            "True",
            r#""abc"#,
            r#""\x""#,
            r#""\u12""#,
            r#""\u12g4""#,
            "\"a\nb\"",
            "\"\u{1}\"",
            r#""\ud800""#,
            r#""\udc00""#,
            r#""\ud800\u0041""#,
            r#""\ud800x""#,
            "{} {}",
            "{}x",
            "'a'",
        ] {
            assert!(!ok(text), "{text:?}");
        }
    }

    #[test]
    fn nesting_is_bounded() {
        let deep_ok = "[".repeat(MAX_DEPTH) + &"]".repeat(MAX_DEPTH);
        assert!(ok(&deep_ok));
        let too_deep = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
        assert!(!ok(&too_deep));
        let objects = r#"{"a":"#.repeat(MAX_DEPTH + 1) + "1" + &"}".repeat(MAX_DEPTH + 1);
        assert!(!ok(&objects));
        // Unbalanced input far deeper than the bound fails without recursing further.
        assert!(!ok(&"[".repeat(100_000)));
    }

    #[test]
    fn values_borrow_the_text() {
        let doc = r#"{"n":-1.5e3,"s":"x","t":true,"z":null,"a":[1, "b"],"o":{"k":"v"}}"#;
        let obj = parse_object(doc).unwrap();
        assert!(std::ptr::eq(obj, doc));
        let got: Vec<String> = members(obj)
            .map(|(k, v)| format!("{}={}", k.raw(), v))
            .collect();
        assert_eq!(
            got,
            [
                "n=-1.5e3",
                "s=x",
                "t=true",
                "z=null",
                r#"a=[1, "b"]"#,
                r#"o={"k":"v"}"#
            ]
        );
        for (name, text) in [("n", "-1.5e3"), ("s", "x"), ("t", "true"), ("z", "null")] {
            assert!(find(obj, name).found().unwrap().text_eq(text), "{name}");
        }
        assert!(!find(obj, "n").found().unwrap().text_eq("-1500"));
        assert!(!find(obj, "s").found().unwrap().text_eq("\"x\""));
        let Some(Value::Array(a)) = find(obj, "a").found() else {
            panic!()
        };
        let items: Vec<String> = elements(a).map(|v| v.to_string()).collect();
        assert_eq!(items, ["1", "b"]);
        assert!(matches!(find(obj, "missing"), Lookup::Missing));
        assert_eq!(members("{}").count(), 0);
        assert_eq!(elements("[ ]").count(), 0);
    }

    #[test]
    fn duplicate_names_are_ambiguous_even_when_escaped() {
        let obj = parse_object(r#"{"exp":1,"x":2,"\u0065xp":3}"#).unwrap();
        assert!(matches!(find(obj, "exp"), Lookup::Duplicate));
        assert!(matches!(find(obj, "x"), Lookup::Found(Value::Num("2"))));
        let obj = parse_object(r#"{"a":{"b":1,"b":2}}"#).unwrap();
        assert!(find_path(obj, "a.b").is_none());
    }

    #[test]
    fn scan_finds_several_names_in_one_pass() {
        let (obj, [a, b, c, d]) = scan_object(
            r#" {"a":1,"b":"x","a":2,"c":{"d":3}} "#,
            ["a", "b", "d", "e"],
        )
        .unwrap();
        assert_eq!(obj, r#"{"a":1,"b":"x","a":2,"c":{"d":3}}"#);
        assert!(matches!(a, Lookup::Duplicate));
        assert!(b.found().unwrap().eq_str("x"));
        assert!(matches!(c, Lookup::Missing));
        assert!(matches!(d, Lookup::Missing));
        for bad in ["[]", "{", r#"{"a":1}x"#, r#"{"a":}"#, ""] {
            assert!(scan_object(bad, ["a"]).is_err(), "{bad}");
        }
        let deep = r#"{"a":"#.repeat(MAX_DEPTH + 1) + "1" + &"}".repeat(MAX_DEPTH + 1);
        assert!(scan_object(&deep, ["a"]).is_err());
    }

    #[test]
    fn dotted_paths() {
        let obj = parse_object(
            r#"{"realm_access":{"roles":["a","b"]},"https://x.example/roles":"c","s":"t"}"#,
        )
        .unwrap();
        assert!(matches!(
            find_path(obj, "realm_access.roles"),
            Some(Value::Array(r#"["a","b"]"#))
        ));
        assert!(find_path(obj, "https://x.example/roles")
            .unwrap()
            .eq_str("c"));
        assert!(find_path(obj, "s").unwrap().eq_str("t"));
        assert!(find_path(obj, "s.t").is_none());
        assert!(find_path(obj, "realm_access.nope").is_none());
        assert!(find_path(obj, "").is_none());
        assert!(find_path(obj, ".").is_none());
    }

    #[test]
    fn strings_decode_lazily() {
        let Value::Str(plain) = parse_document(r#""plain""#).unwrap() else {
            panic!()
        };
        assert_eq!(plain.as_str(), Some("plain"));
        assert!(matches!(plain.to_cow(), Cow::Borrowed("plain")));

        let text = r#""a\"\\\/\b\f\n\r\t\u00e9\uD83D\uDE00z""#;
        let Value::Str(s) = parse_document(text).unwrap() else {
            panic!()
        };
        let want = "a\"\\/\u{8}\u{c}\n\r\t\u{e9}\u{1f600}z";
        assert!(s.has_escapes());
        assert_eq!(s.as_str(), None);
        assert_eq!(s.to_cow(), want);
        assert_eq!(s.to_string(), want);
        assert!(s.eq_str(want));
        assert!(!s.eq_str("a"));
        let mut buf = [0u8; 32];
        assert_eq!(s.decode_into(&mut buf), Some(want));
        let mut small = [0u8; 4];
        assert_eq!(s.decode_into(&mut small), None);
    }

    #[test]
    fn split_at_literal_spaces() {
        let Value::Str(s) = parse_document(r#""read  wr\u0069te a\u0020b ""#).unwrap() else {
            panic!()
        };
        let parts: Vec<String> = s.words().map(|p| p.to_string()).collect();
        assert_eq!(parts, ["read", "write", "a b"]);
        let parts: Vec<bool> = s.words().map(|p| p.has_escapes()).collect();
        assert_eq!(parts, [false, true, true]);
    }

    #[test]
    fn iterators_stop_on_malformed_text() {
        // Iterators over text that was not scanned end at the first error, without panicking.
        assert_eq!(members(r#"{"a":1,"b"#).count(), 1);
        assert_eq!(elements("[1,2,").count(), 2);
        assert_eq!(members("nope").count(), 0);
        assert_eq!(elements("").count(), 0);
    }
}
