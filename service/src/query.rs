//! Query strings as Glance's clients send them: `?groupid=G&visitorid=V&&ver=X`.
//!
//! Read with the `application/x-www-form-urlencoded` parser of the `form_urlencoded` crate:
//! empty parts (`&&`) are skipped, `+` and `%XX` are decoded, a malformed escape is kept as it
//! is and invalid UTF-8 is replaced. Unknown parameters (`ver`, `site`, `service`…) are kept and
//! ignored by the endpoints; the first occurrence of a name wins. Parsing never fails: the caller
//! validates the values it needs.

/// The decoded parameters of one query string, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryParams(Vec<(String, String)>);

impl QueryParams {
    /// Parses a raw query string (without the leading `?`).
    pub fn parse(raw: Option<&str>) -> Self {
        let Some(raw) = raw else {
            return QueryParams::default();
        };
        QueryParams(
            form_urlencoded::parse(raw.as_bytes())
                .into_owned()
                .collect(),
        )
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
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

    #[test]
    fn empty_pairs_change_nothing() {
        let plain = QueryParams::parse(Some("groupid=7&visitorid=v%20x&ver=6.25.0"));
        for raw in [
            "&&groupid=7&&&visitorid=v%20x&&ver=6.25.0&&",
            "groupid=7&visitorid=v+x&&ver=6.25.0",
            "&groupid=7&visitorid=v%20x&ver=6.25.0&",
        ] {
            assert_eq!(QueryParams::parse(Some(raw)), plain, "{raw}");
        }
        assert_eq!(plain.get("visitorid"), Some("v x"));
        assert_eq!(plain.get("ver"), Some("6.25.0"));
        assert_eq!(QueryParams::parse(Some("&&&")), QueryParams::default());
    }
}
