//! Which transfer targets a call may be sent to, and the default when a request names none.
//! One policy type for both sides: `connect-transfer` checks what the contact flow asks for,
//! and the SMA handler checks what `CALL_UPDATE_REQUESTED` or a recorded intent names.
//!
//! A per-call target comes from the flow — often from digits the caller keyed in — so it is
//! untrusted input: its Uri must satisfy the SMA's rule for an `AWS` bridge endpoint (1–30
//! characters of `a-zA-Z0-9&=+$/%-_!~*().`) *and* the operator's pattern, and its ARN (if the
//! flow passes one) must be in the allowed list. The configured default target is trusted
//! configuration: it is checked against the Uri/ARN rules at start-up, not against the pattern.
//!
//! A flow that passes *no* target gets the default. A flow that passes an *invalid* one gets
//! `invalid_target` — not the default — so the flow can tell the caller and ask again.

use std::collections::BTreeSet;

use crate::ActionError;
use crate::{AwsEndpointUri, VoiceConnectorArn};

/// The default for `TRANSFER_TARGET_PATTERN`: a room or desk extension of 1–6 digits. It
/// keeps callers from dialling arbitrary numbers through the PBX; widen it deliberately.
pub const DEFAULT_TARGET_PATTERN: &str = "[0-9]{1,6}";

/// The environment variables of the policy; `connect-transfer` and the SMA handler read the
/// same ones through [`policy_from_env`].
pub mod var {
    pub const DEFAULT_TRANSFER_TARGET: &str = "DEFAULT_TRANSFER_TARGET";
    pub const DEFAULT_TRANSFER_TARGET_ARN: &str = "DEFAULT_TRANSFER_TARGET_ARN";
    pub const ALLOWED_VOICE_CONNECTOR_ARNS: &str = "ALLOWED_VOICE_CONNECTOR_ARNS";
    pub const TRANSFER_TARGET_PATTERN: &str = "TRANSFER_TARGET_PATTERN";
    pub const ROOM_EXTENSIONS: &str = "ROOM_EXTENSIONS";
}

/// Whether a function must have a default target (`connect-transfer`: a flow may name none) or
/// may run without one (the SMA handler: every update names its target).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultTarget {
    Required,
    Optional,
}

/// The one reader of the transfer settings, so both sides refuse the same targets:
/// `DEFAULT_TRANSFER_TARGET` + `DEFAULT_TRANSFER_TARGET_ARN` (both or neither, unless
/// required), `ALLOWED_VOICE_CONNECTOR_ARNS` (comma-separated; the default's ARN is always
/// allowed), `TRANSFER_TARGET_PATTERN` (empty or absent: [`DEFAULT_TARGET_PATTERN`]) and
/// `ROOM_EXTENSIONS` (empty or absent: no directory; see [`RoomDirectory`]). An invalid value is
/// reported under its variable's name.
pub fn policy_from_env<F: Fn(&str) -> Option<String>>(
    env: &takeback_common::config::Env<F>,
    default: DefaultTarget,
) -> Result<TransferPolicy, takeback_common::config::ConfigError> {
    use takeback_common::config::ConfigError;
    let invalid = |name: &'static str, e: PolicyError| ConfigError::Invalid {
        name,
        message: e.to_string(),
        source: Some(Box::new(e)),
    };
    let (uri, arn) = match default {
        DefaultTarget::Required => (
            Some(env.required(var::DEFAULT_TRANSFER_TARGET)?),
            Some(env.required(var::DEFAULT_TRANSFER_TARGET_ARN)?),
        ),
        DefaultTarget::Optional => (
            env.optional(var::DEFAULT_TRANSFER_TARGET),
            env.optional(var::DEFAULT_TRANSFER_TARGET_ARN),
        ),
    };
    let default_target = match (uri, arn) {
        (None, None) => None,
        (Some(uri), Some(arn)) => Some(TransferTarget {
            uri: AwsEndpointUri::parse(uri.trim())
                .map_err(|e| invalid(var::DEFAULT_TRANSFER_TARGET, PolicyError::DefaultUri(e)))?,
            arn: VoiceConnectorArn::parse(arn.trim()).map_err(|e| {
                invalid(var::DEFAULT_TRANSFER_TARGET_ARN, PolicyError::DefaultArn(e))
            })?,
        }),
        (None, Some(_)) => return Err(ConfigError::Missing(var::DEFAULT_TRANSFER_TARGET)),
        (Some(_), None) => return Err(ConfigError::Missing(var::DEFAULT_TRANSFER_TARGET_ARN)),
    };
    let allowed = env
        .optional(var::ALLOWED_VOICE_CONNECTOR_ARNS)
        .unwrap_or_default();
    let pattern = env.optional(var::TRANSFER_TARGET_PATTERN);
    let pattern = pattern
        .as_deref()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .unwrap_or(DEFAULT_TARGET_PATTERN);
    let rooms = match env.optional(var::ROOM_EXTENSIONS) {
        Some(spec) if !spec.trim().is_empty() => Some(
            RoomDirectory::parse(&spec)
                .map_err(|e| invalid(var::ROOM_EXTENSIONS, PolicyError::RoomExtensions(e)))?,
        ),
        _ => None,
    };
    let policy = TransferPolicy::with_rules(default_target, allowed.split(','), Some(pattern))
        .map_err(|e| {
            let name = match e {
                PolicyError::DefaultUri(_) => var::DEFAULT_TRANSFER_TARGET,
                PolicyError::DefaultArn(_) => var::DEFAULT_TRANSFER_TARGET_ARN,
                PolicyError::AllowedArn(_) => var::ALLOWED_VOICE_CONNECTOR_ARNS,
                PolicyError::Pattern(_) => var::TRANSFER_TARGET_PATTERN,
                PolicyError::RoomExtensions(_) => var::ROOM_EXTENSIONS,
            };
            invalid(name, e)
        })?;
    Ok(match rooms {
        Some(rooms) => policy.with_room_directory(rooms),
        None => policy,
    })
}

