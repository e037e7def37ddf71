//! Finds which key a byte offset in a TOML document belongs to, for error
//! messages: toml's errors carry a span but name at most the last key
//! segment (the node's config loader uses it too). A lenient scanner, not a parser: on odd input it gives a less
//! precise path, never a panic.

/// `unknown field `x`, expected one of `a`, `b`` → "`a`, `b`".
pub fn unknown_field(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("unknown field `")?;
    let (_, rest) = rest.split_once('`')?;
    Some(
        rest.strip_prefix(", expected one of ")
            .or_else(|| rest.strip_prefix(", expected "))
            .unwrap_or("no keys here"),
    )
}

/// 1-based line and column (in characters) of `offset`.
pub fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text.as_bytes()[..offset.min(text.len())];
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let column = String::from_utf8_lossy(&before[line_start..])
        .chars()
        .count()
        + 1;
    (line, column)
}

enum Frame {
    /// Inside `[ … ]`: the array's path and the current element.
    Array { path: String, index: usize },
    /// Inside `{ … }`: the table's path and its key being assigned.
    Inline { path: String, key: String },
}

/// The dotted path (`federation.peers[1].node`) of the key or value at
/// `offset`.
pub fn key_at(text: &str, offset: usize) -> String {
    let b = text.as_bytes();
    let mut table = String::new();
    let mut array_tables = std::collections::HashMap::<String, usize>::new();
    let mut top_key = String::new();
    let mut stack: Vec<Frame> = Vec::new();
    let mut expect_key = true;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            b' ' | b'\t' | b'\r' => i += 1,
            b'#' => i = skip_line(b, i),
            b'\n' => {
                if stack.is_empty() {
                    expect_key = true;
                }
                i += 1;
            }
            // A table header: only at the top level, where a key may start.
            b'[' if stack.is_empty() && expect_key => {
                let double = b.get(i + 1) == Some(&b'[');
                let start = i + if double { 2 } else { 1 };
                let end = find(b, start, b']');
                let name = normalise_key(slice(text, start, end));
                if double {
                    let n = array_tables.entry(name.clone()).or_insert(0);
                    table = format!("{name}[{n}]");
                    *n += 1;
                } else {
                    table = name.clone();
                }
                if offset < end + if double { 2 } else { 1 } {
                    return name;
                }
                top_key.clear();
                i = skip_line(b, end);
            }
            b'=' => {
                expect_key = false;
                i += 1;
            }
            b',' => {
                match stack.last_mut() {
                    Some(Frame::Array { index, .. }) => *index += 1,
                    Some(Frame::Inline { .. }) => expect_key = true,
                    None => {}
                }
                i += 1;
            }
            b']' | b'}' => {
                stack.pop();
                expect_key = false;
                i += 1;
            }
            _ if expect_key => {
                let end = key_end(b, i).max(i + 1);
                let key = normalise_key(slice(text, i, end));
                if offset < end {
                    return join(&container_path(&table, &stack), &key);
                }
                match stack.last_mut() {
                    Some(Frame::Inline { key: k, .. }) => *k = key,
                    _ => top_key = key,
                }
                i = end;
            }
            _ => {
                // A value: its path is the key it is assigned to, or
                // the array element it is.
                let path = value_path(&table, &top_key, &stack);
                if offset <= i {
                    return path;
                }
                match c {
                    b'[' => {
                        stack.push(Frame::Array { path, index: 0 });
                        i += 1;
                    }
                    b'{' => {
                        stack.push(Frame::Inline {
                            path,
                            key: String::new(),
                        });
                        expect_key = true;
                        i += 1;
                    }
                    _ => {
                        let end = value_end(b, i).max(i + 1);
                        if offset < end {
                            return path;
                        }
                        i = end;
                    }
                }
            }
        }
    }
    value_path(&table, &top_key, &stack)
}

fn value_path(table: &str, top_key: &str, stack: &[Frame]) -> String {
    match stack.last() {
        Some(Frame::Array { path, index }) => format!("{path}[{index}]"),
        Some(Frame::Inline { path, key }) => join(path, key),
        None => join(table, top_key),
    }
}

fn container_path(table: &str, stack: &[Frame]) -> String {
    match stack.last() {
        Some(Frame::Array { path, index }) => format!("{path}[{index}]"),
        Some(Frame::Inline { path, .. }) => path.clone(),
        None => table.to_owned(),
    }
}

fn join(prefix: &str, key: &str) -> String {
    match (prefix.is_empty(), key.is_empty()) {
        (true, _) => key.to_owned(),
        (false, true) => prefix.to_owned(),
        (false, false) => format!("{prefix}.{key}"),
    }
}

