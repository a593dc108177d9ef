//! IMAP commands and their parser. The input is one assembled command: the command line with
//! any literals already read and placed after their `{n}` markers.

use super::lexer::{Lexer, ParseError, Parsed};
use super::search::{self, SearchKey, SearchReturn};
use super::seqset::SeqSet;
use super::sort::{self, SortCriterion, ThreadAlgorithm};

/// A command with its tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tagged {
    /// The client's tag.
    pub tag: String,
    /// The command.
    pub command: Command,
}

/// STATUS data items.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusItem {
    /// MESSAGES
    Messages,
    /// UIDNEXT
    UidNext,
    /// UIDVALIDITY
    UidValidity,
    /// UNSEEN
    Unseen,
    /// SIZE (RFC 8438)
    Size,
    /// RECENT (IMAP4rev1: messages no session was shown yet)
    Recent,
    /// HIGHESTMODSEQ (RFC 7162)
    HighestModSeq,
    /// DELETED (RFC 9051): messages with `\Deleted`.
    Deleted,
    /// DELETED-STORAGE (RFC 9208): their size.
    DeletedStorage,
    /// APPENDLIMIT (RFC 7889): the largest message APPEND takes.
    AppendLimit,
}

/// A BODY[...] section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// Part path, e.g. [2, 1] for `2.1`; empty for the whole message.
    pub part: Vec<u32>,
    /// What of the part.
    pub text: SectionText,
}

/// The text selector of a section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SectionText {
    /// The whole part (or message).
    Full,
    /// HEADER
    Header,
    /// HEADER.FIELDS (...)
    Fields(Vec<String>),
    /// HEADER.FIELDS.NOT (...)
    FieldsNot(Vec<String>),
    /// TEXT
    Text,
    /// MIME
    Mime,
}

/// FETCH data items.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchItem {
    /// UID
    Uid,
    /// FLAGS
    Flags,
    /// INTERNALDATE
    InternalDate,
    /// RFC822.SIZE
    Size,
    /// ENVELOPE
    Envelope,
    /// BODYSTRUCTURE
    BodyStructure,
    /// BODY (non-extensible structure)
    Body,
    /// MODSEQ
    ModSeq,
    /// BINARY[part]<partial> / BINARY.PEEK (RFC 3516): content with its transfer encoding
    /// undone.
    Binary {
        /// Part path; empty for the whole message.
        part: Vec<u32>,
        /// `<start.length>`.
        partial: Option<(u64, u64)>,
        /// Does not set \Seen.
        peek: bool,
    },
    /// BINARY.SIZE[part] (RFC 3516): the size of BINARY[part].
    BinarySize {
        /// Part path; empty for the whole message.
        part: Vec<u32>,
    },
    /// BODY[section]<partial> / BODY.PEEK / RFC822 / RFC822.HEADER / RFC822.TEXT.
    Section {
        /// Which part.
        section: Section,
        /// `<start.length>` (RFC 9051: number64).
        partial: Option<(u64, u64)>,
        /// Does not set \Seen.
        peek: bool,
        /// Name used in the response (`RFC822`, `BODY[...]`).
        legacy: Option<&'static str>,
    },
}

/// LIST arguments (RFC 5258 LIST-EXTENDED, RFC 6154 SPECIAL-USE, RFC 5819 LIST-STATUS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListArgs {
    /// Reference name, prefixed to each pattern.
    pub reference: String,
    /// Mailbox patterns (`*`, `%`).
    pub patterns: Vec<String>,
    /// Selection option SUBSCRIBED: only subscribed mailboxes.
    pub subscribed_only: bool,
    /// Selection option SPECIAL-USE: only mailboxes with a special use.
    pub special_use_only: bool,
    /// Selection option RECURSIVEMATCH: also list parents of selected mailboxes that the
    /// patterns do not match, with CHILDINFO.
    pub recursive_match: bool,
    /// Return option SUBSCRIBED: mark subscribed mailboxes.
    pub ret_subscribed: bool,
    /// Return option STATUS: these items for each mailbox listed.
    pub ret_status: Option<Vec<StatusItem>>,
}

/// The QRESYNC parameter of SELECT/EXAMINE: what the client knew of the mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Qresync {
    /// The UIDVALIDITY the client knew.
    pub uidvalidity: u32,
    /// The highest MODSEQ it knew.
    pub modseq: u64,
    /// The UIDs it knows (absent: all up to the highest).
    pub known_uids: Option<SeqSet>,
}

/// How STORE changes flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreOp {
    /// FLAGS
    Replace,
    /// +FLAGS
    Add,
    /// -FLAGS
    Remove,
}

