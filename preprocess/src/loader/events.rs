//! The event side of the loader: pulls `saphyr-parser` events over the streaming character
//! input, builds small [`Node`] trees on demand (one request, the spec, anchored values) and
//! skips what is not needed, keeping anchored values for later aliases. Everything held is
//! bounded by [`LoadOptions`].

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::rc::Rc;

use saphyr_parser::{BufferedInput, Event, Parser, Span, Tag};

use super::{LoadError, LoadOptions};
use crate::yaml::{is_plain, CharInput, InputError, InputState, Node, NodeKind, ScalarTag};

/// Bytes charged per node on top of its text, so that many tiny nodes also count.
const NODE_OVERHEAD: usize = 48;

/// Events in, trees out.
pub(crate) struct EventStream<'a, R: Read> {
    parser: Parser<'a, BufferedInput<CharInput<R>>>,
    input: Rc<InputState>,
    name: String,
    opts: LoadOptions,
    anchors: HashMap<usize, Rc<Node>>,
    in_progress: HashSet<usize>,
    anchored_bytes: usize,
}

impl<'a, R: Read + 'a> EventStream<'a, R> {
    pub(crate) fn new(name: &str, reader: R, opts: &LoadOptions) -> Self {
        let input = InputState::new(opts.max_scalar_bytes);
        let chars = CharInput::new(reader, Rc::clone(&input));
        EventStream {
            parser: Parser::new_from_iter(chars),
            input,
            name: name.to_string(),
            opts: opts.clone(),
            anchors: HashMap::new(),
            in_progress: HashSet::new(),
            anchored_bytes: 0,
        }
    }

    /// The next event. Input failures (I/O, gzip, UTF-8, scalar limit) take precedence over
    /// whatever the parser made of the cut-short input.
    pub(crate) fn next(&mut self) -> Result<(Event<'a>, Span), LoadError> {
        let next = self.parser.next_event();
        self.input.event_seen();
        if let Some(e) = self.input_error() {
            return Err(e);
        }
        match next {
            Some(Ok(ev)) => Ok(ev),
            Some(Err(e)) => Err(LoadError::Syntax {
                name: self.name.clone(),
                line: e.marker().line(),
                message: format!("{} (column {})", e.info(), e.marker().col() + 1),
            }),
            None => Err(self.syntax(0, "unexpected end of the event stream")),
        }
    }

    /// Reports an input failure that may have ended the stream early (checked at the end too).
    pub(crate) fn input_error(&mut self) -> Option<LoadError> {
        if !self.input.has_error() {
            return None;
        }
        let name = self.name.clone();
        self.input.take_error().map(|e| match e {
            InputError::Io(source) => LoadError::Read { name, source },
            InputError::NotUtf8 { offset } => LoadError::NotUtf8 { name, offset },
            InputError::ScalarTooLarge { limit, offset } => LoadError::ScalarTooLarge {
                name,
                limit,
                offset,
            },
        })
    }

    pub(crate) fn syntax(&self, line: usize, message: &str) -> LoadError {
        LoadError::Syntax {
            name: self.name.clone(),
            line,
            message: message.to_string(),
        }
    }

    fn limit(&self, message: String) -> LoadError {
        LoadError::Limit {
            name: self.name.clone(),
            message,
        }
    }

    /// Builds the node that starts with `first` (a scalar, an alias, or a collection start).
    pub(crate) fn build(&mut self, first: (Event<'a>, Span)) -> Result<Node, LoadError> {
        let mut held = 0usize;
        let line = first.1.start.line();
        self.build_at(first, 0, &mut held, line)
    }

    fn charge(&self, held: &mut usize, bytes: usize, root_line: usize) -> Result<(), LoadError> {
        *held += bytes + NODE_OVERHEAD;
        if *held > self.opts.max_node_bytes {
            return Err(self.limit(format!(
                "the value starting at line {root_line} needs more than {} bytes in memory \
                 (LoadOptions::max_node_bytes); each request, the spec, and each anchored \
                 value (an anchored `requests` list is one value) must fit",
                self.opts.max_node_bytes
            )));
        }
        Ok(())
    }

    fn build_at(
        &mut self,
        (event, span): (Event<'a>, Span),
        depth: usize,
        held: &mut usize,
        root_line: usize,
    ) -> Result<Node, LoadError> {
        if depth > self.opts.max_depth {
            return Err(self.limit(format!(
                "line {}: nesting deeper than {} levels (LoadOptions::max_depth)",
                span.start.line(),
                self.opts.max_depth
            )));
        }
        let line = span.start.line();
        let col = span.start.col() + 1;
        let before = *held;
        let (kind, anchor) = match event {
            Event::Scalar(value, style, anchor, tag) => {
                self.charge(held, value.len(), root_line)?;
                let kind = NodeKind::Scalar {
                    value: value.into_owned(),
                    plain: is_plain(style),
                    tag: scalar_tag(tag.as_deref()),
                };
                (kind, anchor)
            }
            Event::Alias(id) => {
                self.charge(held, 0, root_line)?;
                if self.in_progress.contains(&id) {
                    return Err(self.syntax(line, "anchor value contains itself"));
                }
                let Some(target) = self.anchors.get(&id) else {
                    return Err(self.syntax(line, "unknown anchor referenced"));
                };
                return Ok(Node {
                    kind: NodeKind::Alias(Rc::clone(target)),
                    line,
                    col,
                });
            }
            Event::SequenceStart(anchor, _) => {
                self.charge(held, 0, root_line)?;
                if anchor != 0 {
                    self.in_progress.insert(anchor);
                }
                let mut items = Vec::new();
                loop {
                    let ev = self.next()?;
                    if matches!(ev.0, Event::SequenceEnd) {
                        break;
                    }
                    items.push(self.build_at(ev, depth + 1, held, root_line)?);
                }
                self.in_progress.remove(&anchor);
                (NodeKind::Seq(items), anchor)
            }
            Event::MappingStart(anchor, _) => {
                self.charge(held, 0, root_line)?;
                if anchor != 0 {
                    self.in_progress.insert(anchor);
                }
                let mut entries = Vec::new();
                loop {
                    let ev = self.next()?;
                    if matches!(ev.0, Event::MappingEnd) {
                        break;
                    }
                    let key = self.build_at(ev, depth + 1, held, root_line)?;
                    let ev = self.next()?;
                    let value = self.build_at(ev, depth + 1, held, root_line)?;
                    entries.push((key, value));
                }
                self.in_progress.remove(&anchor);
                (NodeKind::Map(entries), anchor)
            }
            other => {
                return Err(self.syntax(line, &format!("unexpected YAML event {other:?}")));
            }
        };
        let node = Node { kind, line, col };
        if anchor == 0 {
            return Ok(node);
        }
        self.anchored_bytes += *held - before;
        if self.anchored_bytes > self.opts.max_node_bytes {
            return Err(self.limit(format!(
                "line {line}: anchored values hold more than {} bytes in total \
                 (LoadOptions::max_node_bytes); every anchored value is kept because a later \
                 alias may name it",
                self.opts.max_node_bytes
            )));
        }
        let shared = Rc::new(node);
        self.anchors.insert(anchor, Rc::clone(&shared));
        Ok(Node {
            kind: NodeKind::Anchored(shared),
            line,
            col,
        })
    }

    /// Consumes the node that starts with `first` without keeping it, except for anchored
    /// values inside it, which a later alias may name.
    pub(crate) fn skip(&mut self, first: (Event<'a>, Span)) -> Result<(), LoadError> {
        self.skip_at(first, 0)
    }

    fn skip_at(&mut self, first: (Event<'a>, Span), depth: usize) -> Result<(), LoadError> {
        if depth > self.opts.max_depth {
            return Err(self.limit(format!(
                "line {}: nesting deeper than {} levels (LoadOptions::max_depth)",
                first.1.start.line(),
                self.opts.max_depth
            )));
        }
        let end_matches: fn(&Event) -> bool = match &first.0 {
            Event::Scalar(_, _, anchor, _) if *anchor != 0 => return self.build(first).map(drop),
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) if *anchor != 0 => {
                return self.build(first).map(drop)
            }
            Event::Scalar(..) | Event::Alias(_) => return Ok(()),
            Event::SequenceStart(..) => |e| matches!(e, Event::SequenceEnd),
            Event::MappingStart(..) => |e| matches!(e, Event::MappingEnd),
            other => {
                let line = first.1.start.line();
                return Err(self.syntax(line, &format!("unexpected YAML event {other:?}")));
            }
        };
        loop {
            let ev = self.next()?;
            if end_matches(&ev.0) {
                return Ok(());
            }
            self.skip_at(ev, depth + 1)?;
        }
    }
}

fn scalar_tag(tag: Option<&Tag>) -> ScalarTag {
    match tag {
        None => ScalarTag::None,
        Some(t) if t.is_yaml_core_schema() || t.handle == "!!" => ScalarTag::Core(t.suffix.clone()),
        Some(t) => ScalarTag::Other(t.to_string()),
    }
}
