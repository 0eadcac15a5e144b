//! A minimal LDAP client over `ldap3_proto`'s codec for the benchmark's load generator: one
//! request in flight per connection, simple binds and searches, nothing else. The same client
//! drives slapd and the outpost, so neither gets a head start from client differences.

use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use ldap3_proto::LdapCodec;
use ldap3_proto::proto::{
    LdapBindCred, LdapBindRequest, LdapDerefAliases, LdapFilter, LdapMsg, LdapOp, LdapResultCode,
    LdapSearchRequest, LdapSearchScope,
};
use std::net::SocketAddr;
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

/// One LDAP connection.
pub struct LdapClient {
    framed: Framed<TcpStream, LdapCodec>,
    next_id: i32,
}

impl LdapClient {
    pub async fn connect(addr: SocketAddr) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connect to {addr}"))?;
        Self::over(stream)
    }

    /// A client on an open connection.
    pub fn over(stream: TcpStream) -> anyhow::Result<Self> {
        stream.set_nodelay(true)?;
        Ok(Self {
            framed: Framed::new(stream, LdapCodec::new(Some(64 << 20), None)),
            next_id: 0,
        })
    }

    async fn send(&mut self, op: LdapOp) -> anyhow::Result<i32> {
        self.next_id += 1;
        let id = self.next_id;
        self.framed.send(LdapMsg::new(id, op)).await?;
        Ok(id)
    }

    async fn receive(&mut self) -> anyhow::Result<LdapMsg> {
        match self.framed.next().await {
            Some(Ok(msg)) => Ok(msg),
            Some(Err(error)) => bail!("undecodable response: {error:?}"),
            None => bail!("the server closed the connection"),
        }
    }

    /// A simple bind; returns the result code.
    pub async fn bind(&mut self, dn: &str, password: &str) -> anyhow::Result<LdapResultCode> {
        self.send(LdapOp::BindRequest(LdapBindRequest {
            version: 3,
            dn: dn.to_owned(),
            cred: LdapBindCred::Simple(password.to_owned()),
        }))
        .await?;
        match self.receive().await?.op {
            LdapOp::BindResponse(r) => Ok(r.res.code),
            other => bail!("expected a bind response, got {other:?}"),
        }
    }

    /// A subtree search; returns the number of entries and the result code.
    pub async fn search(
        &mut self,
        base: &str,
        filter: LdapFilter,
        attrs: &[&str],
    ) -> anyhow::Result<(usize, LdapResultCode)> {
        self.search_within(base, filter, attrs, 0).await
    }

    /// [`Self::search`] with a time limit in seconds (0: the server's own).
    pub async fn search_within(
        &mut self,
        base: &str,
        filter: LdapFilter,
        attrs: &[&str],
        timelimit: i32,
    ) -> anyhow::Result<(usize, LdapResultCode)> {
        self.send(LdapOp::SearchRequest(LdapSearchRequest {
            base: base.to_owned(),
            scope: LdapSearchScope::Subtree,
            aliases: LdapDerefAliases::Never,
            sizelimit: 0,
            timelimit,
            typesonly: false,
            filter,
            attrs: attrs.iter().map(|a| (*a).to_owned()).collect(),
        }))
        .await?;
        let mut entries = 0;
        loop {
            match self.receive().await?.op {
                LdapOp::SearchResultEntry(_) => entries += 1,
                LdapOp::SearchResultReference(_) => {}
                LdapOp::SearchResultDone(r) => return Ok((entries, r.code)),
                other => bail!("unexpected search response {other:?}"),
            }
        }
    }
}