/// A parsed command.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Command {
    Capability,
    Noop,
    Logout,
    StartTls,
    Login {
        user: String,
        password: String,
    },
    Authenticate {
        mechanism: String,
        initial: Option<String>,
    },
    Id,
    Enable(Vec<String>),
    Namespace,
    /// GETQUOTA (RFC 9208).
    GetQuota {
        root: String,
    },
    /// GETQUOTAROOT (RFC 9208).
    GetQuotaRoot {
        name: String,
    },
    /// SETQUOTA (RFC 9208): quotas are set by the administrator, so always refused.
    SetQuota,
    /// COMPRESS (RFC 4978).
    Compress {
        mechanism: String,
    },
    List(ListArgs),
    Lsub {
        reference: String,
        pattern: String,
    },
    Create {
        name: String,
    },
    Delete {
        name: String,
    },
    Rename {
        from: String,
        to: String,
    },
    Subscribe {
        name: String,
    },
    Unsubscribe {
        name: String,
    },
    Status {
        name: String,
        items: Vec<StatusItem>,
    },
    Select {
        name: String,
        read_only: bool,
        /// `(CONDSTORE)`.
        condstore: bool,
        /// `(QRESYNC (...))` (RFC 7162 §3.2.5).
        qresync: Option<Qresync>,
    },
    Fetch {
        set: SeqSet,
        uid: bool,
        items: Vec<FetchItem>,
        changed_since: Option<u64>,
        /// `VANISHED` modifier (RFC 7162 §3.2.6): report expunged UIDs of the set first.
        vanished: bool,
    },
    Store {
        set: SeqSet,
        uid: bool,
        op: StoreOp,
        silent: bool,
        flags: Vec<String>,
        unchanged_since: Option<u64>,
    },
    Copy {
        set: SeqSet,
        uid: bool,
        mailbox: String,
        remove_source: bool,
    },
    Search {
        uid: bool,
        key: SearchKey,
        /// `RETURN (...)` (RFC 4731): the answer is an ESEARCH response.
        ret: Option<SearchReturn>,
        /// A CHARSET the server cannot search in: the reply is `NO [BADCHARSET]`, and the
        /// keys (whose strings may not be UTF-8) are not parsed.
        bad_charset: Option<String>,
    },
    /// SORT (RFC 5256), ESORT's `RETURN` (RFC 5267).
    Sort {
        uid: bool,
        criteria: Vec<SortCriterion>,
        key: SearchKey,
        ret: Option<SearchReturn>,
        bad_charset: Option<String>,
    },
    /// THREAD (RFC 5256).
    Thread {
        uid: bool,
        algorithm: ThreadAlgorithm,
        key: SearchKey,
        bad_charset: Option<String>,
    },
    Expunge {
        uids: Option<SeqSet>,
    },
    Append {
        mailbox: String,
        flags: Vec<String>,
        date: Option<i64>,
        message: Vec<u8>,
    },
    Idle,
    Close,
    Unselect,
    Check,
}

/// Parses an assembled command. On failure, returns the tag when one could be read.
pub fn parse(input: &[u8]) -> Result<Tagged, (Option<String>, ParseError)> {
    let mut l = Lexer::new(input);
    let tag = l.atom_with(b"").map_err(|e| (None, e))?;
    if tag.contains('+') {
        return Err((None, ParseError("invalid tag")));
    }
    let result = l.space().and_then(|_| command(&mut l)).and_then(|c| {
        l.end()?;
        Ok(c)
    });
    match result {
        Ok(command) => Ok(Tagged { tag, command }),
        Err(e) => Err((Some(tag), e)),
    }
}

/// Why a command naming a mailbox that is not valid modified UTF-7 fails: the session answers
/// it with `NO`, as for any name that cannot exist, not `BAD`.
pub const INVALID_MAILBOX_NAME: ParseError = ParseError("invalid modified UTF-7 in mailbox name");

/// A mailbox name argument, converted from modified UTF-7.
fn mailbox(l: &mut Lexer<'_>) -> Parsed<String> {
    l.space()?;
    super::mutf7::decode(&l.astring_text()?).ok_or(INVALID_MAILBOX_NAME)
}

/// Decodes a LIST reference or pattern from modified UTF-7; one that is not valid modified
/// UTF-7 is matched as it is (it matches no mailbox Tern can hold).
fn wire_name(text: String) -> Parsed<String> {
    Ok(super::mutf7::decode(&text).unwrap_or(text))
}

