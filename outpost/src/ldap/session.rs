//! One LDAP connection's protocol state and request handling, free of I/O: the connection loop
//! decodes a message, calls [`Session::handle`], and carries out the [`Step`] it returns
//! (write replies, stream search entries, upgrade to TLS, close). Binds and password changes
//! await the core through [`super::Shared`]; everything else is answered from memory.

use super::Shared;
use super::bind::{self, BindName};
use super::prepared::PreparedFilter;
use super::rootdse::{OID_PAGED_RESULTS, OID_START_TLS};
use super::search::{self, Matched, Plan, Reader, SearchQuery, Selection};
use super::view::{DirectoryView, EntryRef};
use ldap3_proto::control::LdapControl;
use ldap3_proto::proto::{
    LdapBindCred, LdapBindResponse, LdapCompareRequest, LdapExtendedRequest, LdapExtendedResponse,
    LdapMsg, LdapOp, LdapPasswordModifyRequest, LdapResult, LdapResultCode, LdapSearchRequest,
    OID_PASSWORD_MODIFY, OID_WHOAMI,
};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Longest a search may run, whatever the client asks.
pub const MAX_SEARCH_TIME: Duration = Duration::from_secs(60);
/// Most entries one search returns, whatever the client asks.
pub const MAX_SEARCH_ENTRIES: usize = 500_000;
/// Scans of at most this much work (entries times filter nodes: index lookups, base searches,
/// small trees with plain filters) run inline; larger ones run on the blocking pool.
pub const INLINE_SCAN_WORK: usize = 4096;
/// Paged searches one connection may keep open.
const MAX_PAGED_SEARCHES: usize = 8;
/// How long an untouched paged search is kept.
const PAGED_SEARCH_TTL: Duration = Duration::from_secs(600);

/// What the connection loop does next.
#[derive(Debug)]
pub enum Step {
    /// Write these messages.
    Reply(Vec<LdapMsg>),
    /// Stream these search entries, then the final message.
    Entries(SearchOutput),
    /// Write the response, then run the TLS handshake.
    StartTls(LdapMsg),
    /// Write the message if any, then close.
    Close(Option<LdapMsg>),
    /// Nothing to answer (abandon).
    Nothing,
}

/// A search's entries to stream.
#[derive(Debug)]
pub struct SearchOutput {
    pub msgid: i32,
    pub view: Arc<DirectoryView>,
    pub entries: Vec<EntryRef>,
    pub selection: Selection,
    pub types_only: bool,
    /// The `SearchResultDone` to send after the entries.
    pub done: LdapMsg,
    /// When the time limit runs out while streaming.
    pub deadline: Instant,
}

/// A user who bound on this connection.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Bound {
    provider_id: i64,
    user_id: i64,
    dn: String,
}

/// The remainder of a paged search.
struct PagedSearch {
    cookie: [u8; 16],
    view: Arc<DirectoryView>,
    remaining: Vec<EntryRef>,
    selection: Selection,
    types_only: bool,
    touched: Instant,
}

/// A connection's state.
pub struct Session {
    shared: Arc<Shared>,
    peer: IpAddr,
    tls: bool,
    bound: Option<Bound>,
    paged: Vec<PagedSearch>,
}

impl Session {
    /// A fresh, anonymous connection from `peer`; `tls` for LDAPS.
    pub fn new(shared: Arc<Shared>, peer: IpAddr, tls: bool) -> Self {
        Self {
            shared,
            peer,
            tls,
            bound: None,
            paged: Vec::new(),
        }
    }

    /// Records that StartTLS completed.
    pub fn tls_started(&mut self) {
        self.tls = true;
        // RFC 4513 3.1.3 leaves the authorization state to the server; starting clean is safest.
        self.bound = None;
    }

    /// Whether a user has bound on this connection.
    pub fn is_bound(&self) -> bool {
        self.bound.is_some()
    }

