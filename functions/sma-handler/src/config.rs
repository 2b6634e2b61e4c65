//! Configuration of the SMA handler, read once at cold start. A missing or invalid variable
//! stops the function with the variable's name.
//!
//! | variable | required | meaning |
//! |---|---|---|
//! | `PAIRS_TABLE` | yes | rolling-DNIS pairs table |
//! | `CALLS_TABLE` | yes | per-transaction call records (claim idempotency, transfer intents) |
//! | `LEASE_SECONDS` | no (7200) | how long a claim holds its pair unless released |
//! | `CONNECT_CALL_TIMEOUT_SECONDS` | no (30) | ring time toward Connect, 1–120 |
//! | `TRANSFER_CALL_TIMEOUT_SECONDS` | no (30) | ring time toward the SIP target, 1–120 |
//! | `DEFAULT_TRANSFER_TARGET` / `DEFAULT_TRANSFER_TARGET_ARN` | no (both or neither) | target when an update names none |
//! | `ALLOWED_VOICE_CONNECTOR_ARNS` | no | comma-separated ARNs a transfer may use (the default's is always allowed) |
//! | `TRANSFER_TARGET_PATTERN` | no (`[0-9]{1,6}`) | what a per-call target must match; the same policy as `connect-transfer` ([`policy_from_env`]) |
//! | `ROOM_EXTENSIONS` | no | the property's room extensions (`1101-1130,1201`); a per-call target must be one of them |
//! | `TRANSFER_UPDATE_GRACE_MS` | no (3000) | when Connect hangs up and no transfer intent is recorded, how long the caller waits for a late `CALL_UPDATE_REQUESTED` (0–10000) |
//! | `FALLBACK_TARGET` / `FALLBACK_TARGET_ARN` | no (both or neither) | where callers go when no pair is free or Connect/the target fails |
//! | `VOICE_ID`, `LANGUAGE_CODE`, `SPEECH_ENGINE` | no (Joanna, en-US, neural) | voice of announcements (no control characters) |
//! | `MESSAGE_BUSY`, `MESSAGE_UNAVAILABLE`, `MESSAGE_CONNECT_FAILED`, `MESSAGE_TRANSFER_HOLD`, `MESSAGE_TRANSFER_FAILED` | no | announcement texts (≤ 1,000 chars, no CR, LF or other control characters) |

use takeback_common::config::{ConfigError, Env};
use takeback_sma::action::SpeechEngine;
use takeback_sma::action::has_control;
use takeback_sma::call_machine::{CallMachineConfig, Messages, UpdateGrace};
use takeback_sma::target::{DefaultTarget, TransferTarget, policy_from_env};
use takeback_sma::{AwsEndpointUri, CallTimeout, SpeakText, Voice, VoiceConnectorArn};

#[derive(Debug, Clone)]
pub struct SmaHandlerConfig {
    pub pairs_table: String,
    pub calls_table: String,
    pub lease_seconds: i64,
    pub call_machine: CallMachineConfig,
}

fn invalid(name: &'static str, message: impl std::fmt::Display) -> ConfigError {
    ConfigError::invalid(name, message.to_string())
}

fn target<F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
    uri_var: &'static str,
    arn_var: &'static str,
) -> Result<Option<TransferTarget>, ConfigError> {
    match (env.optional(uri_var), env.optional(arn_var)) {
        (None, None) => Ok(None),
        (Some(uri), Some(arn)) => Ok(Some(TransferTarget {
            uri: AwsEndpointUri::parse(&uri).map_err(|e| invalid(uri_var, e))?,
            arn: VoiceConnectorArn::parse(&arn).map_err(|e| invalid(arn_var, e))?,
        })),
        (None, Some(_)) => Err(ConfigError::Missing(uri_var)),
        (Some(_), None) => Err(ConfigError::Missing(arn_var)),
    }
}

fn seconds<F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
    name: &'static str,
    default: u32,
) -> Result<CallTimeout, ConfigError> {
    let value = match env.optional(name) {
        None => default,
        Some(v) => v.parse().map_err(|e| invalid(name, e))?,
    };
    CallTimeout::seconds(value).map_err(|e| invalid(name, e))
}