/// The most extensions a directory may expand to: far above any property, low enough that a
/// typo such as `1-99999999` is refused at start-up instead of filling the function's memory.
pub const MAX_ROOM_EXTENSIONS: usize = 50_000;

/// The room extensions a per-call target may name, when the operator provides them.
///
/// The property file that provisions the rooms (`asp`) is the source: `asp extensions` prints
/// this list, and the deployment passes it to both functions as `ROOM_EXTENSIONS`. Its form is
/// comma-separated entries, each one extension (`1101`) or an inclusive range of extensions of
/// the same length (`1101-1130`, zero-padded ends keep their padding: `0100-0199`). Whitespace
/// around entries is ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoomDirectory(BTreeSet<String>);

/// Why a `ROOM_EXTENSIONS` value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DirectoryError {
    #[error("`{0}` is not an extension: it must be a valid transfer target (1-30 characters)")]
    Entry(String),
    #[error("range `{0}` must join two digit strings of the same length, the first not larger")]
    Range(String),
    #[error("the list expands to more than {MAX_ROOM_EXTENSIONS} extensions")]
    TooMany,
}

impl RoomDirectory {
    pub fn parse(spec: &str) -> Result<Self, DirectoryError> {
        let mut rooms = BTreeSet::new();
        for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            match entry.split_once('-') {
                Some((first, last)) if is_digits(first.trim()) || is_digits(last.trim()) => {
                    let (first, last) = (first.trim(), last.trim());
                    let width = first.len();
                    let range_error = || DirectoryError::Range(entry.to_owned());
                    if !is_digits(first) || !is_digits(last) || last.len() != width {
                        return Err(range_error());
                    }
                    let (start, end) = match (first.parse::<u64>(), last.parse::<u64>()) {
                        (Ok(start), Ok(end)) if start <= end => (start, end),
                        _ => return Err(range_error()),
                    };
                    let count = usize::try_from(end - start + 1).unwrap_or(usize::MAX);
                    if rooms.len().saturating_add(count) > MAX_ROOM_EXTENSIONS {
                        return Err(DirectoryError::TooMany);
                    }
                    rooms.extend((start..=end).map(|n| format!("{n:0width$}")));
                }
                _ => {
                    if AwsEndpointUri::parse(entry).is_err() {
                        return Err(DirectoryError::Entry(entry.to_owned()));
                    }
                    rooms.insert(entry.to_owned());
                    if rooms.len() > MAX_ROOM_EXTENSIONS {
                        return Err(DirectoryError::TooMany);
                    }
                }
            }
        }
        Ok(Self(rooms))
    }

    /// The directory of exactly these extensions (what `asp` reads from a property file).
    pub fn from_extensions<I, S>(extensions: I) -> Result<Self, DirectoryError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut rooms = BTreeSet::new();
        for extension in extensions {
            let extension = extension.as_ref().trim();
            if extension.contains(',') || AwsEndpointUri::parse(extension).is_err() {
                return Err(DirectoryError::Entry(extension.to_owned()));
            }
            rooms.insert(extension.to_owned());
        }
        if rooms.len() > MAX_ROOM_EXTENSIONS {
            return Err(DirectoryError::TooMany);
        }
        Ok(Self(rooms))
    }

    pub fn contains(&self, extension: &str) -> bool {
        self.0.contains(extension)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The shortest form [`parse`](Self::parse) reads back as the same set: runs of consecutive
    /// numbers of one width become ranges. A Lambda environment holds 4 KB in all, and a
    /// hotel's rooms are mostly runs (`1101-1130,1201-1230`), so this keeps large properties in.
    pub fn to_spec(&self) -> String {
        let mut entries: Vec<String> = Vec::new();
        let mut run: Option<(String, u64, String, u64)> = None;
        let flush = |run: &mut Option<(String, u64, String, u64)>, entries: &mut Vec<String>| {
            if let Some((first, start, last, end)) = run.take() {
                entries.push(if start == end {
                    first
                } else if end == start + 1 {
                    format!("{first},{last}")
                } else {
                    format!("{first}-{last}")
                });
            }
        };
        // Numbers of one width sort as strings in numeric order, so one pass finds the runs.
        let mut numbers: Vec<(usize, u64, &String)> = Vec::new();
        for room in &self.0 {
            match room.parse::<u64>() {
                Ok(n) if is_digits(room) => numbers.push((room.len(), n, room)),
                _ => entries.push(room.clone()),
            }
        }
        numbers.sort();
        for (width, n, room) in numbers {
            match &mut run {
                Some((first, _, last, end)) if first.len() == width && *end + 1 == n => {
                    *last = room.clone();
                    *end = n;
                }
                _ => {
                    flush(&mut run, &mut entries);
                    run = Some((room.clone(), n, room.clone(), n));
                }
            }
        }
        flush(&mut run, &mut entries);
        entries.join(",")
    }
}

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// A SIP destination behind a Voice Connector: what the SMA bridges a caller to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferTarget {
    pub uri: AwsEndpointUri,
    pub arn: VoiceConnectorArn,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetSource {
    /// The flow passed `TransferTarget` and/or `TransferTargetArn`.
    ContactFlow,
    /// Nothing was passed: the configured default.
    Default,
}

