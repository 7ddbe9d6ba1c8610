use std::fmt;
use std::ops::Range;
use std::sync::OnceLock;

use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use serde_json::value::RawValue;

/// Which value of a change: the one before it or the one after.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    Before,
    After,
}

/// Attribute values that live outside this process, fetched on first use.
///
/// A guest built on `provkey:plan@0.2.0` does not receive the attribute values of a
/// plan: it asks the host for those it reads (`provkey:plan/plan-view`). The guest
/// SDK implements this trait over that import; nothing else needs to.
pub trait RemoteValues: Send + Sync {
    /// The JSON text of the value at `pointer` (RFC 6901; `""` is the whole value)
    /// in change `change`'s `side`; `None` when there is none.
    fn text_at(&self, change: u32, side: Side, pointer: &str) -> Option<String>;

    /// What [`ResourceChange::changed_attributes`](crate::ResourceChange::changed_attributes)
    /// gives for change `change`, worked out where the values are (so that they are
    /// neither copied here nor parsed twice); `None` to work it out here from the
    /// values fetched through [`RemoteValues::text_at`].
    fn changed_attributes(&self, change: u32) -> Option<Vec<String>> {
        let _ = change;
        None
    }
}

/// A JSON value kept as text, parsed on first use and only as far as it is read.
///
/// Most policies read a few attributes of a few resources. Reading `/tags/env`
/// scans the text once for its top-level members (without building their values),
/// then parses only `tags`; the whole tree is built only when someone asks for it
/// ([`JsonText::value`]). Every parse is kept, so each is done once, whichever
/// thread asks first.
///
/// The text is either held here or, in a guest of `provkey:plan@0.2.0`, held by the
/// host ([`JsonText::remote`]). A remote value's first few top-level members are
/// fetched one by one, as they are read (the host has each value indexed once for
/// every policy); reading more of them, or the whole, fetches the whole text.
pub struct JsonText {
    text: OnceLock<String>,
    remote: Option<Remote>,
    parsed: OnceLock<Option<Value>>,
    members: OnceLock<Option<Vec<Member>>>,
}

/// How many top-level members of a remote value are fetched one by one before
/// the whole text is. Policies read a few attributes of each resource: fetching
/// a whole value (about 2 KB in a Terraform plan) and indexing it in the guest
/// to read `tags` cost several times what asking for `tags` does.
const REMOTE_MEMBERS: usize = 4;

struct Remote {
    values: &'static dyn RemoteValues,
    change: u32,
    side: Side,
    /// The members fetched one by one (allocated on the first).
    fetched: OnceLock<Box<[OnceLock<FetchedMember>; REMOTE_MEMBERS]>>,
}

impl Remote {
    fn new(values: &'static dyn RemoteValues, change: u32, side: Side) -> Self {
        Remote {
            values,
            change,
            side,
            fetched: OnceLock::new(),
        }
    }
}

/// One top-level member of a remote value, as the host answered for it alone.
struct FetchedMember {
    /// The key, unescaped.
    key: Box<str>,
    /// Its text; `None` when the value has no such member.
    text: Option<Box<str>>,
    value: OnceLock<Option<Value>>,
}

/// One top-level member of an object: its key, where its text is in the object's,
/// and its value once someone has read it.
struct Member {
    key: Box<str>,
    span: Range<usize>,
    value: OnceLock<Option<Value>>,
}

impl Default for JsonText {
    fn default() -> Self {
        JsonText::new(String::new())
    }
}

impl JsonText {
    /// Wraps JSON text. The text is trusted to be JSON; [`JsonText::value`]
    /// returns `None` if it is not.
    pub fn new(text: impl Into<String>) -> Self {
        JsonText {
            text: OnceLock::from(text.into()),
            remote: None,
            parsed: OnceLock::new(),
            members: OnceLock::new(),
        }
    }

    /// Serializes a value.
    pub fn from_value(value: &Value) -> Self {
        let text = JsonText::new(value.to_string());
        let _ = text.parsed.set(Some(value.clone()));
        text
    }

