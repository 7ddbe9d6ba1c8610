//! Text from guests and plans goes through here before it reaches a terminal.

/// Escapes control characters (ANSI escape sequences, carriage returns, NUL) so that
/// a guest's message cannot rewrite the terminal or fake report lines.
pub fn sanitize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}
