//! The plan summary of `provkey:plan@0.6.0`: every change without its attribute
//! values, packed into numbers that point into one text (the layout is in
//! `wit/plan@0.6.0/types.wit`, at `plan-view`).
//!
//! The host packs ([`pack`]) and the guest SDK unpacks ([`unpack`]); both sides
//! live here so that one layout serves both and a round trip tests it.
//!
//! Numbers instead of records because the canonical ABI copies a list of numbers
//! into a guest in one move, where it writes a record field by field.

use std::collections::HashMap;
use std::fmt;

use crate::{
    Action, JsonText, PROVKEY_PLAN_FORMAT, PROVKEY_PLAN_FORMAT_VERSION, Plan, PlanSource,
    RemoteValues, ReplaceOrder, Replacement, ResourceChange, ResourceMode, Side,
};

/// The numbers of one change.
pub const CHANGE_WORDS: u32 = 26;

const ADDRESS: usize = 0;
const PREVIOUS_ADDRESS: usize = 2;
const MODULE_PATH: usize = 4;
const TYPE: usize = 6;
const NAME: usize = 8;
const PROVIDER: usize = 10;
const ACTION: usize = 12;
const FLAGS: usize = 13;
const REASON: usize = 14;
const PATHS: usize = 16;
const AFTER_UNKNOWN: usize = 18;
const BEFORE_SENSITIVE: usize = 20;
const AFTER_SENSITIVE: usize = 22;
const DEPENDS_ON: usize = 24;

const FLAG_DATA: u32 = 1;
const FLAG_BEFORE: u32 = 2;
const FLAG_AFTER: u32 = 4;
const FLAG_PREVIOUS_ADDRESS: u32 = 8;
const FLAG_CREATE_BEFORE_DESTROY: u32 = 16;
const FLAG_REASON: u32 = 32;
const FLAGS_KNOWN: u32 = 63;

const ACTIONS: [&str; 7] = [
    "create", "replace", "destroy", "read", "no-op", "forget", "update",
];

/// A string of the summary: the bytes `start .. start + len` of its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    pub start: u32,
    pub len: u32,
}

/// A packed plan summary, as `plan-view.plan-summary` of 0.6.0 carries it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PackedSummary {
    pub text: String,
    pub source: Span,
    pub format_version: Span,
    pub change_count: u32,
    pub changes: Vec<u32>,
    pub strings: Vec<u32>,
}

/// Packs `plan`'s changes without their attribute values; `None` when the plan's
/// strings or changes pass what 32-bit numbers address (4 GiB, more than any guest
/// memory holds anyway).
///
/// A string seen before (a type, a provider, a module path, a path in a list)
/// reuses its span; addresses, unique within a plan, and names, nearly so, are not
/// looked up (looking up names made packing 10 % slower for nothing).
///
/// The host packs once per check while every policy on this contract waits for it,
/// so the buffers are sized up front and strings hash with foldhash (SipHash and
/// regrowth made 0.4.0's summary cost 1.4 µs per change).
pub fn pack(plan: &Plan) -> Option<PackedSummary> {
    let mut packer = Packer {
        text: String::new(),
        strings: Vec::new(),
        seen: HashMap::with_capacity_and_hasher(plan.changes.len(), Default::default()),
    };
    // A change's strings take about 100 bytes (an address, a name, repeats written
    // once); a wrong guess only costs a regrowth.
    packer.text.reserve(plan.changes.len().saturating_mul(100));
    let source = packer.string(plan.source.as_str())?;
    let format_version = packer.string(&plan.source_version)?;
    let mut changes = Vec::with_capacity(plan.changes.len().checked_mul(CHANGE_WORDS as usize)?);
    for change in &plan.changes {
        let words = packer.change(change)?;
        changes.extend_from_slice(&words);
    }
    Some(PackedSummary {
        text: packer.text,
        source,
        format_version,
        change_count: u32::try_from(plan.changes.len()).ok()?,
        changes,
        strings: packer.strings,
    })
}

struct Packer<'a> {
    text: String,
    strings: Vec<u32>,
    seen: HashMap<&'a str, Span, foldhash::fast::RandomState>,
}