    /// A value that `values` holds: change `change`'s `side`. Nothing is fetched
    /// until something is read.
    pub fn remote(values: &'static dyn RemoteValues, change: u32, side: Side) -> Self {
        JsonText {
            text: OnceLock::new(),
            remote: Some(Remote::new(values, change, side)),
            parsed: OnceLock::new(),
            members: OnceLock::new(),
        }
    }

    /// Where a remote value comes from: the host's answers and the change's index.
    pub(crate) fn remote_origin(&self) -> Option<(&'static dyn RemoteValues, u32)> {
        self.remote.as_ref().map(|r| (r.values, r.change))
    }

    /// The whole text (fetched first if it is remote; `null` if the host has none).
    pub fn as_str(&self) -> &str {
        self.text.get_or_init(|| match &self.remote {
            Some(r) => r
                .values
                .text_at(r.change, r.side, "")
                .unwrap_or_else(|| "null".to_string()),
            None => String::new(),
        })
    }

    pub fn into_string(self) -> String {
        let _ = self.as_str();
        self.text.into_inner().unwrap_or_default()
    }

    /// The whole parsed value, or `None` when the text is not valid JSON.
    pub fn value(&self) -> Option<&Value> {
        self.parsed
            .get_or_init(|| serde_json::from_str(self.as_str()).ok())
            .as_ref()
    }

    /// The value at a JSON Pointer, as [`Value::pointer`] finds it, parsing only
    /// the top-level member the pointer goes through.
    pub fn pointer(&self, pointer: &str) -> Option<&Value> {
        if let Some(whole) = self.parsed.get() {
            return crate::pointer::get(whole.as_ref()?, pointer);
        }
        let Some(tail) = pointer.strip_prefix('/') else {
            return if pointer.is_empty() {
                self.value()
            } else {
                None
            };
        };
        let (segment, rest) = match tail.find('/') {
            Some(slash) => tail.split_at(slash),
            None => (tail, ""),
        };
        let key = crate::pointer::unescape(segment);
        if let Some(fetched) = self.fetch_member(&key) {
            let value = parse_once(&fetched.value, fetched.text.as_deref()?)?;
            return crate::pointer::get(value, rest);
        }
        match self.members() {
            Some(members) => {
                let member = find(members, &key)?;
                crate::pointer::get(self.member_value(member)?, rest)
            }
            None => crate::pointer::get(self.value()?, pointer),
        }
    }

    /// Whether this is an object with a member `key` (whatever its value, `null`
    /// included).
    pub fn has_key(&self, key: &str) -> bool {
        self.member_parts(key).is_some()
    }

    /// The keys of the top-level members, in document order (a key repeated in the
    /// text is listed once per occurrence); `None` when this is not an object.
    pub fn keys(&self) -> Option<impl Iterator<Item = &str>> {
        Some(self.members()?.iter().map(|member| &*member.key))
    }

    /// The text of a top-level member named by a one-segment pointer (`/tags`),
    /// exactly as written, without parsing it; `None` for any other pointer or
    /// when there is no such member.
    pub fn member_text(&self, pointer: &str) -> Option<&str> {
        let segment = pointer.strip_prefix('/')?;
        if segment.contains('/') {
            return None;
        }
        self.member_parts(&crate::pointer::unescape(segment))
            .map(|(text, _)| text)
    }

    /// Whether member `key` differs between `self` and `other`: present in one
    /// only, or with values that are not equal. Identical texts are equal without
    /// being parsed.
    pub fn member_differs(&self, other: &JsonText, key: &str) -> bool {
        match (self.member_parts(key), other.member_parts(key)) {
            (None, None) => false,
            (Some(_), None) | (None, Some(_)) => true,
            (Some((x, _)), Some((y, _))) if x == y => false,
            (Some((x, mine)), Some((y, theirs))) => parse_once(mine, x) != parse_once(theirs, y),
        }
    }

    /// Member `key`'s text and the cell its parsed value is kept in; `None` when
    /// this is not an object or has no such member.
    fn member_parts(&self, key: &str) -> Option<(&str, &OnceLock<Option<Value>>)> {
        if let Some(fetched) = self.fetch_member(key) {
            return Some((fetched.text.as_deref()?, &fetched.value));
        }
        let member = find(self.members()?, key)?;
        Some((self.text_of(member)?, &member.value))
    }