fn command(l: &mut Lexer<'_>) -> Parsed<Command> {
    let name = l.atom()?.to_ascii_uppercase();
    Ok(match name.as_str() {
        "CAPABILITY" => Command::Capability,
        "NOOP" => Command::Noop,
        "LOGOUT" => Command::Logout,
        "STARTTLS" => Command::StartTls,
        "IDLE" => Command::Idle,
        "CLOSE" => Command::Close,
        "UNSELECT" => Command::Unselect,
        "CHECK" => Command::Check,
        "NAMESPACE" => Command::Namespace,
        "GETQUOTA" => {
            l.space()?;
            Command::GetQuota {
                root: l.astring_text()?,
            }
        }
        "GETQUOTAROOT" => Command::GetQuotaRoot { name: mailbox(l)? },
        "COMPRESS" => {
            l.space()?;
            Command::Compress {
                mechanism: l.atom()?.to_ascii_uppercase(),
            }
        }
        "SETQUOTA" => {
            l.space()?;
            l.astring()?;
            l.space()?;
            l.list(|l| {
                l.atom()?;
                l.space()?;
                l.number()
            })?;
            Command::SetQuota
        }
        "EXPUNGE" => Command::Expunge { uids: None },
        "LOGIN" => {
            l.space()?;
            let user = l.astring_text()?;
            l.space()?;
            let password = l.astring_text()?;
            Command::Login { user, password }
        }
        "AUTHENTICATE" => {
            l.space()?;
            let mechanism = l.atom()?.to_ascii_uppercase();
            let initial = if l.eat(b' ') {
                Some(l.atom_with(b"=")?)
            } else {
                None
            };
            Command::Authenticate { mechanism, initial }
        }
        "ID" => {
            l.space()?;
            if !l.is_nil() {
                l.list(|l| {
                    if l.is_nil() {
                        Ok(Vec::new())
                    } else {
                        l.astring()
                    }
                })?;
            }
            Command::Id
        }
        "ENABLE" => {
            let mut caps = Vec::new();
            while l.eat(b' ') {
                caps.push(l.atom()?.to_ascii_uppercase());
            }
            if caps.is_empty() {
                return Err(ParseError("ENABLE needs a capability"));
            }
            Command::Enable(caps)
        }
        "LIST" => list(l)?,
        "LSUB" => {
            l.space()?;
            let reference = wire_name(l.astring_text()?)?;
            l.space()?;
            Command::Lsub {
                reference,
                pattern: wire_name(l.list_pattern()?)?,
            }
        }
        "CREATE" => {
            let name = mailbox(l)?;
            if l.eat(b' ') {
                // CREATE-SPECIAL-USE options are accepted and ignored.
                l.list(|l| l.atom_with(b"\\()"))?;
            }
            Command::Create { name }
        }
        "DELETE" => Command::Delete { name: mailbox(l)? },
        "RENAME" => {
            let from = mailbox(l)?;
            Command::Rename {
                from,
                to: mailbox(l)?,
            }
        }
        "SUBSCRIBE" => Command::Subscribe { name: mailbox(l)? },
        "UNSUBSCRIBE" => Command::Unsubscribe { name: mailbox(l)? },
        "STATUS" => {
            let name = mailbox(l)?;
            l.space()?;
            Command::Status {
                name,
                items: l.list(status_item)?,
            }
        }
        "SELECT" | "EXAMINE" => {
            let read_only = name == "EXAMINE";
            let mailbox_name = mailbox(l)?;
            let (mut condstore, mut qresync) = (false, None);
            if l.eat(b' ') {
                l.expect(b'(', "expected (")?;
                while !l.eat(b')') {
                    l.eat(b' ');
                    match l.atom()?.to_ascii_uppercase().as_str() {
                        "CONDSTORE" => condstore = true,
                        "QRESYNC" => {
                            l.space()?;
                            qresync = Some(qresync_param(l)?);
                        }
                        _ => return Err(ParseError("unknown SELECT parameter")),
                    }
                }
            }
            Command::Select {
                name: mailbox_name,
                read_only,
                condstore,
                qresync,
            }
        }
        "APPEND" => append(l)?,
        "UID" => {
            l.space()?;
            let sub = l.atom()?.to_ascii_uppercase();
            match sub.as_str() {
                "FETCH" => fetch(l, true)?,
                "STORE" => store(l, true)?,
                "COPY" => copy(l, true, false)?,
                "MOVE" => copy(l, true, true)?,
                "SEARCH" => search_cmd(l, true)?,
                "SORT" => sort_cmd(l, true)?,
                "THREAD" => thread_cmd(l, true)?,
                "EXPUNGE" => {
                    l.space()?;
                    Command::Expunge {
                        uids: Some(SeqSet::parse(l)?),
                    }
                }
                _ => return Err(ParseError("unknown UID command")),
            }
        }
        "FETCH" => fetch(l, false)?,
        "STORE" => store(l, false)?,
        "COPY" => copy(l, false, false)?,
        "MOVE" => copy(l, false, true)?,
        "SEARCH" => search_cmd(l, false)?,
        "SORT" => sort_cmd(l, false)?,
        "THREAD" => thread_cmd(l, false)?,
        _ => return Err(ParseError("unknown command")),
    })
}