impl TargetSource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ContactFlow => "contact_flow",
            Self::Default => "default",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedTarget {
    pub target: TransferTarget,
    pub source: TargetSource,
}

/// Why a per-call target was refused; `reason()` goes back to the flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TargetRejection {
    #[error("TransferTarget is not 1-30 characters of a-zA-Z0-9&=+$/%-_!~*().")]
    UriInvalid,
    #[error("TransferTarget does not match the configured pattern")]
    PatternMismatch,
    #[error("TransferTargetArn is not a Voice Connector or Voice Connector group ARN")]
    ArnInvalid,
    #[error("TransferTargetArn is not in the allowed list")]
    ArnNotAllowed,
    #[error("TransferTarget is no room extension of this property")]
    NotARoom,
    #[error("no transfer target given and no default configured")]
    NoTarget,
}

impl TargetRejection {
    pub fn reason(self) -> &'static str {
        match self {
            Self::UriInvalid => "target_uri_invalid",
            Self::PatternMismatch => "target_pattern_mismatch",
            Self::ArnInvalid => "target_arn_invalid",
            Self::ArnNotAllowed => "target_arn_not_allowed",
            Self::NotARoom => "target_not_a_room",
            Self::NoTarget => "no_target",
        }
    }
}

/// A configuration value that cannot make a policy.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("default transfer target is invalid")]
    DefaultUri(#[source] ActionError),
    #[error("default transfer target ARN is invalid")]
    DefaultArn(#[source] ActionError),
    #[error("allowed Voice Connector ARN is invalid")]
    AllowedArn(#[source] ActionError),
    #[error("transfer target pattern is not a valid regular expression")]
    Pattern(#[source] regex_lite::Error),
    #[error("room extensions are invalid")]
    RoomExtensions(#[source] DirectoryError),
}

/// The validated transfer rules (built once at cold start from the function's configuration).
///
/// `Default` is the most restrictive policy: no default target, no allowed ARN, so every
/// request is refused.
#[derive(Debug, Clone, Default)]
pub struct TransferPolicy {
    default: Option<TransferTarget>,
    allowed_arns: BTreeSet<String>,
    /// `None`: any Uri that passes the SMA's rule.
    pattern: Option<(regex_lite::Regex, String)>,
    /// `None`: any Uri that passes the pattern.
    rooms: Option<RoomDirectory>,
}

impl TransferPolicy {
    /// `allowed_arns` may be empty: the default ARN is always allowed. `pattern` is a regular
    /// expression (`regex-lite` syntax) that must match the *whole* per-call Uri — it is
    /// anchored here, so `[0-9]{3,4}` means exactly 3–4 digits. `None` means
    /// [`DEFAULT_TARGET_PATTERN`].
    pub fn new<I, S>(
        default_uri: &str,
        default_arn: &str,
        allowed_arns: I,
        pattern: Option<&str>,
    ) -> Result<Self, PolicyError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let default = TransferTarget {
            uri: AwsEndpointUri::parse(default_uri.trim()).map_err(PolicyError::DefaultUri)?,
            arn: VoiceConnectorArn::parse(default_arn.trim()).map_err(PolicyError::DefaultArn)?,
        };
        let pattern_source = pattern
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .unwrap_or(DEFAULT_TARGET_PATTERN);
        Self::with_rules(Some(default), allowed_arns, Some(pattern_source))
    }

    /// The general form: the default target is optional (without one, a request must name a
    /// Uri and an allowed ARN), and `pattern: None` accepts any Uri that passes the SMA's rule.
    pub fn with_rules<I, S>(
        default: Option<TransferTarget>,
        allowed_arns: I,
        pattern: Option<&str>,
    ) -> Result<Self, PolicyError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut allowed = BTreeSet::new();
        if let Some(default) = &default {
            allowed.insert(default.arn.as_str().to_owned());
        }
        for arn in allowed_arns {
            let arn = arn.as_ref().trim();
            if arn.is_empty() {
                continue;
            }
            let arn = VoiceConnectorArn::parse(arn).map_err(PolicyError::AllowedArn)?;
            allowed.insert(arn.as_str().to_owned());
        }
        let pattern = match pattern {
            None => None,
            Some(source) => Some((
                regex_lite::Regex::new(&format!("^(?:{source})$")).map_err(PolicyError::Pattern)?,
                source.to_owned(),
            )),
        };
        Ok(Self {
            default,
            allowed_arns: allowed,
            pattern,
            rooms: None,
        })
    }

    /// Per-call targets must also be one of these room extensions (the default stays trusted).
    pub fn with_room_directory(mut self, rooms: RoomDirectory) -> Self {
        self.rooms = Some(rooms);
        self
    }

    pub fn room_directory(&self) -> Option<&RoomDirectory> {
        self.rooms.as_ref()
    }

    pub fn default_target(&self) -> Option<&TransferTarget> {
        self.default.as_ref()
    }

    pub fn allowed_arns(&self) -> impl Iterator<Item = &str> {
        self.allowed_arns.iter().map(String::as_str)
    }

    /// The per-call Uri pattern, if the policy has one.
    pub fn pattern(&self) -> Option<&str> {
        self.pattern.as_ref().map(|(_, source)| source.as_str())
    }

    /// [`resolve`](Self::resolve) for callers that do not care where the target came from.
    pub fn resolve_target(
        &self,
        uri: Option<&str>,
        arn: Option<&str>,
    ) -> Result<TransferTarget, TargetRejection> {
        self.resolve(uri, arn).map(|resolved| resolved.target)
    }

    /// The target for this call. Absent parts come from the default; present parts must pass
    /// the rules. Inputs are trimmed; empty counts as absent.
    pub fn resolve(
        &self,
        uri: Option<&str>,
        arn: Option<&str>,
    ) -> Result<ResolvedTarget, TargetRejection> {
        let uri = uri.map(str::trim).filter(|u| !u.is_empty());
        let arn = arn.map(str::trim).filter(|a| !a.is_empty());
        let source = if uri.is_some() || arn.is_some() {
            TargetSource::ContactFlow
        } else {
            TargetSource::Default
        };
        let uri = match uri {
            None => self
                .default
                .as_ref()
                .ok_or(TargetRejection::NoTarget)?
                .uri
                .clone(),
            Some(u) => {
                let parsed = AwsEndpointUri::parse(u).map_err(|_| TargetRejection::UriInvalid)?;
                // The configured default is trusted configuration, also when it is named
                // explicitly (the SMA handler gets the Uri `connect-transfer` resolved).
                let is_default = self.default.as_ref().is_some_and(|d| d.uri == parsed);
                if let Some((pattern, _)) = &self.pattern
                    && !is_default
                    && !pattern.is_match(u)
                {
                    return Err(TargetRejection::PatternMismatch);
                }
                if let Some(rooms) = &self.rooms
                    && !is_default
                    && !rooms.contains(u)
                {
                    return Err(TargetRejection::NotARoom);
                }
                parsed
            }
        };
        let arn = match arn {
            None => self
                .default
                .as_ref()
                .ok_or(TargetRejection::NoTarget)?
                .arn
                .clone(),
            Some(a) => {
                let parsed =
                    VoiceConnectorArn::parse(a).map_err(|_| TargetRejection::ArnInvalid)?;
                if !self.allowed_arns.contains(parsed.as_str()) {
                    return Err(TargetRejection::ArnNotAllowed);
                }
                parsed
            }
        };
        Ok(ResolvedTarget {
            target: TransferTarget { uri, arn },
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VC: &str = "arn:aws:chime:us-east-1:111122223333:vc/abcdefghijklmnop";
    const VCG: &str = "arn:aws:chime:us-east-1:111122223333:vcg/front-desk-group";
    const OTHER: &str = "arn:aws:chime:us-east-1:999999999999:vc/someoneelse";

    fn policy(pattern: Option<&str>) -> TransferPolicy {
        TransferPolicy::new("+18005550100", VC, [VCG], pattern).unwrap()
    }

    #[test]
    fn no_target_means_the_default() {
        let r = policy(None).resolve(None, None).unwrap();
        assert_eq!(r.source, TargetSource::Default);
        assert_eq!(r.target.uri.as_str(), "+18005550100");
        assert_eq!(r.target.arn.as_str(), VC);
        // Empty and blank strings count as "not passed".
        let r = policy(None).resolve(Some("  "), Some("")).unwrap();
        assert_eq!(r.source, TargetSource::Default);
    }

    #[test]
    fn a_keyed_in_extension_is_accepted_with_the_default_arn() {
        let r = policy(None).resolve(Some("1234"), None).unwrap();
        assert_eq!(r.source, TargetSource::ContactFlow);
        assert_eq!(r.target.uri.as_str(), "1234");
        assert_eq!(r.target.arn.as_str(), VC);
    }

    #[test]
    fn the_default_pattern_refuses_what_is_not_an_extension() {
        let p = policy(None);
        assert_eq!(
            p.resolve(Some("+18005551234"), None),
            Err(TargetRejection::PatternMismatch)
        );
        assert_eq!(
            p.resolve(Some("1234567"), None),
            Err(TargetRejection::PatternMismatch)
        );
    }

    #[test]
    fn the_uri_rule_applies_before_the_pattern() {
        let p = policy(Some(".*"));
        assert_eq!(
            p.resolve(Some("room 12"), None),
            Err(TargetRejection::UriInvalid)
        );
        assert_eq!(
            p.resolve(Some(&"1".repeat(31)), None),
            Err(TargetRejection::UriInvalid)
        );
        assert_eq!(
            p.resolve(Some("12#"), None),
            Err(TargetRejection::UriInvalid)
        );
        assert!(p.resolve(Some("frontdesk"), None).is_ok());
    }

    #[test]
    fn patterns_are_anchored() {
        let p = policy(Some("[0-9]{3,4}"));
        assert!(p.resolve(Some("123"), None).is_ok());
        assert_eq!(
            p.resolve(Some("12345"), None),
            Err(TargetRejection::PatternMismatch)
        );
        assert_eq!(
            p.resolve(Some("x123"), None),
            Err(TargetRejection::PatternMismatch)
        );
        // An alternation stays inside the anchors.
        let p = policy(Some("1|2"));
        assert_eq!(
            p.resolve(Some("12"), None),
            Err(TargetRejection::PatternMismatch)
        );
    }

    #[test]
    fn arns_must_be_allowed() {
        let p = policy(None);
        let r = p.resolve(Some("12"), Some(VCG)).unwrap();
        assert_eq!(r.target.arn.as_str(), VCG);
        assert_eq!(
            p.resolve(Some("12"), Some(OTHER)),
            Err(TargetRejection::ArnNotAllowed)
        );
        assert_eq!(
            p.resolve(None, Some("arn:aws:lambda:us-east-1:1:function:x")),
            Err(TargetRejection::ArnInvalid)
        );
        // An allowed ARN alone keeps the default Uri.
        let r = p.resolve(None, Some(VCG)).unwrap();
        assert_eq!(r.target.uri.as_str(), "+18005550100");
        assert_eq!(r.source, TargetSource::ContactFlow);
    }

    #[test]
    fn the_default_arn_is_always_allowed() {
        let p = TransferPolicy::new("100", VC, Vec::<String>::new(), None).unwrap();
        assert_eq!(p.allowed_arns().collect::<Vec<_>>(), vec![VC]);
        assert!(p.resolve(Some("7"), Some(VC)).is_ok());
    }

    #[test]
    fn bad_configuration_is_refused() {
        assert!(matches!(
            TransferPolicy::new("not a uri", VC, [VCG], None),
            Err(PolicyError::DefaultUri(_))
        ));
        assert!(matches!(
            TransferPolicy::new("100", "arn:aws:s3:::bucket", [VCG], None),
            Err(PolicyError::DefaultArn(_))
        ));
        assert!(matches!(
            TransferPolicy::new("100", VC, ["nope"], None),
            Err(PolicyError::AllowedArn(_))
        ));
        assert!(matches!(
            TransferPolicy::new("100", VC, [VCG], Some("[0-9")),
            Err(PolicyError::Pattern(_))
        ));
    }

    fn env(
        pairs: &[(&str, &str)],
    ) -> takeback_common::config::Env<impl Fn(&str) -> Option<String>> {
        takeback_common::config::map_env(pairs.iter().copied())
    }

    #[test]
    fn both_sides_read_the_same_policy_with_the_default_pattern() {
        let vars = [
            (var::DEFAULT_TRANSFER_TARGET, "+18005550100"),
            (var::DEFAULT_TRANSFER_TARGET_ARN, VC),
            (var::ALLOWED_VOICE_CONNECTOR_ARNS, VCG),
        ];
        for side in [DefaultTarget::Required, DefaultTarget::Optional] {
            let p = policy_from_env(&env(&vars), side).unwrap();
            assert_eq!(p.pattern(), Some(DEFAULT_TARGET_PATTERN), "{side:?}");
            assert_eq!(
                p.resolve(Some("+18005551234"), None),
                Err(TargetRejection::PatternMismatch),
                "{side:?}"
            );
            assert!(p.resolve(Some("1234"), Some(VCG)).is_ok(), "{side:?}");
        }
        let err = policy_from_env(&env(&[]), DefaultTarget::Required).unwrap_err();
        assert!(
            err.to_string().contains(var::DEFAULT_TRANSFER_TARGET),
            "{err}"
        );
        let none = policy_from_env(&env(&[]), DefaultTarget::Optional).unwrap();
        assert!(none.default_target().is_none());
        let err = policy_from_env(
            &env(&[(var::TRANSFER_TARGET_PATTERN, "[0-9")]),
            DefaultTarget::Optional,
        )
        .unwrap_err();
        assert!(
            err.to_string().contains(var::TRANSFER_TARGET_PATTERN),
            "{err}"
        );
    }

    #[test]
    fn the_default_named_explicitly_is_still_the_trusted_default() {
        // The SMA handler receives the Uri connect-transfer resolved, the default included.
        let p = TransferPolicy::new("+18005550100", VC, [VCG], Some("[0-9]{3}")).unwrap();
        assert!(p.resolve(Some("+18005550100"), Some(VC)).is_ok());
        assert_eq!(
            p.resolve(Some("+18005550101"), Some(VC)),
            Err(TargetRejection::PatternMismatch)
        );
    }

    #[test]
    fn the_default_target_is_not_held_to_the_pattern() {
        // Operators configure the front desk as an E.164 number while callers may only key in
        // short extensions.
        let p = TransferPolicy::new("+18005550100", VC, [VCG], Some("[0-9]{3}")).unwrap();
        assert_eq!(
            p.resolve(None, None).unwrap().target.uri.as_str(),
            "+18005550100"
        );
        assert_eq!(p.pattern(), Some("[0-9]{3}"));
    }

    #[test]
    fn room_directory_reads_extensions_and_ranges_and_writes_them_back_compactly() {
        let rooms = RoomDirectory::parse(" 1101-1104, 1106 ,0098-0101,lobby,2001,2002").unwrap();
        for known in [
            "1101", "1102", "1104", "1106", "0098", "0100", "0101", "lobby", "2002",
        ] {
            assert!(rooms.contains(known), "{known}");
        }
        for unknown in ["1105", "1107", "98", "100", "0102", "2003", ""] {
            assert!(!rooms.contains(unknown), "{unknown}");
        }
        assert_eq!(rooms.len(), 12);
        let spec = rooms.to_spec();
        assert_eq!(spec, "lobby,0098-0101,1101-1104,1106,2001,2002");
        assert_eq!(RoomDirectory::parse(&spec).unwrap(), rooms);
        let listed = RoomDirectory::from_extensions(["1103", "1101", "1102", "1201"]).unwrap();
        assert_eq!(listed.to_spec(), "1101-1103,1201");
    }

    #[test]
    fn room_directory_refuses_what_would_silently_allow_or_exhaust() {
        for (spec, expected) in [
            ("1101-110", DirectoryError::Range("1101-110".into())),
            ("1130-1101", DirectoryError::Range("1130-1101".into())),
            ("11a1-1130", DirectoryError::Range("11a1-1130".into())),
            ("room 1", DirectoryError::Entry("room 1".into())),
            ("00000000-99999999", DirectoryError::TooMany),
        ] {
            assert_eq!(RoomDirectory::parse(spec), Err(expected), "{spec}");
        }
        assert!(RoomDirectory::from_extensions(["1101,1102"]).is_err());
    }

    #[test]
    fn with_a_room_directory_only_rooms_are_transfer_targets_on_both_sides() {
        let vars = [
            (var::DEFAULT_TRANSFER_TARGET, "+18005550100"),
            (var::DEFAULT_TRANSFER_TARGET_ARN, VC),
            (var::ROOM_EXTENSIONS, "1101-1130,1201-1230"),
        ];
        for side in [DefaultTarget::Required, DefaultTarget::Optional] {
            let p = policy_from_env(&env(&vars), side).unwrap();
            assert!(p.resolve(Some("1115"), None).is_ok(), "{side:?}");
            // Passes the digit pattern, but no room has it: the flow asks again.
            let refused = p.resolve(Some("1131"), None).unwrap_err();
            assert_eq!(refused, TargetRejection::NotARoom, "{side:?}");
            assert_eq!(refused.reason(), "target_not_a_room");
            // The configured default is trusted configuration, not a room.
            assert!(p.resolve(None, None).is_ok(), "{side:?}");
            assert!(p.resolve(Some("+18005550100"), None).is_ok(), "{side:?}");
        }
        let without = policy_from_env(&env(&vars[..2]), DefaultTarget::Required).unwrap();
        assert!(without.room_directory().is_none());
        assert!(without.resolve(Some("1131"), None).is_ok());
        let err = policy_from_env(
            &env(&[(var::ROOM_EXTENSIONS, "1130-1101")]),
            DefaultTarget::Optional,
        )
        .unwrap_err();
        assert!(err.to_string().contains(var::ROOM_EXTENSIONS), "{err}");
    }
}