fn message<F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
    name: &'static str,
    default: SpeakText,
) -> Result<SpeakText, ConfigError> {
    match env.optional(name) {
        None => Ok(default),
        Some(text) => SpeakText::parse(&text).map_err(|e| invalid(name, e)),
    }
}

impl SmaHandlerConfig {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        let lease_seconds = match env.optional("LEASE_SECONDS") {
            None => 7200,
            Some(v) => v.parse::<i64>().ok().filter(|s| *s >= 60).ok_or_else(|| {
                invalid("LEASE_SECONDS", "must be a whole number of seconds >= 60")
            })?,
        };
        // The one reader `connect-transfer` uses too: same default, allowed ARNs and pattern.
        let targets = policy_from_env(env, DefaultTarget::Optional)?;
        let update_grace = match env.optional("TRANSFER_UPDATE_GRACE_MS") {
            None => UpdateGrace::default(),
            Some(v) => v
                .parse::<u32>()
                .ok()
                .and_then(UpdateGrace::millis)
                .ok_or_else(|| {
                    invalid(
                        "TRANSFER_UPDATE_GRACE_MS",
                        format!("must be whole milliseconds 0-{}", UpdateGrace::MAX_MS),
                    )
                })?,
        };
        let defaults = Messages::default();
        let engine = match env.optional("SPEECH_ENGINE").as_deref() {
            None | Some("neural") => SpeechEngine::Neural,
            Some("standard") => SpeechEngine::Standard,
            Some(other) => {
                return Err(invalid(
                    "SPEECH_ENGINE",
                    format!("{other:?} is neither neural nor standard"),
                ));
            }
        };
        let voice_defaults = Voice::default();
        let voice_setting = |name: &'static str, default: String| match env.optional(name) {
            None => Ok(default),
            Some(v) if has_control(&v) => Err(invalid(name, "holds a control character")),
            Some(v) => Ok(v),
        };
        Ok(Self {
            pairs_table: env.required("PAIRS_TABLE")?,
            calls_table: env.required("CALLS_TABLE")?,
            lease_seconds,
            call_machine: CallMachineConfig {
                connect_timeout: seconds(env, "CONNECT_CALL_TIMEOUT_SECONDS", 30)?,
                transfer_timeout: seconds(env, "TRANSFER_CALL_TIMEOUT_SECONDS", 30)?,
                voice: Voice {
                    engine,
                    language_code: voice_setting("LANGUAGE_CODE", voice_defaults.language_code)?,
                    voice_id: voice_setting("VOICE_ID", voice_defaults.voice_id)?,
                },
                messages: Messages {
                    busy: message(env, "MESSAGE_BUSY", defaults.busy)?,
                    unavailable: message(env, "MESSAGE_UNAVAILABLE", defaults.unavailable)?,
                    connect_failed: message(
                        env,
                        "MESSAGE_CONNECT_FAILED",
                        defaults.connect_failed,
                    )?,
                    transfer_hold: message(env, "MESSAGE_TRANSFER_HOLD", defaults.transfer_hold)?,
                    transfer_failed: message(
                        env,
                        "MESSAGE_TRANSFER_FAILED",
                        defaults.transfer_failed,
                    )?,
                },
                targets,
                fallback: target(env, "FALLBACK_TARGET", "FALLBACK_TARGET_ARN")?,
                update_grace,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env<impl Fn(&str) -> Option<String>> {
        takeback_common::config::map_env(pairs.iter().copied())
    }

    const VC: &str = "arn:aws:chime:us-east-1:123456789012:vc/pbx";

    #[test]
    fn missing_table_is_named() {
        let err = SmaHandlerConfig::from_env(&env(&[("CALLS_TABLE", "c")])).unwrap_err();
        assert!(err.to_string().contains("PAIRS_TABLE"), "{err}");
    }

    #[test]
    fn minimal_config_has_safe_defaults() {
        let c = SmaHandlerConfig::from_env(&env(&[("PAIRS_TABLE", "p"), ("CALLS_TABLE", "c")]))
            .unwrap();
        assert_eq!(c.call_machine.connect_timeout.get(), 30);
        assert!(c.call_machine.fallback.is_none());
        assert!(c.call_machine.targets.default_target().is_none());
    }

    #[test]
    fn half_a_target_is_an_error_naming_the_missing_half() {
        let err = SmaHandlerConfig::from_env(&env(&[
            ("PAIRS_TABLE", "p"),
            ("CALLS_TABLE", "c"),
            ("FALLBACK_TARGET", "0"),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("FALLBACK_TARGET_ARN"), "{err}");
    }

    #[test]
    fn out_of_range_timeout_and_bad_arn_are_rejected_by_name() {
        let err = SmaHandlerConfig::from_env(&env(&[
            ("PAIRS_TABLE", "p"),
            ("CALLS_TABLE", "c"),
            ("CONNECT_CALL_TIMEOUT_SECONDS", "500"),
        ]))
        .unwrap_err();
        assert!(
            err.to_string().contains("CONNECT_CALL_TIMEOUT_SECONDS"),
            "{err}"
        );
        let err = SmaHandlerConfig::from_env(&env(&[
            ("PAIRS_TABLE", "p"),
            ("CALLS_TABLE", "c"),
            ("ALLOWED_VOICE_CONNECTOR_ARNS", "nope"),
        ]))
        .unwrap_err();
        assert!(
            err.to_string().contains("ALLOWED_VOICE_CONNECTOR_ARNS"),
            "{err}"
        );
    }

    #[test]
    fn the_sma_handler_applies_the_transfer_pattern_of_connect_transfer() {
        let c = SmaHandlerConfig::from_env(&env(&[
            ("PAIRS_TABLE", "p"),
            ("CALLS_TABLE", "c"),
            ("DEFAULT_TRANSFER_TARGET", "2000"),
            ("DEFAULT_TRANSFER_TARGET_ARN", VC),
        ]))
        .unwrap();
        assert_eq!(
            c.call_machine.targets.pattern(),
            Some(takeback_sma::target::DEFAULT_TARGET_PATTERN)
        );
        assert!(
            c.call_machine
                .targets
                .resolve(Some("+18005551234"), None)
                .is_err()
        );
        let c = SmaHandlerConfig::from_env(&env(&[
            ("PAIRS_TABLE", "p"),
            ("CALLS_TABLE", "c"),
            ("TRANSFER_TARGET_PATTERN", "[0-9]{4}"),
        ]))
        .unwrap();
        assert_eq!(c.call_machine.targets.pattern(), Some("[0-9]{4}"));
    }

    #[test]
    fn grace_and_control_characters_are_checked_by_name() {
        let base = [("PAIRS_TABLE", "p"), ("CALLS_TABLE", "c")];
        let c = SmaHandlerConfig::from_env(&env(&base)).unwrap();
        assert_eq!(c.call_machine.update_grace, UpdateGrace::default());
        for (name, value) in [
            ("TRANSFER_UPDATE_GRACE_MS", "60000"),
            ("TRANSFER_UPDATE_GRACE_MS", "soon"),
            ("MESSAGE_BUSY", "Busy.\r\nGoodbye."),
            ("VOICE_ID", "Jo\nanna"),
        ] {
            let mut vars = base.to_vec();
            vars.push((name, value));
            let err = SmaHandlerConfig::from_env(&env(&vars)).unwrap_err();
            assert!(err.to_string().contains(name), "{name}: {err}");
        }
    }

    #[test]
    fn full_config_parses_targets() {
        let c = SmaHandlerConfig::from_env(&env(&[
            ("PAIRS_TABLE", "p"),
            ("CALLS_TABLE", "c"),
            ("DEFAULT_TRANSFER_TARGET", "2000"),
            ("DEFAULT_TRANSFER_TARGET_ARN", VC),
            ("FALLBACK_TARGET", "0"),
            ("FALLBACK_TARGET_ARN", VC),
            ("MESSAGE_BUSY", "Busy, sorry."),
        ]))
        .unwrap();
        assert_eq!(
            c.call_machine
                .targets
                .default_target()
                .unwrap()
                .uri
                .as_str(),
            "2000"
        );
        assert_eq!(c.call_machine.messages.busy.as_str(), "Busy, sorry.");
        assert!(c.call_machine.fallback.is_some());
    }
}