fn list(l: &mut Lexer<'_>) -> Parsed<Command> {
    l.space()?;
    let (mut subscribed_only, mut special_use_only, mut recursive_match) = (false, false, false);
    if l.peek() == Some(b'(') {
        for opt in l.list(|l| l.atom())? {
            match opt.to_ascii_uppercase().as_str() {
                "SUBSCRIBED" => subscribed_only = true,
                "SPECIAL-USE" => special_use_only = true,
                "RECURSIVEMATCH" => recursive_match = true,
                "REMOTE" => {}
                _ => return Err(ParseError("unknown LIST selection option")),
            }
        }
        // RFC 5258 §3.1: RECURSIVEMATCH qualifies another selection option.
        if recursive_match && !subscribed_only && !special_use_only {
            return Err(ParseError("RECURSIVEMATCH needs another selection option"));
        }
        l.space()?;
    }
    let reference = wire_name(l.astring_text()?)?;
    l.space()?;
    let patterns = if l.peek() == Some(b'(') {
        l.list(|l| l.list_pattern().and_then(wire_name))?
    } else {
        vec![wire_name(l.list_pattern()?)?]
    };
    let (mut ret_subscribed, mut ret_status) = (subscribed_only, None);
    if l.eat(b' ') {
        if !l.keyword("RETURN") {
            return Err(ParseError("expected RETURN"));
        }
        l.space()?;
        l.expect(b'(', "expected (")?;
        while !l.eat(b')') {
            l.eat(b' ');
            let opt = l.atom()?.to_ascii_uppercase();
            match opt.as_str() {
                "SUBSCRIBED" => ret_subscribed = true,
                "STATUS" => {
                    l.space()?;
                    ret_status = Some(l.list(status_item)?);
                }
                // Children and special-use attributes are always returned.
                "CHILDREN" | "SPECIAL-USE" => {}
                _ => return Err(ParseError("unknown LIST return option")),
            }
        }
    }
    Ok(Command::List(ListArgs {
        reference,
        patterns,
        subscribed_only,
        special_use_only,
        recursive_match,
        ret_subscribed,
        ret_status,
    }))
}

fn status_item(l: &mut Lexer<'_>) -> Parsed<StatusItem> {
    Ok(match l.atom()?.to_ascii_uppercase().as_str() {
        "MESSAGES" => StatusItem::Messages,
        "UIDNEXT" => StatusItem::UidNext,
        "UIDVALIDITY" => StatusItem::UidValidity,
        "UNSEEN" => StatusItem::Unseen,
        "SIZE" => StatusItem::Size,
        "RECENT" => StatusItem::Recent,
        "HIGHESTMODSEQ" => StatusItem::HighestModSeq,
        "DELETED" => StatusItem::Deleted,
        "DELETED-STORAGE" => StatusItem::DeletedStorage,
        "APPENDLIMIT" => StatusItem::AppendLimit,
        _ => return Err(ParseError("unknown STATUS item")),
    })
}

fn flag_list(l: &mut Lexer<'_>) -> Parsed<Vec<String>> {
    if l.peek() == Some(b'(') {
        l.list(|l| l.flag())
    } else {
        // STORE also accepts flags without parentheses.
        let mut flags = vec![l.flag()?];
        while l.peek() == Some(b' ') && !l.at_end() {
            l.eat(b' ');
            flags.push(l.flag()?);
        }
        Ok(flags)
    }
}

fn append(l: &mut Lexer<'_>) -> Parsed<Command> {
    let mailbox_name = mailbox(l)?;
    l.space()?;
    let mut flags = Vec::new();
    if l.peek() == Some(b'(') {
        flags = l.list(|l| l.flag())?;
        l.space()?;
    }
    let mut date = None;
    if l.peek() == Some(b'"') {
        let text = String::from_utf8(l.quoted()?).map_err(|_| ParseError("bad date-time"))?;
        let parsed = chrono::DateTime::parse_from_str(text.trim(), "%d-%b-%Y %H:%M:%S %z")
            .map_err(|_| ParseError("bad date-time"))?;
        date = Some(parsed.timestamp());
        l.space()?;
    }
    // Messages are stored with CRLF line endings (RFC 9051 §2.3.1), so that what FETCH serves,
    // RFC822.SIZE and every size in BODYSTRUCTURE are the stored bytes and agree; parts sent
    // `binary` are stored base64 encoded (RFC 3516).
    let message = crate::binary::storable(l.literal()?);
    Ok(Command::Append {
        mailbox: mailbox_name,
        flags,
        date,
        message,
    })
}