impl<'a> Packer<'a> {
    fn change(&mut self, change: &'a ResourceChange) -> Option<[u32; CHANGE_WORDS as usize]> {
        let mut words = [0u32; CHANGE_WORDS as usize];
        let mut flags = 0;
        put(&mut words, ADDRESS, self.append(&change.address)?);
        if let Some(previous) = &change.previous_address {
            put(&mut words, PREVIOUS_ADDRESS, self.append(previous)?);
            flags |= FLAG_PREVIOUS_ADDRESS;
        }
        put(&mut words, MODULE_PATH, self.string(&change.module_path)?);
        put(&mut words, TYPE, self.string(&change.resource_type)?);
        put(&mut words, NAME, self.append(&change.name)?);
        put(&mut words, PROVIDER, self.string(&change.provider)?);
        words[ACTION] = match &change.action {
            Action::Create => 0,
            Action::Replace(replacement) => {
                if replacement.order == ReplaceOrder::CreateBeforeDestroy {
                    flags |= FLAG_CREATE_BEFORE_DESTROY;
                }
                if let Some(reason) = &replacement.reason {
                    put(&mut words, REASON, self.string(reason)?);
                    flags |= FLAG_REASON;
                }
                put(&mut words, PATHS, self.list(&replacement.paths)?);
                1
            }
            Action::Destroy => 2,
            Action::Read => 3,
            Action::NoOp => 4,
            Action::Forget => 5,
            Action::Update => 6,
        };
        if change.mode == ResourceMode::Data {
            flags |= FLAG_DATA;
        }
        if change.before.is_some() {
            flags |= FLAG_BEFORE;
        }
        if change.after.is_some() {
            flags |= FLAG_AFTER;
        }
        words[FLAGS] = flags;
        put(&mut words, AFTER_UNKNOWN, self.list(&change.after_unknown)?);
        put(
            &mut words,
            BEFORE_SENSITIVE,
            self.list(&change.before_sensitive)?,
        );
        put(
            &mut words,
            AFTER_SENSITIVE,
            self.list(&change.after_sensitive)?,
        );
        put(&mut words, DEPENDS_ON, self.list(&change.depends_on)?);
        Some(words)
    }

    /// `text` appended, or its span if it was seen before.
    fn string(&mut self, text: &'a str) -> Option<Span> {
        if let Some(span) = self.seen.get(text) {
            return Some(*span);
        }
        let span = self.append(text)?;
        self.seen.insert(text, span);
        Some(span)
    }

    fn append(&mut self, text: &str) -> Option<Span> {
        let span = Span {
            start: u32::try_from(self.text.len()).ok()?,
            len: u32::try_from(text.len()).ok()?,
        };
        span.start.checked_add(span.len)?;
        self.text.push_str(text);
        Some(span)
    }

    /// A list's first element and count, as a span of `strings`' pairs.
    fn list(&mut self, items: &'a [String]) -> Option<Span> {
        let list = Span {
            start: u32::try_from(self.strings.len() / 2).ok()?,
            len: u32::try_from(items.len()).ok()?,
        };
        list.start.checked_add(list.len)?;
        for item in items {
            let span = self.string(item)?;
            self.strings.extend_from_slice(&[span.start, span.len]);
        }
        Some(list)
    }
}

fn put(words: &mut [u32; CHANGE_WORDS as usize], at: usize, span: Span) {
    words[at] = span.start;
    words[at + 1] = span.len;
}

/// Why a packed summary could not be read: the host broke the layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnpackError(String);

impl fmt::Display for UnpackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the plan summary {}", self.0)
    }
}

impl std::error::Error for UnpackError {}

/// A packed summary as the guest receives it (borrowed from wit-bindgen's record).
#[derive(Debug, Clone, Copy)]
pub struct PackedView<'a> {
    pub text: &'a str,
    pub source: Span,
    pub format_version: Span,
    pub change_count: u32,
    pub change_words: u32,
    pub changes: &'a [u32],
    pub strings: &'a [u32],
}