    /// Whether the connection runs over TLS.
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// The operation name of a request, for metrics.
    pub fn op_name(op: &LdapOp) -> &'static str {
        match op {
            LdapOp::BindRequest(_) => "bind",
            LdapOp::SearchRequest(_) => "search",
            LdapOp::CompareRequest(_) => "compare",
            LdapOp::AbandonRequest(_) => "abandon",
            LdapOp::UnbindRequest => "unbind",
            LdapOp::ExtendedRequest(e) if e.name == OID_WHOAMI => "whoami",
            LdapOp::ExtendedRequest(e) if e.name == OID_PASSWORD_MODIFY => "passwd",
            LdapOp::ExtendedRequest(e) if e.name == OID_START_TLS => "starttls",
            LdapOp::ExtendedRequest(_) => "extended",
            LdapOp::AddRequest(_)
            | LdapOp::ModifyRequest(_)
            | LdapOp::DelRequest(_)
            | LdapOp::ModifyDNRequest(_) => "write",
            _ => "invalid",
        }
    }

    /// Handles one request.
    pub async fn handle(&mut self, msg: LdapMsg) -> Step {
        let id = msg.msgid;
        if let Some(oid) = critical_unknown_control(&msg.ctrl) {
            let result = failure(
                LdapResultCode::UnavailableCriticalExtension,
                format!("control {oid} is not supported"),
            );
            return match response_for(&msg.op, result) {
                Some(op) => Step::Reply(vec![reply(id, op)]),
                None => Step::Nothing,
            };
        }
        match msg.op {
            LdapOp::BindRequest(request) => {
                let result = self.bind(request.version, &request.dn, request.cred).await;
                Step::Reply(vec![reply(
                    id,
                    LdapOp::BindResponse(LdapBindResponse {
                        res: result,
                        saslcreds: None,
                    }),
                )])
            }
            LdapOp::SearchRequest(request) => self.search(id, &request, &msg.ctrl).await,
            LdapOp::CompareRequest(request) => Step::Reply(vec![reply(
                id,
                LdapOp::CompareResult(self.compare(&request)),
            )]),
            LdapOp::UnbindRequest => Step::Close(None),
            LdapOp::AbandonRequest(_) => Step::Nothing,
            LdapOp::ExtendedRequest(request) => self.extended(id, &request).await,
            LdapOp::AddRequest(_) => read_only(id, LdapOp::AddResponse),
            LdapOp::ModifyRequest(_) => read_only(id, LdapOp::ModifyResponse),
            LdapOp::DelRequest(_) => read_only(id, LdapOp::DelResponse),
            LdapOp::ModifyDNRequest(_) => read_only(id, LdapOp::ModifyDNResponse),
            _ => Step::Close(Some(disconnection(
                LdapResultCode::ProtocolError,
                "clients send requests, not responses",
            ))),
        }
    }

    /// The reader this connection's authorization maps to in `view`.
    fn reader(&self, view: &DirectoryView) -> Reader {
        let Some(bound) = &self.bound else {
            return Reader::Anonymous;
        };
        match (
            view.provider_index(bound.provider_id),
            view.user_by_id(bound.user_id),
        ) {
            (Some(provider), Some(user)) if view.user(user).is_active => {
                Reader::User { provider, user }
            }
            // Deleted or disabled since the bind: no longer anyone.
            _ => Reader::Anonymous,
        }
    }

    async fn bind(&mut self, version: i64, dn: &str, cred: LdapBindCred) -> LdapResult {
        self.bound = None;
        if version != 3 {
            return failure(
                LdapResultCode::ProtocolError,
                "only LDAP version 3 is supported",
            );
        }
        let password = match cred {
            LdapBindCred::Simple(password) => password,
            LdapBindCred::SASL(_) | LdapBindCred::Unsupported => {
                return failure(
                    LdapResultCode::AuthMethodNotSupported,
                    "only simple binds are supported",
                );
            }
        };
        if dn.is_empty() && password.is_empty() {
            return success();
        }
        if password.is_empty() {
            return failure(
                LdapResultCode::UnwillingToPerform,
                "unauthenticated binds (a name without a password) are refused",
            );
        }
        let view = self.shared.view();
        let Some(name) = BindName::resolve(&view, dn) else {
            return failure(LdapResultCode::InvalidCredentials, bind::INVALID);
        };
        if view.provider(name.provider).settings.require_tls_for_bind && !self.tls {
            return failure(
                LdapResultCode::ConfidentialityRequired,
                "this directory accepts binds only over TLS: use LDAPS or StartTLS",
            );
        }
        match bind::verify(&self.shared, &view, &name, &password, self.peer).await {
            Ok(user) => {
                self.bound = Some(Bound {
                    provider_id: view.provider(name.provider).id,
                    user_id: user.id,
                    dn: name.canonical_dn(&view, &user.username),
                });
                success()
            }
            Err(result) => result,
        }
    }

    async fn search(
        &mut self,
        id: i32,
        request: &LdapSearchRequest,
        controls: &[LdapControl],
    ) -> Step {
        let paging = controls.iter().find_map(|c| match c {
            LdapControl::SimplePagedResults { size, cookie } => Some((*size, cookie.clone())),
            _ => None,
        });
        let now = Instant::now();
        let limit = match request.timelimit {
            t if t > 0 => Duration::from_secs(t as u64).min(MAX_SEARCH_TIME),
            _ => MAX_SEARCH_TIME,
        };
        let deadline = now + limit;
        self.paged
            .retain(|p| now.duration_since(p.touched) < PAGED_SEARCH_TTL);
        if let Some((size, cookie)) = &paging
            && !cookie.is_empty()
        {
            return self.next_page(id, *size, cookie, deadline);
        }
        let view = self.shared.view();
        let reader = self.reader(&view);
        let query = SearchQuery {
            base: &request.base,
            scope: request.scope.clone(),
            filter: &request.filter,
            deadline: Some(deadline),
        };
        let planned = Selection::parse(&request.attrs)
            .and_then(|selection| Ok((selection, search::plan(&view, reader, &query)?)));
        let (selection, plan) = match planned {
            Ok(planned) => planned,
            Err(f) => {
                return Step::Reply(vec![reply(
                    id,
                    LdapOp::SearchResultDone(LdapResult {
                        code: f.code,
                        matcheddn: f.matched,
                        message: f.message,
                        referral: Vec::new(),
                    }),
                )]);
            }
        };
        let matched = if plan.work() <= INLINE_SCAN_WORK {
            plan.scan(&view, Some(deadline))
        } else {
            match scan_on_blocking_pool(&self.shared, view.clone(), plan, deadline).await {
                Some(matched) => matched,
                None => {
                    return Step::Reply(vec![reply(
                        id,
                        LdapOp::SearchResultDone(failure(
                            LdapResultCode::OperationsError,
                            "the search failed inside the server",
                        )),
                    )]);
                }
            }
        };
        let mut entries = matched.entries;
        let mut code = if matched.timed_out {
            LdapResultCode::TimeLimitExceeded
        } else {
            LdapResultCode::Success
        };
        let mut message = String::new();
        let mut done_controls = Vec::new();
        match paging {
            Some((size, _)) => {
                let size = usize::try_from(size).unwrap_or(0);
                if size == 0 {
                    entries.clear();
                } else if entries.len() > size {
                    let remaining = entries.split_off(size);
                    let cookie =
                        self.keep_paged(view.clone(), remaining, &selection, request.typesonly);
                    done_controls.push(LdapControl::SimplePagedResults {
                        size: 0,
                        cookie: cookie.to_vec(),
                    });
                }
                if done_controls.is_empty() {
                    done_controls.push(LdapControl::SimplePagedResults {
                        size: 0,
                        cookie: Vec::new(),
                    });
                }
            }
            None => {
                let limit = match request.sizelimit {
                    n if n > 0 => (n as usize).min(MAX_SEARCH_ENTRIES),
                    _ => MAX_SEARCH_ENTRIES,
                };
                if entries.len() > limit {
                    entries.truncate(limit);
                    code = LdapResultCode::SizeLimitExceeded;
                    message = format!("more than {limit} entries match");
                }
            }
        }
        Step::Entries(SearchOutput {
            msgid: id,
            view,
            entries,
            selection,
            types_only: request.typesonly,
            done: LdapMsg {
                msgid: id,
                op: LdapOp::SearchResultDone(LdapResult {
                    code,
                    matcheddn: String::new(),
                    message,
                    referral: Vec::new(),
                }),
                ctrl: done_controls,
            },
            deadline,
        })
    }

    fn keep_paged(
        &mut self,
        view: Arc<DirectoryView>,
        remaining: Vec<EntryRef>,
        selection: &Selection,
        types_only: bool,
    ) -> [u8; 16] {
        let mut cookie = [0u8; 16];
        if getrandom::fill(&mut cookie).is_err() {
            cookie[..8].copy_from_slice(&(self.paged.len() as u64 + 1).to_be_bytes());
        }
        if self.paged.len() >= MAX_PAGED_SEARCHES {
            self.paged.remove(0);
        }
        self.paged.push(PagedSearch {
            cookie,
            view,
            remaining,
            selection: selection.clone(),
            types_only,
            touched: Instant::now(),
        });
        cookie
    }

    fn next_page(&mut self, id: i32, size: i64, cookie: &[u8], deadline: Instant) -> Step {
        let Some(index) = self
            .paged
            .iter()
            .position(|p| p.cookie.as_slice() == cookie)
        else {
            return Step::Reply(vec![reply(
                id,
                LdapOp::SearchResultDone(failure(
                    LdapResultCode::UnwillingToPerform,
                    "unknown or expired paged results cookie: start the search again",
                )),
            )]);
        };
        let mut paged = self.paged.remove(index);
        let size = usize::try_from(size).unwrap_or(0);
        let view = paged.view.clone();
        let selection = paged.selection.clone();
        let types_only = paged.types_only;
        let (entries, cookie_out) = if size == 0 {
            (Vec::new(), Vec::new())
        } else if paged.remaining.len() > size {
            let rest = paged.remaining.split_off(size);
            let page = std::mem::replace(&mut paged.remaining, rest);
            paged.touched = Instant::now();
            let cookie = paged.cookie.to_vec();
            self.paged.push(paged);
            (page, cookie)
        } else {
            (paged.remaining, Vec::new())
        };
        Step::Entries(SearchOutput {
            msgid: id,
            view,
            entries,
            selection,
            types_only,
            done: LdapMsg {
                msgid: id,
                op: LdapOp::SearchResultDone(success()),
                ctrl: vec![LdapControl::SimplePagedResults {
                    size: 0,
                    cookie: cookie_out,
                }],
            },
            deadline,
        })
    }

    fn compare(&self, request: &LdapCompareRequest) -> LdapResult {
        let view = self.shared.view();
        let reader = self.reader(&view);
        let Some(dn_norm) = super::dn::normalize(&request.dn) else {
            return failure(LdapResultCode::InvalidDNSyntax, "not a valid DN");
        };
        let entry = view
            .resolve(&dn_norm)
            .filter(|e| search::visible(&view, reader, search::full_access(&view, reader), *e));
        let Some(entry) = entry else {
            return failure(LdapResultCode::NoSuchObject, "no such entry");
        };
        let filter = ldap3_proto::proto::LdapFilter::Equality(
            request.atype.clone(),
            String::from_utf8_lossy(&request.val).into_owned(),
        );
        let present = ldap3_proto::proto::LdapFilter::Present(request.atype.clone());
        if PreparedFilter::new(&view, &present).evaluate(&view, entry) != super::filter::Truth::True
        {
            return failure(
                LdapResultCode::NoSuchAttribute,
                "the entry has no such attribute",
            );
        }
        match PreparedFilter::new(&view, &filter).evaluate(&view, entry) {
            super::filter::Truth::True => result(LdapResultCode::CompareTrue),
            _ => result(LdapResultCode::CompareFalse),
        }
    }

    async fn extended(&mut self, id: i32, request: &LdapExtendedRequest) -> Step {
        let respond = |res: LdapResult, name: Option<String>, value: Option<Vec<u8>>| {
            Step::Reply(vec![reply(
                id,
                LdapOp::ExtendedResponse(LdapExtendedResponse { res, name, value }),
            )])
        };
        match request.name.as_str() {
            OID_WHOAMI => {
                let view = self.shared.view();
                let authz = match (self.reader(&view), &self.bound) {
                    (Reader::User { .. }, Some(bound)) => format!("dn:{}", bound.dn),
                    _ => String::new(),
                };
                respond(success(), None, Some(authz.into_bytes()))
            }
            OID_START_TLS => {
                if self.tls {
                    return respond(
                        failure(LdapResultCode::OperationsError, "TLS is already active"),
                        Some(OID_START_TLS.into()),
                        None,
                    );
                }
                if self.shared.tls.is_none() {
                    return respond(
                        failure(
                            LdapResultCode::Unavailable,
                            "StartTLS is not configured on this outpost (set REDOUBT_TLS__CERT_FILE and REDOUBT_TLS__KEY_FILE)",
                        ),
                        Some(OID_START_TLS.into()),
                        None,
                    );
                }
                Step::StartTls(reply(
                    id,
                    LdapOp::ExtendedResponse(LdapExtendedResponse {
                        res: success(),
                        name: Some(OID_START_TLS.into()),
                        value: None,
                    }),
                ))
            }
            OID_PASSWORD_MODIFY => {
                let result = match LdapPasswordModifyRequest::try_from(request) {
                    Ok(modify) => self.password_modify(modify).await,
                    Err(_) => failure(
                        LdapResultCode::ProtocolError,
                        "the password modify request does not parse",
                    ),
                };
                respond(result, None, None)
            }
            other => respond(
                failure(
                    LdapResultCode::ProtocolError,
                    format!("extended operation {other} is not supported"),
                ),
                None,
                None,
            ),
        }
    }

    async fn password_modify(&mut self, request: LdapPasswordModifyRequest) -> LdapResult {
        let view = self.shared.view();
        let Some(new_password) = request.new_password.filter(|p| !p.is_empty()) else {
            return failure(
                LdapResultCode::UnwillingToPerform,
                "give the new password (this server does not generate passwords)",
            );
        };
        let Some(old_password) = request.old_password.filter(|p| !p.is_empty()) else {
            return failure(
                LdapResultCode::UnwillingToPerform,
                "give the old password (ldappasswd -a or -A); administrators reset passwords in Redoubt",
            );
        };
        let identity = match (&request.user_identity, &self.bound) {
            (Some(identity), _) => identity.strip_prefix("dn:").unwrap_or(identity).to_owned(),
            (None, Some(bound)) => bound.dn.clone(),
            (None, None) => {
                return failure(
                    LdapResultCode::UnwillingToPerform,
                    "bind first or name the user whose password to change",
                );
            }
        };
        let identity = identity.strip_prefix("u:").unwrap_or(&identity);
        let Some(name) = BindName::resolve(&view, identity) else {
            return failure(LdapResultCode::InvalidCredentials, bind::INVALID);
        };
        if let Some(bound) = &self.bound {
            let same = view
                .user_by_name(&name.username)
                .is_some_and(|u| view.user(u).id == bound.user_id);
            if !same {
                return failure(
                    LdapResultCode::InsufficentAccessRights,
                    "users may change only their own password here",
                );
            }
        }
        if view.provider(name.provider).settings.require_tls_for_bind && !self.tls {
            return failure(
                LdapResultCode::ConfidentialityRequired,
                "passwords are changed only over TLS: use LDAPS or StartTLS",
            );
        }
        bind::change_password(
            &self.shared,
            &view,
            &name,
            old_password,
            new_password,
            self.peer,
        )
        .await
    }
}