fn slice(text: &str, start: usize, end: usize) -> &str {
    text.get(start..end.min(text.len())).unwrap_or("")
}

/// `a . "b"` → `a.b`.
fn normalise_key(key: &str) -> String {
    key.split('.')
        .map(|part| part.trim().trim_matches(|c| c == '"' || c == '\''))
        .collect::<Vec<_>>()
        .join(".")
}

/// First `what` or newline at or after `from`, else the end.
fn find(b: &[u8], from: usize, what: u8) -> usize {
    b.get(from..)
        .and_then(|rest| rest.iter().position(|&c| c == what || c == b'\n'))
        .map_or(b.len(), |p| from + p)
}

fn skip_line(b: &[u8], from: usize) -> usize {
    find(b, from, b'\n')
}

/// End of a (possibly dotted, possibly quoted) key: the `=` or the line end.
fn key_end(b: &[u8], from: usize) -> usize {
    let mut i = from;
    while i < b.len() && !matches!(b[i], b'=' | b'\n' | b',' | b'}') {
        i = if matches!(b[i], b'"' | b'\'') {
            string_end(b, i)
        } else {
            i + 1
        };
    }
    i
}

/// End of a scalar value (string, number, bool, date).
fn value_end(b: &[u8], from: usize) -> usize {
    if matches!(b[from], b'"' | b'\'') {
        return string_end(b, from);
    }
    let mut i = from;
    while i < b.len() && !matches!(b[i], b',' | b']' | b'}' | b'\n' | b'#') {
        i += 1;
    }
    i
}

/// End (exclusive) of the string starting at `from`, single- or
/// triple-quoted, basic (with escapes) or literal.
fn string_end(b: &[u8], from: usize) -> usize {
    let q = b[from];
    let triple = b.get(from..from + 3) == Some(&[q, q, q][..]);
    let mut i = from + if triple { 3 } else { 1 };
    while i < b.len() {
        if q == b'"' && b[i] == b'\\' {
            i += 2;
            continue;
        }
        if !triple && b[i] == b'\n' {
            return i;
        }
        if b[i] == q && (!triple || b.get(i..i + 3) == Some(&[q, q, q][..])) {
            return i + if triple { 3 } else { 1 };
        }
        i += 1;
    }
    b.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str, needle: &str) -> String {
        key_at(text, text.find(needle).unwrap())
    }

    #[test]
    fn paths_of_keys_and_values() {
        let text = r#"
top = 1 # comment with [brackets] and = signs
[federation]
listen = "127.0.0.1:1" # "quoted"
peers = [
  { node = "n0", addr = "a,}]0" },
  { node = "n1", "addr" = 'x', nmae = 3 },
]
[a . "b"]
c = """multi
line ] } ,
"""
d = [[1, 2], [3, "x4"]]
[[arr]]
e = 1
[[arr]]
f = 2
"#;
        assert_eq!(at(text, "top"), "top");
        assert_eq!(at(text, "listen"), "federation.listen");
        assert_eq!(at(text, "\"127"), "federation.listen");
        assert_eq!(at(text, "peers"), "federation.peers");
        assert_eq!(at(text, "node = \"n0\""), "federation.peers[0].node");
        assert_eq!(at(text, "\"n0\""), "federation.peers[0].node");
        assert_eq!(at(text, "\"n1\""), "federation.peers[1].node");
        assert_eq!(at(text, "'x'"), "federation.peers[1].addr");
        assert_eq!(at(text, "nmae"), "federation.peers[1].nmae");
        assert_eq!(at(text, "a . \"b\""), "a.b");
        assert_eq!(at(text, "c ="), "a.b.c");
        assert_eq!(at(text, "d = [["), "a.b.d");
        assert_eq!(at(text, "\"x4\""), "a.b.d[1][1]");
        assert_eq!(at(text, "e = 1"), "arr[0].e");
        assert_eq!(at(text, "f = 2"), "arr[1].f");
    }

    #[test]
    fn odd_input_does_not_panic() {
        let texts = [
            "",
            "[",
            "[[",
            "a",
            "a =",
            "a = [",
            "a = {",
            "a = \"",
            "a = '''",
            "é = ]}",
            "a = \"\\",
            "[x]]\n]\n}",
            "a = [}]",
        ];
        for text in texts {
            for offset in 0..=text.len() + 2 {
                key_at(text, offset);
                line_column(text, offset);
            }
        }
    }

    #[test]
    fn line_and_column() {
        assert_eq!(line_column("a\nbé = c", 6), (2, 4));
        assert_eq!(line_column("ab", 100), (1, 3));
    }
}