/// Builds the plan model from a packed summary: each span becomes a string of the
/// model, and each attribute value is left with `values`, asked when read.
///
/// Nothing the host sends is trusted: a span outside the text (or splitting a
/// character), a list outside `strings`, an unknown action or flag, or lengths that
/// do not match the layout are refused, never a panic.
pub fn unpack(
    summary: PackedView<'_>,
    values: &'static dyn RemoteValues,
) -> Result<Plan, UnpackError> {
    if summary.change_words != CHANGE_WORDS {
        return Err(UnpackError(format!(
            "has {} numbers per change where 0.6.0 has {CHANGE_WORDS}",
            summary.change_words
        )));
    }
    let expected = (summary.change_count as usize).checked_mul(CHANGE_WORDS as usize);
    if expected != Some(summary.changes.len()) {
        return Err(UnpackError(format!(
            "has {} numbers for {} changes of {CHANGE_WORDS}",
            summary.changes.len(),
            summary.change_count
        )));
    }
    if !summary.strings.len().is_multiple_of(2) {
        return Err(UnpackError(format!(
            "has an odd count of list numbers ({})",
            summary.strings.len()
        )));
    }
    let reader = Reader {
        text: summary.text,
        strings: summary.strings,
    };
    let source = match reader.str(summary.source)? {
        "provkey" => PlanSource::Provkey,
        "terraform" | "opentofu" => PlanSource::Terraform,
        "kubernetes" => PlanSource::Kubernetes,
        other => return Err(UnpackError(format!("names an unknown source `{other}`"))),
    };
    // Sized up front: the guest's bump allocator reuses nothing, so growing the
    // vector by doubling would copy it to fresh memory at each step.
    let mut changes = Vec::with_capacity(summary.change_count as usize);
    for (index, words) in (0u32..).zip(summary.changes.chunks_exact(CHANGE_WORDS as usize)) {
        changes.push(reader.change(index, words, values)?);
    }
    Ok(Plan {
        format: PROVKEY_PLAN_FORMAT.to_string(),
        format_version: PROVKEY_PLAN_FORMAT_VERSION.to_string(),
        source,
        source_version: reader.string(summary.format_version)?,
        changes,
    })
}

struct Reader<'a> {
    text: &'a str,
    strings: &'a [u32],
}

impl Reader<'_> {
    // Every string of the plan passes here, in every sandbox: the error is built out
    // of line, so that the path taken stays small enough to inline (a sixth of an
    // evaluation of a policy that reads only the summary, `destroy-budget`).
    #[inline]
    fn str(&self, span: Span) -> Result<&str, UnpackError> {
        let start = span.start as usize;
        match start
            .checked_add(span.len as usize)
            .and_then(|end| self.text.get(start..end))
        {
            Some(text) => Ok(text),
            None => Err(self.span_error(span)),
        }
    }

    #[cold]
    #[inline(never)]
    fn span_error(&self, span: Span) -> UnpackError {
        UnpackError(format!(
            "has a span {}+{} that is not within its text of {} bytes",
            span.start,
            span.len,
            self.text.len()
        ))
    }

    #[inline]
    fn string(&self, span: Span) -> Result<String, UnpackError> {
        self.str(span).map(str::to_string)
    }

    fn list(&self, list: Span) -> Result<Vec<String>, UnpackError> {
        // Most lists of most changes are empty (four per change).
        if list.len == 0 {
            return Ok(Vec::new());
        }
        let first = (list.start as usize).checked_mul(2);
        let pairs = first
            .and_then(|first| Some(first..first.checked_add((list.len as usize).checked_mul(2)?)?))
            .and_then(|range| self.strings.get(range))
            .ok_or_else(|| {
                UnpackError(format!(
                    "has a list {}+{} that is not within its {} list elements",
                    list.start,
                    list.len,
                    self.strings.len() / 2
                ))
            })?;
        let mut strings = Vec::with_capacity(list.len as usize);
        for pair in pairs.chunks_exact(2) {
            strings.push(self.string(Span {
                start: pair[0],
                len: pair[1],
            })?);
        }
        Ok(strings)
    }

    fn change(
        &self,
        index: u32,
        words: &[u32],
        values: &'static dyn RemoteValues,
    ) -> Result<ResourceChange, UnpackError> {
        let spans = ChangeSpans::decode(index, words)?;
        let action = match spans.action {
            ActionSpans::Create => Action::Create,
            ActionSpans::Replace {
                order,
                reason,
                paths,
            } => Action::Replace(Replacement {
                order,
                reason: reason.map(|reason| self.string(reason)).transpose()?,
                paths: self.list(paths)?,
            }),
            ActionSpans::Destroy => Action::Destroy,
            ActionSpans::Read => Action::Read,
            ActionSpans::NoOp => Action::NoOp,
            ActionSpans::Forget => Action::Forget,
            ActionSpans::Update => Action::Update,
        };
        Ok(ResourceChange {
            address: self.string(spans.address)?,
            previous_address: spans
                .previous_address
                .map(|address| self.string(address))
                .transpose()?,
            module_path: self.string(spans.module_path)?,
            mode: spans.mode,
            resource_type: self.string(spans.resource_type)?,
            name: self.string(spans.name)?,
            provider: self.string(spans.provider)?,
            action,
            before: spans
                .has_before
                .then(|| JsonText::remote(values, index, Side::Before)),
            after: spans
                .has_after
                .then(|| JsonText::remote(values, index, Side::After)),
            after_unknown: self.list(spans.after_unknown)?,
            before_sensitive: self.list(spans.before_sensitive)?,
            after_sensitive: self.list(spans.after_sensitive)?,
            depends_on: self.list(spans.depends_on)?,
        })
    }
}