/// Large scans that may run at once: one per CPU, at least two.
pub fn concurrent_scans() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get().max(2))
}

/// Runs a large scan on the blocking pool, so the async workers (every other connection, the
/// control channel's heartbeats) never wait for it. It waits for one of
/// [`concurrent_scans`] slots first; if its time limit runs out meanwhile, it matched nothing.
/// `None` if the scan panicked.
pub(super) async fn scan_on_blocking_pool(
    shared: &Shared,
    view: Arc<DirectoryView>,
    plan: Plan,
    deadline: Instant,
) -> Option<Matched> {
    let timed_out = || Matched {
        entries: Vec::new(),
        timed_out: true,
    };
    let slot = tokio::time::timeout_at(deadline.into(), shared.scans.clone().acquire_owned());
    let Ok(Ok(permit)) = slot.await else {
        return Some(timed_out());
    };
    let scan = tokio::task::spawn_blocking(move || {
        let matched = plan.scan(&view, Some(deadline));
        drop(permit);
        matched
    });
    match scan.await {
        Ok(matched) => Some(matched),
        Err(error) => {
            tracing::error!(%error, "an LDAP search scan failed");
            None
        }
    }
}

/// The OID of the first critical control this server does not implement.
fn critical_unknown_control(controls: &[LdapControl]) -> Option<&str> {
    controls.iter().find_map(|c| match c {
        LdapControl::Unknown {
            oid,
            criticality: true,
            ..
        } if oid != OID_PAGED_RESULTS => Some(oid.as_str()),
        _ => None,
    })
}

