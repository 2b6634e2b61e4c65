//! Configuration of the two Connect functions, read from the environment at cold start. Parsing
//! takes a lookup function so tests never touch the process environment; a missing or invalid
//! variable is reported by name.

use takeback_pairs::LookupMode;
use takeback_sma::target::{DefaultTarget, TransferPolicy, policy_from_env};

/// Environment variable names (the SAM template sets exactly these).
pub mod var {
    pub const PAIRS_TABLE: &str = "PAIRS_TABLE";
    pub const CALLS_TABLE: &str = "CALLS_TABLE";
    pub const LOOKUP_MODE: &str = "LOOKUP_MODE";
    pub const SIP_MEDIA_APPLICATION_ID: &str = "SIP_MEDIA_APPLICATION_ID";
    pub use takeback_sma::target::var::{
        ALLOWED_VOICE_CONNECTOR_ARNS, DEFAULT_TRANSFER_TARGET, DEFAULT_TRANSFER_TARGET_ARN,
        TRANSFER_TARGET_PATTERN,
    };
}

pub use takeback_common::config::{ConfigError, Env};

/// `keep` (default; the seed's behaviour: the pair stays held until the SMA releases it) or
/// `release` (the lookup frees the pair at once; the flow carries `transaction_id` onward).
pub fn parse_lookup_mode(value: Option<&str>) -> Result<LookupMode, ConfigError> {
    match value.map(|v| v.trim().to_ascii_lowercase()).as_deref() {
        None | Some("" | "keep" | "keep_claim") => Ok(LookupMode::KeepClaim),
        Some("release" | "release_on_lookup") => Ok(LookupMode::ReleaseOnLookup),
        Some(other) => Err(ConfigError::invalid(
            var::LOOKUP_MODE,
            format!("{other:?} is neither \"keep\" nor \"release\""),
        )),
    }
}

/// `connect-lookup`: `PAIRS_TABLE` (required), `CALLS_TABLE` (optional), `LOOKUP_MODE`
/// (optional, `keep` | `release`, default `keep`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookupConfig {
    pub pairs_table: String,
    pub calls_table: Option<String>,
    pub lookup_mode: LookupMode,
}

impl LookupConfig {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        Ok(Self {
            pairs_table: env.required(var::PAIRS_TABLE)?,
            calls_table: env.optional(var::CALLS_TABLE),
            lookup_mode: parse_lookup_mode(env.optional(var::LOOKUP_MODE).as_deref())?,
        })
    }
}

/// `connect-transfer`: `PAIRS_TABLE`, `CALLS_TABLE`, `SIP_MEDIA_APPLICATION_ID`,
/// `DEFAULT_TRANSFER_TARGET`, `DEFAULT_TRANSFER_TARGET_ARN` (required);
/// `ALLOWED_VOICE_CONNECTOR_ARNS` (optional, comma-separated; the default ARN is always allowed),
/// `TRANSFER_TARGET_PATTERN` (optional regular expression matched against the whole per-call
/// target; default `[0-9]{1,6}`), `ROOM_EXTENSIONS` (optional room directory, e.g.
/// `1101-1130,1201`; a per-call target must be one of them).
#[derive(Debug, Clone)]
pub struct TransferConfig {
    pub pairs_table: String,
    pub calls_table: String,
    pub sip_media_application_id: String,
    pub policy: TransferPolicy,
}

impl TransferConfig {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        let pairs_table = env.required(var::PAIRS_TABLE)?;
        let calls_table = env.required(var::CALLS_TABLE)?;
        let sip_media_application_id = env.required(var::SIP_MEDIA_APPLICATION_ID)?;
        // The same reader as the SMA handler's, so both sides refuse the same targets.
        let policy = policy_from_env(env, DefaultTarget::Required)?;
        Ok(Self {
            pairs_table,
            calls_table,
            sip_media_application_id,
            policy,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env<impl Fn(&str) -> Option<String>> {
        takeback_common::config::map_env(pairs.iter().copied())
    }

    const VC: &str = "arn:aws:chime:us-east-1:111122223333:vc/abc";
    const VCG: &str = "arn:aws:chime:us-east-1:111122223333:vcg/def";

    fn transfer_vars() -> Vec<(&'static str, &'static str)> {
        vec![
            (var::PAIRS_TABLE, "pairs"),
            (var::CALLS_TABLE, "calls"),
            (var::SIP_MEDIA_APPLICATION_ID, "sma-1"),
            (var::DEFAULT_TRANSFER_TARGET, "+18005550100"),
            (var::DEFAULT_TRANSFER_TARGET_ARN, VC),
        ]
    }

    #[test]
    fn lookup_config_defaults_to_keep() {
        let c = LookupConfig::from_env(&env(&[(var::PAIRS_TABLE, "pairs")])).unwrap();
        assert_eq!(c.pairs_table, "pairs");
        assert_eq!(c.lookup_mode, LookupMode::KeepClaim);
        assert_eq!(c.calls_table, None);
        let c = LookupConfig::from_env(&env(&[
            (var::PAIRS_TABLE, "p"),
            (var::LOOKUP_MODE, "Release"),
        ]))
        .unwrap();
        assert_eq!(c.lookup_mode, LookupMode::ReleaseOnLookup);
    }

    #[test]
    fn missing_and_invalid_variables_are_named() {
        let e = LookupConfig::from_env(&env(&[])).unwrap_err();
        assert!(e.to_string().contains("PAIRS_TABLE"), "{e}");
        let e = LookupConfig::from_env(&env(&[
            (var::PAIRS_TABLE, "p"),
            (var::LOOKUP_MODE, "maybe"),
        ]))
        .unwrap_err();
        assert!(e.to_string().contains("LOOKUP_MODE"), "{e}");

        for missing in transfer_vars().iter().map(|(k, _)| *k) {
            let vars: Vec<_> = transfer_vars()
                .into_iter()
                .filter(|(k, _)| *k != missing)
                .collect();
            let e = TransferConfig::from_env(&env(&vars)).unwrap_err();
            assert!(e.to_string().contains(missing), "{e}");
        }
        let mut vars = transfer_vars();
        vars.push((var::TRANSFER_TARGET_PATTERN, "[0-9"));
        let e = TransferConfig::from_env(&env(&vars)).unwrap_err();
        assert!(e.to_string().contains("TRANSFER_TARGET_PATTERN"), "{e}");
        let mut vars = transfer_vars();
        vars.push((
            var::ALLOWED_VOICE_CONNECTOR_ARNS,
            "arn:aws:chime:us-east-1:1:vc/x, bogus",
        ));
        let e = TransferConfig::from_env(&env(&vars)).unwrap_err();
        assert!(
            e.to_string().contains("ALLOWED_VOICE_CONNECTOR_ARNS"),
            "{e}"
        );
    }

    #[test]
    fn transfer_config_builds_the_policy() {
        let allowed = format!(" {VCG} ,, ");
        let mut vars: Vec<(&str, &str)> = transfer_vars();
        vars.push((var::ALLOWED_VOICE_CONNECTOR_ARNS, &allowed));
        vars.push((var::TRANSFER_TARGET_PATTERN, "[0-9]{4}"));
        let c = TransferConfig::from_env(&env(&vars)).unwrap();
        assert_eq!(c.sip_media_application_id, "sma-1");
        assert_eq!(c.policy.pattern(), Some("[0-9]{4}"));
        let mut allowed: Vec<_> = c.policy.allowed_arns().collect();
        allowed.sort();
        assert_eq!(allowed, vec![VC, VCG]);
        assert!(c.policy.resolve(Some("1234"), Some(VCG)).is_ok());
    }
}