/// One change of a packed summary, its numbers by name. A string is a [`Span`] of
/// the text; a list is a [`Span`] of `strings`' pairs (`start` is the first
/// element, `len` the count).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChangeSpans {
    pub address: Span,
    pub previous_address: Option<Span>,
    pub module_path: Span,
    pub mode: ResourceMode,
    pub resource_type: Span,
    pub name: Span,
    pub provider: Span,
    pub action: ActionSpans,
    pub has_before: bool,
    pub has_after: bool,
    pub after_unknown: Span,
    pub before_sensitive: Span,
    pub after_sensitive: Span,
    pub depends_on: Span,
}

/// A change's action, its strings as spans.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionSpans {
    Create,
    Replace {
        order: ReplaceOrder,
        reason: Option<Span>,
        paths: Span,
    },
    Destroy,
    Read,
    NoOp,
    Forget,
    Update,
}

impl ChangeSpans {
    /// Reads change number `index` from its numbers; an unknown action or flag, or
    /// fewer numbers than a change has, is refused.
    pub fn decode(index: u32, words: &[u32]) -> Result<ChangeSpans, UnpackError> {
        let Some(words) = words.first_chunk::<{ CHANGE_WORDS as usize }>() else {
            return Err(UnpackError(format!(
                "gives change {index} {} numbers where 0.6.0 has {CHANGE_WORDS}",
                words.len()
            )));
        };
        let span = |at: usize| Span {
            start: words[at],
            len: words[at + 1],
        };
        let flags = words[FLAGS];
        if flags & !FLAGS_KNOWN != 0 {
            return Err(UnpackError(format!(
                "gives change {index} unknown flags {flags}"
            )));
        }
        let action = match words[ACTION] {
            0 => ActionSpans::Create,
            1 => ActionSpans::Replace {
                order: if flags & FLAG_CREATE_BEFORE_DESTROY != 0 {
                    ReplaceOrder::CreateBeforeDestroy
                } else {
                    ReplaceOrder::DestroyBeforeCreate
                },
                reason: (flags & FLAG_REASON != 0).then(|| span(REASON)),
                paths: span(PATHS),
            },
            2 => ActionSpans::Destroy,
            3 => ActionSpans::Read,
            4 => ActionSpans::NoOp,
            5 => ActionSpans::Forget,
            6 => ActionSpans::Update,
            other => {
                return Err(UnpackError(format!(
                    "gives change {index} action number {other}, where 0.6.0 knows {} ({})",
                    ACTIONS.len(),
                    ACTIONS.join(", ")
                )));
            }
        };
        Ok(ChangeSpans {
            address: span(ADDRESS),
            previous_address: (flags & FLAG_PREVIOUS_ADDRESS != 0).then(|| span(PREVIOUS_ADDRESS)),
            module_path: span(MODULE_PATH),
            mode: if flags & FLAG_DATA != 0 {
                ResourceMode::Data
            } else {
                ResourceMode::Managed
            },
            resource_type: span(TYPE),
            name: span(NAME),
            provider: span(PROVIDER),
            action,
            has_before: flags & FLAG_BEFORE != 0,
            has_after: flags & FLAG_AFTER != 0,
            after_unknown: span(AFTER_UNKNOWN),
            before_sensitive: span(BEFORE_SENSITIVE),
            after_sensitive: span(AFTER_SENSITIVE),
            depends_on: span(DEPENDS_ON),
        })
    }
}

impl PackedSummary {
    /// The summary as [`unpack`] reads it.
    pub fn view(&self) -> PackedView<'_> {
        PackedView {
            text: &self.text,
            source: self.source,
            format_version: self.format_version,
            change_count: self.change_count,
            change_words: CHANGE_WORDS,
            changes: &self.changes,
            strings: &self.strings,
        }
    }
}