fn fetch(l: &mut Lexer<'_>, uid: bool) -> Parsed<Command> {
    l.space()?;
    let set = SeqSet::parse(l)?;
    l.space()?;
    let mut items = if l.peek() == Some(b'(') {
        l.list(fetch_item)?.concat()
    } else {
        fetch_item(l)?
    };
    let (mut changed_since, mut vanished) = (None, false);
    if l.eat(b' ') {
        l.expect(b'(', "expected (")?;
        while !l.eat(b')') {
            l.eat(b' ');
            if l.keyword("CHANGEDSINCE") {
                l.space()?;
                changed_since = Some(l.number()?);
            } else if l.keyword("VANISHED") {
                vanished = true;
            } else {
                return Err(ParseError("unknown FETCH modifier"));
            }
        }
        if changed_since.is_some() {
            items.push(FetchItem::ModSeq);
        }
        // RFC 7162 §3.2.6: VANISHED only with UID FETCH and CHANGEDSINCE.
        if vanished && (!uid || changed_since.is_none()) {
            return Err(ParseError("VANISHED needs UID FETCH and CHANGEDSINCE"));
        }
    }
    if uid && !items.contains(&FetchItem::Uid) {
        items.insert(0, FetchItem::Uid);
    }
    // An item named twice is answered once: `FETCH 1:* (BODY[] BODY[] ...)` must not
    // multiply the work and the output.
    let mut unique: Vec<FetchItem> = Vec::with_capacity(items.len());
    for item in items {
        if !unique.contains(&item) {
            unique.push(item);
        }
    }
    let items = unique;
    Ok(Command::Fetch {
        set,
        uid,
        items,
        changed_since,
        vanished,
    })
}

/// `(uidvalidity modseq [known-uids [(seq-set uid-set)]])`; the sequence match data is read
/// and not used (Tern reports from the known UIDs alone).
fn qresync_param(l: &mut Lexer<'_>) -> Parsed<Qresync> {
    l.expect(b'(', "expected (")?;
    let uidvalidity = u32::try_from(l.number()?).map_err(|_| ParseError("bad UIDVALIDITY"))?;
    l.space()?;
    let modseq = l.number()?;
    let mut known_uids = None;
    if l.eat(b' ') {
        known_uids = Some(SeqSet::parse(l)?);
        if l.eat(b' ') {
            l.expect(b'(', "expected (")?;
            SeqSet::parse(l)?;
            l.space()?;
            SeqSet::parse(l)?;
            l.expect(b')', "expected )")?;
        }
    }
    l.expect(b')', "expected )")?;
    if uidvalidity == 0 {
        return Err(ParseError("bad UIDVALIDITY"));
    }
    Ok(Qresync {
        uidvalidity,
        modseq,
        known_uids,
    })
}

fn fetch_item(l: &mut Lexer<'_>) -> Parsed<Vec<FetchItem>> {
    use FetchItem::*;
    let word = l.fetch_name()?.to_ascii_uppercase();
    let section = |part, text| self::Section { part, text };
    Ok(match word.as_str() {
        "ALL" => vec![Flags, InternalDate, Size, Envelope],
        "FAST" => vec![Flags, InternalDate, Size],
        "FULL" => vec![Flags, InternalDate, Size, Envelope, Body],
        "UID" => vec![Uid],
        "FLAGS" => vec![Flags],
        "INTERNALDATE" => vec![InternalDate],
        "RFC822.SIZE" => vec![Size],
        "ENVELOPE" => vec![Envelope],
        "BODYSTRUCTURE" => vec![BodyStructure],
        "MODSEQ" => vec![ModSeq],
        "RFC822" => vec![Section {
            section: section(vec![], SectionText::Full),
            partial: None,
            peek: false,
            legacy: Some("RFC822"),
        }],
        "RFC822.HEADER" => vec![Section {
            section: section(vec![], SectionText::Header),
            partial: None,
            peek: true,
            legacy: Some("RFC822.HEADER"),
        }],
        "RFC822.TEXT" => vec![Section {
            section: section(vec![], SectionText::Text),
            partial: None,
            peek: false,
            legacy: Some("RFC822.TEXT"),
        }],
        "BODY" | "BODY.PEEK" => {
            if l.peek() != Some(b'[') {
                if word == "BODY" {
                    return Ok(vec![Body]);
                }
                return Err(ParseError("expected ["));
            }
            l.eat(b'[');
            let sec = parse_section(l)?;
            l.expect(b']', "expected ]")?;
            vec![Section {
                section: sec,
                partial: partial(l)?,
                peek: word.ends_with(".PEEK"),
                legacy: None,
            }]
        }
        "BINARY" | "BINARY.PEEK" => {
            let part = section_binary(l)?;
            vec![Binary {
                part,
                partial: partial(l)?,
                peek: word.ends_with(".PEEK"),
            }]
        }
        "BINARY.SIZE" => vec![BinarySize {
            part: section_binary(l)?,
        }],
        _ => return Err(ParseError("unknown FETCH item")),
    })
}

