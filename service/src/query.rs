//! Query strings as Glance's clients send them: `?groupid=G&visitorid=V&&ver=X`.
//!
//! Empty parts (`&&`) and unknown parameters (`ver`, `site`, `service`…) are ignored; `+` and
//! `%XX` are decoded; the first occurrence of a name wins. Parsing never fails: a malformed
//! escape is kept as it is, and the caller validates the values it needs.

/// The decoded parameters of one query string, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryParams(Vec<(String, String)>);

impl QueryParams {
    /// Parses a raw query string (without the leading `?`).
    pub fn parse(raw: Option<&str>) -> Self {
        let Some(raw) = raw else {
            return QueryParams::default();
        };
        let pairs = raw
            .split('&')
            .filter(|part| !part.is_empty())
            .map(|part| {
                let (name, value) = part.split_once('=').unwrap_or((part, ""));
                (decode(name), decode(value))
            })
            .collect();
        QueryParams(pairs)
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Percent-decodes one component (`+` is a space); invalid UTF-8 is replaced.
fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let pair = bytes
                    .get(i + 1)
                    .and_then(|h| hex(*h))
                    .zip(bytes.get(i + 2).and_then(|l| hex(*l)));
                if let Some((h, l)) = pair {
                    out.push(h * 16 + l);
                    i += 2;
                } else {
                    out.push(b'%');
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glance_style_query_strings() {
        let q = QueryParams::parse(Some("groupid=12345&visitorid=v1&&ver=6.25.0"));
        assert_eq!(q.get("groupid"), Some("12345"));
        assert_eq!(q.get("visitorid"), Some("v1"));
        assert_eq!(q.get("ver"), Some("6.25.0"));
        assert_eq!(q.get("nope"), None);
        let q = QueryParams::parse(Some(
            "&&site=my+site%2Fx&groupid=1&groupid=2&flag&bad=%zz%4",
        ));
        assert_eq!(q.get("site"), Some("my site/x"));
        assert_eq!(q.get("groupid"), Some("1"));
        assert_eq!(q.get("flag"), Some(""));
        assert_eq!(q.get("bad"), Some("%zz%4"));
        assert_eq!(QueryParams::parse(None), QueryParams::default());
        assert_eq!(
            QueryParams::parse(Some("%C3%A9=%FF")).get("é"),
            Some("\u{fffd}")
        );
    }
}
