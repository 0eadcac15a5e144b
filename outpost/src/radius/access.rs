//! Answering an admitted Access-Request: PAP password recovery, the credential check (cache,
//! core, offline), MFA in one request (`password;123456`) or by Access-Challenge, and the reply
//! attributes of an Access-Accept.

use super::Shared;
use super::attributes::AttributeType;
use super::authenticator::reveal_user_password;
use super::config::{Provider, RadiusConfig};
use super::packet::{Code, Packet};
use super::reply::accept_attributes;
use super::request::DropReason;
use crate::credential_check::{self, Verdict};
use redoubt_outpost_proto::credentials::{FailureReason, VerifyCredentialsRequest};
use serde_json::Map;
use std::net::IpAddr;

/// What the NAS is told when it must ask for a one-time code.
pub const CHALLENGE_PROMPT: &str = "Enter the one-time code from your authenticator app";
/// What a NAS that sends CHAP or EAP is told.
const PAP_ONLY: &str = "Redoubt accepts PAP only: configure the NAS to send User-Password";

/// A reply to send (unsigned) and its result label.
#[derive(Debug)]
pub struct Answer {
    pub reply: Packet,
    pub result: &'static str,
}

fn reply(code: Code, request: &Packet) -> Packet {
    Packet::new(code, request.identifier, [0; 16])
}

fn reject(request: &Packet, message: Option<&str>) -> Answer {
    let mut packet = reply(Code::AccessReject, request);
    if let Some(message) = message {
        packet.push(AttributeType::ReplyMessage, message.as_bytes().to_vec());
    }
    Answer {
        reply: packet,
        result: "reject",
    }
}

/// Answers `request` for `provider`; `Err` means send nothing.
pub async fn answer(
    shared: &Shared,
    config: &RadiusConfig,
    provider: &Provider,
    request: &Packet,
    nas: IpAddr,
) -> Result<Answer, DropReason> {
    let username = request
        .text(AttributeType::UserName)
        .map(|u| u.trim().to_owned())
        .unwrap_or_default();
    if username.is_empty() {
        return Ok(reject(request, None));
    }
    let Some(hidden) = request.get(AttributeType::UserPassword) else {
        let method = if request.get(AttributeType::EapMessage).is_some() {
            "EAP"
        } else if request.get(AttributeType::ChapPassword).is_some() {
            "CHAP"
        } else {
            "no password"
        };
        tracing::info!(provider = %provider.name, %nas, user = %username, method, "Access-Request without User-Password rejected: PAP only");
        return Ok(reject(request, Some(PAP_ONLY)));
    };
    let Some(password) = reveal_user_password(hidden, provider.secret(), &request.authenticator)
        .ok()
        .and_then(|p| String::from_utf8(p).ok())
    else {
        return Ok(reject(request, None));
    };
    let calling_station = request.text(AttributeType::CallingStationId);
    let mut details = Map::new();
    details.insert("nas_address".into(), nas.to_string().into());
    if let Some(id) = request.text(AttributeType::NasIdentifier) {
        details.insert("nas_identifier".into(), id.into());
    }
    if let Some(station) = &calling_station {
        details.insert("calling_station_id".into(), station.clone().into());
    }
    let mut check = VerifyCredentialsRequest {
        provider_id: provider.id,
        username: username.clone(),
        password,
        totp_code: None,
        // The end client (for the per-address brute-force limit), not the NAS, which speaks
        // for many users.
        source_address: Some(calling_station.unwrap_or_else(|| nas.to_string())),
        details,
    };
    let state = request.get(AttributeType::State);
    if let Some(state) = state {
        let Some(pending) = shared.challenges.take(state, provider.id, &username) else {
            return Ok(reject(request, None));
        };
        let code = std::mem::replace(&mut check.password, pending.password);
        check.totp_code = Some(code.trim().to_owned());
    }
    let verdict = credential_check::check(
        &shared.cache,
        Some(&shared.locks),
        &shared.core,
        Some(&shared.events),
        &check,
        provider.settings.mfa,
        |id| config.find_user(id),
    )
    .await;
    if let Some(cache_use) = verdict.cache_use() {
        shared
            .metrics
            .credential_cache
            .with_label_values(&[cache_use.label()])
            .inc();
    }
    match verdict {
        Verdict::Accepted(user, _) => {
            let mut packet = reply(Code::AccessAccept, request);
            packet
                .attributes
                .extend(accept_attributes(&provider.settings.reply_rules, &user));
            Ok(Answer {
                reply: packet,
                result: "accept",
            })
        }
        Verdict::Refused(FailureReason::MfaRequired)
            if state.is_none() && provider.settings.mfa =>
        {
            let Some(state) = shared
                .challenges
                .open(provider.id, &username, &check.password)
            else {
                tracing::warn!(provider = %provider.name, "too many pending MFA challenges; Access-Request rejected");
                return Ok(reject(request, None));
            };
            let mut packet = reply(Code::AccessChallenge, request);
            packet.push(AttributeType::State, state.to_vec());
            packet.push(
                AttributeType::ReplyMessage,
                CHALLENGE_PROMPT.as_bytes().to_vec(),
            );
            Ok(Answer {
                reply: packet,
                result: "challenge",
            })
        }
        Verdict::Refused(reason) => {
            tracing::debug!(provider = %provider.name, user = %username, %nas, ?reason, "Access-Request rejected");
            let message = (reason == FailureReason::RateLimited)
                .then_some("too many failed attempts; try again later");
            Ok(reject(request, message))
        }
        Verdict::Unavailable(error) => {
            tracing::debug!(%error, "credential check impossible: the core is unreachable");
            Err(DropReason::CoreUnreachable)
        }
        Verdict::CoreError(error) => {
            tracing::error!(%error, "the core refused a credential check");
            Err(DropReason::CoreError)
        }
    }
}