/// `<start.length>` after a section, if there is one (RFC 9051: number64).
fn partial(l: &mut Lexer<'_>) -> Parsed<Option<(u64, u64)>> {
    if !l.eat(b'<') {
        return Ok(None);
    }
    let start = l.number()?;
    l.expect(b'.', "expected .")?;
    let len = l.number()?;
    l.expect(b'>', "expected >")?;
    Ok(Some((start, len)))
}

/// RFC 3516 section-binary: `[` part numbers `]`, nothing else.
fn section_binary(l: &mut Lexer<'_>) -> Parsed<Vec<u32>> {
    l.expect(b'[', "expected [")?;
    let mut part = Vec::new();
    if !l.eat(b']') {
        loop {
            let n = l.number()?;
            part.push(u32::try_from(n).map_err(|_| ParseError("part number too large"))?);
            if l.eat(b']') {
                break;
            }
            l.expect(b'.', "expected . or ]")?;
        }
    }
    Ok(part)
}

fn parse_section(l: &mut Lexer<'_>) -> Parsed<Section> {
    let mut part = Vec::new();
    while l.peek().is_some_and(|b| b.is_ascii_digit()) {
        let n = l.number()?;
        part.push(u32::try_from(n).map_err(|_| ParseError("part number too large"))?);
        if !l.eat(b'.') {
            return Ok(Section {
                part,
                text: SectionText::Full,
            });
        }
    }
    if l.peek() == Some(b']') {
        return Ok(Section {
            part,
            text: SectionText::Full,
        });
    }
    let word = l.fetch_name()?.to_ascii_uppercase();
    let text = match word.as_str() {
        "HEADER" => SectionText::Header,
        "TEXT" => SectionText::Text,
        "MIME" if !part.is_empty() => SectionText::Mime,
        "HEADER.FIELDS" | "HEADER.FIELDS.NOT" => {
            l.space()?;
            let fields = l.list(|l| l.astring_text())?;
            if word == "HEADER.FIELDS" {
                SectionText::Fields(fields)
            } else {
                SectionText::FieldsNot(fields)
            }
        }
        _ => return Err(ParseError("unknown section")),
    };
    Ok(Section { part, text })
}

fn store(l: &mut Lexer<'_>, uid: bool) -> Parsed<Command> {
    l.space()?;
    let set = SeqSet::parse(l)?;
    l.space()?;
    let mut unchanged_since = None;
    if l.peek() == Some(b'(') {
        l.eat(b'(');
        if !l.keyword("UNCHANGEDSINCE") {
            return Err(ParseError("unknown STORE modifier"));
        }
        l.space()?;
        unchanged_since = Some(l.number()?);
        l.expect(b')', "expected )")?;
        l.space()?;
    }
    let what = l.atom_with(b"")?.to_ascii_uppercase();
    let (op, rest) = match what.as_bytes().first() {
        Some(b'+') => (StoreOp::Add, &what[1..]),
        Some(b'-') => (StoreOp::Remove, &what[1..]),
        _ => (StoreOp::Replace, what.as_str()),
    };
    let silent = match rest {
        "FLAGS" => false,
        "FLAGS.SILENT" => true,
        _ => return Err(ParseError("expected FLAGS, +FLAGS or -FLAGS")),
    };
    l.space()?;
    let flags = flag_list(l)?;
    Ok(Command::Store {
        set,
        uid,
        op,
        silent,
        flags,
        unchanged_since,
    })
}

fn copy(l: &mut Lexer<'_>, uid: bool, remove_source: bool) -> Parsed<Command> {
    l.space()?;
    let set = SeqSet::parse(l)?;
    Ok(Command::Copy {
        set,
        uid,
        mailbox: mailbox(l)?,
        remove_source,
    })
}

fn search_cmd(l: &mut Lexer<'_>, uid: bool) -> Parsed<Command> {
    l.space()?;
    let mut ret = None;
    if l.keyword("RETURN") {
        ret = Some(search::return_options(l)?);
        l.space()?;
    }
    if l.keyword("CHARSET") {
        l.space()?;
        let (key, bad_charset) = charset_and_keys(l)?;
        return Ok(Command::Search {
            uid,
            key,
            ret,
            bad_charset,
        });
    }
    let key = search::keys(l)?;
    Ok(Command::Search {
        uid,
        key,
        ret,
        bad_charset: None,
    })
}