    /// Member `key` of a remote value whose whole text is not here, asked of the
    /// host by itself. `None` means: read it from the whole text instead (this is
    /// not remote, the whole text is here already, every slot is taken, or the key
    /// could be an array index, which the host would answer for an array while a
    /// member lookup must not).
    fn fetch_member(&self, key: &str) -> Option<&FetchedMember> {
        let remote = self.remote.as_ref()?;
        if self.text.get().is_some()
            || key == "-"
            || (!key.is_empty() && key.bytes().all(|b| b.is_ascii_digit()))
        {
            return None;
        }
        let slots = remote.fetched.get_or_init(Default::default);
        for slot in slots.iter() {
            if slot.get().is_none() {
                let text = remote.values.text_at(
                    remote.change,
                    remote.side,
                    &crate::pointer::from_segments([key]),
                );
                // Another thread may fill this slot first; it is then looked at as
                // any filled slot.
                let _ = slot.set(FetchedMember {
                    key: key.into(),
                    text: text.map(String::into_boxed_str),
                    value: OnceLock::new(),
                });
            }
            match slot.get() {
                Some(fetched) if &*fetched.key == key => return Some(fetched),
                _ => continue,
            }
        }
        None
    }

    /// The top-level members, found on first use; `None` when this is not an object.
    fn members(&self) -> Option<&[Member]> {
        self.members
            .get_or_init(|| index_members(self.as_str()))
            .as_deref()
    }

    fn text_of<'a>(&'a self, member: &'a Member) -> Option<&'a str> {
        self.as_str().get(member.span.clone())
    }

    fn member_value<'a>(&'a self, member: &'a Member) -> Option<&'a Value> {
        parse_once(&member.value, self.text_of(member)?)
    }
}

/// `text` parsed, once, into `cell`.
fn parse_once<'a>(cell: &'a OnceLock<Option<Value>>, text: &str) -> Option<&'a Value> {
    cell.get_or_init(|| serde_json::from_str(text).ok())
        .as_ref()
}

/// The member a lookup finds: the last of that key, as a parsed object keeps the
/// last of duplicate keys.
fn find<'a>(members: &'a [Member], key: &str) -> Option<&'a Member> {
    members.iter().rev().find(|member| &*member.key == key)
}

/// Finds the top-level members of an object's text without building their
/// values: serde_json skips each value (validating it) and hands back its text.
fn index_members(text: &str) -> Option<Vec<Member>> {
    struct Members<'de>(Vec<(String, &'de RawValue)>);

    impl<'de> Deserialize<'de> for Members<'de> {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            struct ObjectVisitor;
            impl<'de> Visitor<'de> for ObjectVisitor {
                type Value = Members<'de>;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("a JSON object")
                }
                fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                    let mut members = Vec::with_capacity(map.size_hint().unwrap_or(16));
                    while let Some(entry) = map.next_entry::<String, &'de RawValue>()? {
                        members.push(entry);
                    }
                    Ok(Members(members))
                }
            }
            deserializer.deserialize_map(ObjectVisitor)
        }
    }

    let Members(entries) = serde_json::from_str(text).ok()?;
    let base = text.as_ptr() as usize;
    entries
        .into_iter()
        .map(|(key, raw)| {
            let start = (raw.get().as_ptr() as usize).checked_sub(base)?;
            Some(Member {
                key: key.into_boxed_str(),
                span: start..start + raw.get().len(),
                value: OnceLock::new(),
            })
        })
        .collect()
}

impl Clone for JsonText {
    fn clone(&self) -> Self {
        match &self.remote {
            Some(remote) if self.text.get().is_none() => JsonText {
                text: OnceLock::new(),
                remote: Some(Remote::new(remote.values, remote.change, remote.side)),
                parsed: OnceLock::new(),
                members: OnceLock::new(),
            },
            _ => JsonText::new(self.as_str().to_string()),
        }
    }
}

impl PartialEq for JsonText {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for JsonText {}

impl fmt::Debug for JsonText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for JsonText {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let raw: &RawValue =
            serde_json::from_str(self.as_str()).map_err(serde::ser::Error::custom)?;
        raw.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for JsonText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Box::<RawValue>::deserialize(deserializer)?;
        Ok(JsonText::new(String::from(Box::<str>::from(raw))))
    }
}

