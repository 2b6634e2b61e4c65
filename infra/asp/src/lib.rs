//! `asp`: provisions Alexa Smart Properties calling for a property from one file — the PBX SIP
//! trunk, room extensions, communication profiles, skill enablement, WebRTC onboarding and
//! address books. See `docs/provisioning.md`.
//!
//! Pure parts (no I/O): [`property`] (the file's model), [`validate`], [`plan`] (the diff),
//! [`state`] (the state file's model), [`wire`] (request bodies). Around them: [`client`] (HTTP
//! with tokens, retries and pagination over a [`http::Transport`]), [`observe`] (reads),
//! [`apply`] (writes), [`fake`] (a loopback fake of the APIs) and [`cli`].

pub mod apply;
pub mod auth;
pub mod cli;
pub mod client;
pub mod fake;
pub mod http;
pub mod observe;
pub mod plan;
pub mod property;
pub mod provision;
pub mod retry;
pub mod secret;
pub mod state;
pub mod validate;
pub mod wire;