/// The response operation matching a request, carrying `result`.
fn response_for(op: &LdapOp, result: LdapResult) -> Option<LdapOp> {
    Some(match op {
        LdapOp::BindRequest(_) => LdapOp::BindResponse(LdapBindResponse {
            res: result,
            saslcreds: None,
        }),
        LdapOp::SearchRequest(_) => LdapOp::SearchResultDone(result),
        LdapOp::CompareRequest(_) => LdapOp::CompareResult(result),
        LdapOp::AddRequest(_) => LdapOp::AddResponse(result),
        LdapOp::ModifyRequest(_) => LdapOp::ModifyResponse(result),
        LdapOp::DelRequest(_) => LdapOp::DelResponse(result),
        LdapOp::ModifyDNRequest(_) => LdapOp::ModifyDNResponse(result),
        LdapOp::ExtendedRequest(_) => LdapOp::ExtendedResponse(LdapExtendedResponse {
            res: result,
            name: None,
            value: None,
        }),
        _ => return None,
    })
}

fn read_only(id: i32, make: fn(LdapResult) -> LdapOp) -> Step {
    Step::Reply(vec![reply(
        id,
        make(failure(
            LdapResultCode::UnwillingToPerform,
            "this directory is read-only: manage users and groups in Redoubt (web, API or `redoubt-core users`)",
        )),
    )])
}

