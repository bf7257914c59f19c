//! `${{env.NAME}}` substitution in configuration scalars (Zilla's engine expressions).
//!
//! Zilla's syntax is `${{ context.name }}` with optional blanks inside the braces; only the `env`
//! context exists. Substitution is a single pass: a substituted value is never re-scanned.

/// Replaces every `${{env.NAME}}` in `text`. Errors name the first problem: an unset variable,
/// an unknown context, or an unterminated or malformed expression.
pub(super) fn substitute(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, String> {
    let Some(first) = text.find("${{") else {
        return Ok(text.to_owned());
    };
    let mut out = String::with_capacity(text.len());
    out.push_str(&text[..first]);
    let mut rest = &text[first..];
    loop {
        let body = &rest[3..];
        let Some(close) = body.find("}}") else {
            return Err(format!("unterminated expression {rest:?}"));
        };
        let expression = body[..close].trim();
        let Some((context, name)) = expression.split_once('.') else {
            return Err(format!(
                "malformed expression \"${{{{{expression}}}}}\": expected ${{{{env.NAME}}}}"
            ));
        };
        if context != "env" {
            return Err(format!(
                "unknown expression context {context:?} in \"${{{{{expression}}}}}\": only env \
                 is supported"
            ));
        }
        if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c == '}') {
            return Err(format!(
                "malformed expression \"${{{{{expression}}}}}\": expected ${{{{env.NAME}}}}"
            ));
        }
        match env(name) {
            Some(value) => out.push_str(&value),
            None => return Err(format!("environment variable {name} is not set")),
        }
        rest = &body[close + 2..];
        match rest.find("${{") {
            Some(next) => {
                out.push_str(&rest[..next]);
                rest = &rest[next..];
            }
            None => {
                out.push_str(rest);
                return Ok(out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "KAFKA" => Some("kafka:9092".into()),
            "LOOP" => Some("${{env.KAFKA}}".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn substitutes_every_expression() {
        assert_eq!(substitute("plain", &env).unwrap(), "plain");
        assert_eq!(substitute("${{env.KAFKA}}", &env).unwrap(), "kafka:9092");
        assert_eq!(
            substitute("a ${{ env.KAFKA }} b ${{env.EMPTY}}c", &env).unwrap(),
            "a kafka:9092 b c"
        );
        assert_eq!(substitute("${x} $ {{", &env).unwrap(), "${x} $ {{");
    }

    #[test]
    fn single_pass() {
        assert_eq!(substitute("${{env.LOOP}}", &env).unwrap(), "${{env.KAFKA}}");
    }

    #[test]
    fn errors() {
        assert_eq!(
            substitute("x ${{env.MISSING}}", &env).unwrap_err(),
            "environment variable MISSING is not set"
        );
        assert!(substitute("${{env.KAFKA", &env)
            .unwrap_err()
            .starts_with("unterminated"));
        assert!(substitute("${{vault.x}}", &env)
            .unwrap_err()
            .starts_with("unknown expression context"));
        assert!(substitute("${{KAFKA}}", &env)
            .unwrap_err()
            .starts_with("malformed"));
        assert!(substitute("${{env.}}", &env)
            .unwrap_err()
            .starts_with("malformed"));
    }
}