/// A charset and the search keys after it; with a charset the server cannot search in, the
/// keys are skipped (their strings may not be UTF-8) and the charset returned.
fn charset_and_keys(l: &mut Lexer<'_>) -> Parsed<(SearchKey, Option<String>)> {
    let charset = String::from_utf8_lossy(&l.astring()?).into_owned();
    if !search::charset_supported(&charset) {
        l.skip_rest();
        return Ok((SearchKey::All, Some(charset)));
    }
    l.space()?;
    Ok((search::keys(l)?, None))
}

/// `SORT [RETURN (...)] (criteria) charset keys` (RFC 5256, RFC 5267).
fn sort_cmd(l: &mut Lexer<'_>, uid: bool) -> Parsed<Command> {
    l.space()?;
    let mut ret = None;
    if l.keyword("RETURN") {
        ret = Some(search::return_options(l)?);
        l.space()?;
    }
    let criteria = sort::criteria(l)?;
    l.space()?;
    let (key, bad_charset) = charset_and_keys(l)?;
    Ok(Command::Sort {
        uid,
        criteria,
        key,
        ret,
        bad_charset,
    })
}

/// `THREAD algorithm charset keys` (RFC 5256).
fn thread_cmd(l: &mut Lexer<'_>, uid: bool) -> Parsed<Command> {
    l.space()?;
    let algorithm = sort::algorithm(l)?;
    l.space()?;
    let (key, bad_charset) = charset_and_keys(l)?;
    Ok(Command::Thread {
        uid,
        algorithm,
        key,
        bad_charset,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(s: &str) -> Command {
        match parse(s.as_bytes()) {
            Ok(t) => t.command,
            Err(e) => panic!("{s}: {e:?}"),
        }
    }

    #[test]
    fn good_commands() {
        assert_eq!(
            cmd("a LOGIN bob \"pw with space\""),
            Command::Login {
                user: "bob".into(),
                password: "pw with space".into()
            }
        );
        assert_eq!(
            cmd("a SELECT INBOX"),
            Command::Select {
                condstore: false,
                qresync: None,
                name: "INBOX".into(),
                read_only: false
            }
        );
        assert_eq!(
            cmd("a EXAMINE \"Sent\""),
            Command::Select {
                condstore: false,
                qresync: None,
                name: "Sent".into(),
                read_only: true
            }
        );
        assert!(matches!(
            cmd("a UID FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)])"),
            Command::Fetch { uid: true, .. }
        ));
        assert!(matches!(
            cmd("a FETCH 2 (BODY.PEEK[TEXT]<0.5>)"),
            Command::Fetch { .. }
        ));
        assert!(matches!(cmd("a FETCH 1:3 ALL"), Command::Fetch { .. }));
        assert!(matches!(
            cmd("a UID FETCH 1 (BODY.PEEK[])"),
            Command::Fetch { .. }
        ));
        assert!(matches!(
            cmd("a FETCH 1 (BODY[1.MIME] BODY[]<0.10> RFC822.SIZE)"),
            Command::Fetch { .. }
        ));
        assert!(matches!(
            cmd("a STORE 2 +FLAGS.SILENT (\\Flagged $Important)"),
            Command::Store {
                op: StoreOp::Add,
                silent: true,
                ..
            }
        ));
        assert!(matches!(
            cmd("a UID MOVE 3 Trash"),
            Command::Copy {
                remove_source: true,
                uid: true,
                ..
            }
        ));
        assert!(matches!(
            cmd("a APPEND INBOX (\\Seen) \"25-Nov-2026 10:00:00 +0000\" {3}\r\nabc"),
            Command::Append { .. }
        ));
        assert!(matches!(cmd("a LIST \"\" *"), Command::List(_)));
        assert!(matches!(
            cmd("a LIST (SUBSCRIBED) \"\" * RETURN (STATUS (MESSAGES UNSEEN))"),
            Command::List(ListArgs {
                subscribed_only: true,
                ret_status: Some(_),
                ..
            })
        ));
        assert!(matches!(
            cmd("a LIST (SPECIAL-USE) \"\" *"),
            Command::List(ListArgs {
                special_use_only: true,
                ..
            })
        ));
        assert!(matches!(
            cmd("a UID SEARCH CHARSET UTF-8 UID 2:*"),
            Command::Search {
                uid: true,
                bad_charset: None,
                ..
            }
        ));
        // An unknown charset is a NO, not a BAD, whatever bytes its strings hold.
        assert_eq!(
            parse(b"a SEARCH CHARSET ISO-8859-1 SUBJECT {4}\r\ncaf\xe9").map(|t| t.command),
            Ok(Command::Search {
                uid: false,
                key: SearchKey::All,
                ret: None,
                bad_charset: Some("ISO-8859-1".into()),
            })
        );
        assert!(matches!(
            cmd("a UID SORT (REVERSE DATE) UTF-8 UNSEEN"),
            Command::Sort {
                uid: true,
                bad_charset: None,
                ..
            }
        ));
        assert!(matches!(
            cmd("a SORT RETURN (MIN) (SIZE) us-ascii 1:5"),
            Command::Sort { ret: Some(_), .. }
        ));
        assert!(matches!(
            cmd("a SORT (SIZE) ISO-8859-2 SUBJECT x"),
            Command::Sort {
                bad_charset: Some(_),
                ..
            }
        ));
        assert!(matches!(
            cmd("a THREAD REFERENCES UTF-8 ALL"),
            Command::Thread {
                algorithm: ThreadAlgorithm::References,
                ..
            }
        ));
        assert!(matches!(
            cmd("a UID THREAD ORDEREDSUBJECT US-ASCII $"),
            Command::Thread { uid: true, .. }
        ));
        assert!(parse(b"a THREAD FOO UTF-8 ALL").is_err());
        assert!(matches!(
            cmd("a ID (\"name\" \"mbsync\" \"version\" NIL)"),
            Command::Id
        ));
        assert!(matches!(
            cmd("a uid expunge 1:3"),
            Command::Expunge { uids: Some(_) }
        ));
    }

    /// RFC 9051 §2.3.1: a message APPENDed with bare line feeds is stored with CRLF, so
    /// RFC822.SIZE and the bytes FETCH serves agree.
    #[test]
    fn appended_messages_get_crlf_line_endings() {
        let message = |input: &str| match cmd(input) {
            Command::Append { message, .. } => message,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            message("a APPEND INBOX {22}\r\nSubject: x\n\nbody\r\nend\n"),
            b"Subject: x\r\n\r\nbody\r\nend\r\n"
        );
        assert_eq!(message("a APPEND INBOX {4}\r\na\r\nb"), b"a\r\nb");
    }

    /// `<start.length>` are number64 (RFC 9051): never cut to 32 bits.
    #[test]
    fn partial_ranges_are_64_bit() {
        let partial = |input: &str| match cmd(input) {
            Command::Fetch { items, .. } => match &items[..] {
                [FetchItem::Section { partial, .. }] => *partial,
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        };
        assert_eq!(
            partial("a FETCH 1 BODY.PEEK[]<4294967296.4294967297>"),
            Some((4_294_967_296, 4_294_967_297))
        );
        assert_eq!(partial("a FETCH 1 BODY[TEXT]<5.10>"), Some((5, 10)));
        assert!(parse(b"a FETCH 1 BODY[]<99999999999999999999.1>").is_err());
    }

    /// RFC 3516: BINARY[part]<partial>, BINARY.PEEK, BINARY.SIZE; a section-binary has part
    /// numbers only.
    #[test]
    fn binary_items() {
        let items = |input: &str| match cmd(input) {
            Command::Fetch { items, .. } => items,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            items("a FETCH 1 (BINARY.PEEK[1.2]<0.10> BINARY.SIZE[] BINARY[3])"),
            vec![
                FetchItem::Binary {
                    part: vec![1, 2],
                    partial: Some((0, 10)),
                    peek: true
                },
                FetchItem::BinarySize { part: vec![] },
                FetchItem::Binary {
                    part: vec![3],
                    partial: None,
                    peek: false
                },
            ]
        );
        for bad in [
            "a FETCH 1 BINARY[1.MIME]",
            "a FETCH 1 BINARY[HEADER]",
            "a FETCH 1 BINARY.SIZE[1]<0.5>",
            "a FETCH 1 BINARY",
            "a FETCH 1 BINARY[1.]",
        ] {
            assert!(parse(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn bad_commands_keep_their_tag() {
        for bad in [
            "a7 FETCH 1 (FLAGS",
            "a9 FETCH 0:x FLAGS",
            "a4 CREATE {abc}",
            "a2 FROB",
            "a1 LOGIN onlyuser",
            "a3 STORE 1 FLAGZ (\\Seen)",
        ] {
            let tag = bad.split(' ').next().map(String::from);
            match parse(bad.as_bytes()) {
                Err((t, _)) => assert_eq!(t, tag, "{bad}"),
                Ok(c) => panic!("{bad} parsed as {c:?}"),
            }
        }
        assert_eq!(parse(b"\x00\xff").unwrap_err().0, None);
        assert_eq!(parse(b"").unwrap_err().0, None);
    }

    proptest::proptest! {
        #[test]
        fn never_panics(input in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            let _ = parse(&input);
        }
    }
}