/// A message without controls.
pub fn reply(msgid: i32, op: LdapOp) -> LdapMsg {
    LdapMsg {
        msgid,
        op,
        ctrl: Vec::new(),
    }
}

fn result(code: LdapResultCode) -> LdapResult {
    LdapResult {
        code,
        matcheddn: String::new(),
        message: String::new(),
        referral: Vec::new(),
    }
}

/// A successful result.
pub fn success() -> LdapResult {
    result(LdapResultCode::Success)
}

/// A failed result with a message for the client.
pub fn failure(code: LdapResultCode, message: impl Into<String>) -> LdapResult {
    LdapResult {
        code,
        matcheddn: String::new(),
        message: message.into(),
        referral: Vec::new(),
    }
}

/// A notice of disconnection (RFC 4511 4.4.1), sent before the server closes a connection.
pub fn disconnection(code: LdapResultCode, message: &str) -> LdapMsg {
    reply(
        0,
        LdapOp::ExtendedResponse(LdapExtendedResponse {
            res: failure(code, message),
            name: Some("1.3.6.1.4.1.1466.20036".into()),
            value: None,
        }),
    )
}

/// The result code a response carries, for metrics.
pub fn result_code(msg: &LdapMsg) -> Option<&LdapResultCode> {
    match &msg.op {
        LdapOp::BindResponse(r) => Some(&r.res.code),
        LdapOp::SearchResultDone(r)
        | LdapOp::CompareResult(r)
        | LdapOp::AddResponse(r)
        | LdapOp::ModifyResponse(r)
        | LdapOp::DelResponse(r)
        | LdapOp::ModifyDNResponse(r) => Some(&r.code),
        LdapOp::ExtendedResponse(r) => Some(&r.res.code),
        _ => None,
    }
}