/// Deserializes an optional JSON value, treating `null` as absent.
pub(crate) fn optional<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<JsonText>, D::Error> {
    let raw = Option::<Box<RawValue>>::deserialize(deserializer)?;
    Ok(raw
        .filter(|raw| raw.get() != "null")
        .map(|raw| JsonText::new(String::from(Box::<str>::from(raw)))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const DOC: &str = r#"{"a": {"b": [1, {"c": "x"}]}, "t~/k": 2, "n": null, "a": {"b": [3]},
                          "e\u0073c": "esc"}"#;

    #[test]
    fn pointers_agree_with_the_parsed_tree() {
        let text = JsonText::new(DOC);
        let whole: Value = serde_json::from_str(DOC).unwrap();
        for pointer in [
            "/a", "/a/b", "/a/b/0", "/a/b/1", "/t~0~1k", "/n", "/esc", "/nope", "a", "/a/",
        ] {
            assert_eq!(text.pointer(pointer), whole.pointer(pointer), "{pointer}");
        }
        // Only the members read were parsed, never the whole tree.
        assert!(text.parsed.get().is_none());
        assert_eq!(text.pointer(""), Some(&whole));
        assert!(text.has_key("n") && text.has_key("esc") && !text.has_key("b"));
        assert_eq!(
            text.keys().map(Iterator::collect::<Vec<_>>),
            Some(vec!["a", "t~/k", "n", "a", "esc"])
        );
        assert_eq!(text.member_text("/t~0~1k"), Some("2"));
        assert_eq!(text.member_text("/a"), Some(r#"{"b": [3]}"#));
        assert_eq!(text.member_text("/a/b"), None);
        assert!(JsonText::new("[1]").keys().is_none());
    }

    #[test]
    fn non_objects_and_invalid_text() {
        let array = JsonText::new("[1, 2]");
        assert_eq!(array.pointer("/1"), Some(&Value::from(2)));
        assert!(!array.has_key("1"));
        let broken = JsonText::new(r#"{"a": 1"#);
        assert_eq!(broken.pointer("/a"), None);
        assert_eq!(broken.value(), None);
    }

    #[test]
    fn member_differences_compare_values_not_spelling() {
        let before = JsonText::new(r#"{"a": 1, "b": {"x": 1, "y": 2}, "c": 3}"#);
        let after = JsonText::new(r#"{"a": 1, "b": {"y": 2, "x": 1}, "d": 4}"#);
        assert!(!before.member_differs(&after, "a"));
        assert!(!before.member_differs(&after, "b"));
        assert!(before.member_differs(&after, "c"));
        assert!(before.member_differs(&after, "d"));
        assert!(!before.member_differs(&after, "z"));
    }

    struct Host;
    static HOST_DOC: &str = r#"{"tags": {"env": "prod"}, "size": 3}"#;
    impl RemoteValues for Host {
        fn text_at(&self, change: u32, side: Side, pointer: &str) -> Option<String> {
            let whole: Value = serde_json::from_str(HOST_DOC).ok()?;
            (change == 7 && side == Side::After)
                .then(|| whole.pointer(pointer).map(Value::to_string))?
        }
    }

    #[test]
    fn remote_values_are_fetched_when_first_read() {
        let text = JsonText::remote(&Host, 7, Side::After);
        assert!(
            text.text.get().is_none(),
            "nothing is fetched before a read"
        );
        assert_eq!(
            text.pointer("/tags/env").and_then(Value::as_str),
            Some("prod")
        );
        assert!(text.has_key("size") && text.parsed.get().is_none());
        let local = JsonText::new(r#"{"tags": {"env": "prod"}, "size": 4}"#);
        assert!(!text.member_differs(&local, "tags"));
        assert!(text.member_differs(&local, "size"));
        assert_eq!(
            text.value(),
            serde_json::from_str::<Value>(HOST_DOC).ok().as_ref()
        );
        assert_eq!(text.clone().as_str(), text.as_str());
        let missing = JsonText::remote(&Host, 7, Side::Before);
        assert_eq!(missing.pointer("/tags"), None);
        assert_eq!(missing.as_str(), "null");
    }

    /// A host that answers as provkey's does (`plan_view::text_at`), from one
    /// local value, and records what it was asked.
    struct Recording {
        value: JsonText,
        asked: std::sync::Mutex<Vec<String>>,
    }

    impl Recording {
        fn leak(text: &str) -> &'static Recording {
            Box::leak(Box::new(Recording {
                value: JsonText::new(text),
                asked: std::sync::Mutex::new(Vec::new()),
            }))
        }

        fn asked(&self) -> Vec<String> {
            self.asked.lock().unwrap().clone()
        }
    }

    impl RemoteValues for Recording {
        fn text_at(&self, _change: u32, _side: Side, pointer: &str) -> Option<String> {
            self.asked.lock().unwrap().push(pointer.to_string());
            if pointer.is_empty() {
                return Some(self.value.as_str().to_string());
            }
            if let Some(text) = self.value.member_text(pointer) {
                return Some(text.to_string());
            }
            self.value.pointer(pointer).map(Value::to_string)
        }
    }

    #[test]
    fn a_remote_value_fetches_the_members_read_then_the_whole() {
        let host = Recording::leak(
            r#"{"tags": {"env": "prod"}, "a": 1, "b": [2], "c~/d": 3, "e": null, "f": 5}"#,
        );
        let text = JsonText::remote(host, 0, Side::After);
        assert_eq!(
            text.pointer("/tags/env").and_then(Value::as_str),
            Some("prod")
        );
        assert!(text.has_key("tags") && text.has_key("e") && !text.has_key("zz"));
        assert_eq!(text.member_text("/c~0~1d"), Some("3"));
        // One call per member, each asked once; nothing fetched whole yet.
        assert_eq!(host.asked(), ["/tags", "/e", "/zz", "/c~0~1d"]);
        assert!(text.text.get().is_none());
        // A fifth member: the whole text, and every later read from it.
        assert_eq!(text.pointer("/b/0"), Some(&Value::from(2)));
        assert!(text.has_key("f") && text.has_key("tags"));
        assert_eq!(host.asked(), ["/tags", "/e", "/zz", "/c~0~1d", ""]);
        // An array index is never asked as a member.
        let array = Recording::leak("[7, 8]");
        let remote = JsonText::remote(array, 0, Side::After);
        assert!(!remote.has_key("0") && remote.member_text("/1").is_none());
        assert_eq!(remote.pointer("/1"), Some(&Value::from(8)));
        assert_eq!(array.asked(), [""]);
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i32>().prop_map(Value::from),
            "[a-z~/\"]{0,4}".prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                prop::collection::btree_map("[a-c~/]{0,2}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn lazy_lookups_match_value_pointer(value in json_value(), probe in "(/[a-c~01/]{0,2}){0,3}") {
            let text = JsonText::new(value.to_string());
            prop_assert_eq!(text.pointer(&probe), value.pointer(&probe));
            // A remote value (members fetched one by one, then whole) answers
            // exactly as the local one, whatever is read and in whatever order.
            let host = Recording::leak(&value.to_string());
            let remote = JsonText::remote(host, 0, Side::After);
            let other = JsonText::new(r#"{"a": 1, "b~": [], "": null}"#);
            let keys = ["a", "b~", "", "0", "-", "c/", "~1", "zz"];
            for key in keys {
                let pointer = crate::pointer::from_segments([key]);
                prop_assert_eq!(remote.has_key(key), text.has_key(key), "has_key {}", key);
                prop_assert_eq!(remote.member_text(&pointer), text.member_text(&pointer));
                prop_assert_eq!(remote.pointer(&pointer), text.pointer(&pointer));
                prop_assert_eq!(
                    remote.member_differs(&other, key),
                    text.member_differs(&other, key)
                );
            }
            prop_assert_eq!(remote.pointer(&probe), value.pointer(&probe));
            if let Some(object) = value.as_object() {
                for key in object.keys() {
                    let pointer = crate::pointer::from_segments([key]);
                    prop_assert_eq!(text.pointer(&pointer), object.get(key));
                }
            }
        }
    }
}
