//! What one backend request counts (see `takeback_common::metrics`), read from the answer the
//! function URL returns (status and JSON body).

use takeback_common::metrics::{Outcome, names};

/// The `Function` dimension of this handler's metrics.
pub const FUNCTION: &str = "signaling-api";

pub fn outcome(status: i64, body: Option<&str>) -> Outcome {
    let body: serde_json::Value = body
        .and_then(|b| serde_json::from_str(b).ok())
        .unwrap_or_default();
    let field = |name: &str| body[name].as_str().unwrap_or_default().to_owned();
    let (outcome, error) = (field("outcome"), field("error"));
    let label = if error.is_empty() {
        format!("{status}:{outcome}")
    } else {
        format!("{status}:{error}")
    };
    Outcome::new(FUNCTION)
        .label(label)
        // A sent message that leaves its session OFFERED is the property's InitiateInboundCall.
        .count_if(
            status == 200 && outcome == "sent" && body["state"] == "OFFERED",
            names::ALEXA_SESSIONS,
        )
        .count_if(error == "store_unavailable", names::STORE_ERRORS)
        .count_if(
            matches!(
                error.as_str(),
                "alexa_rejected" | "alexa_unavailable" | "token_unavailable"
            ),
            names::API_ERRORS,
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_store_and_api_failures_are_counted_from_the_answer() {
        let sent = r#"{"outcome":"sent","sessionId":"s","state":"OFFERED","alexaStatus":200,"attempts":1}"#;
        assert_eq!(outcome(200, Some(sent)).counts(), [names::ALEXA_SESSIONS]);
        let ringing = r#"{"outcome":"sent","sessionId":"s","state":"RINGING"}"#;
        assert!(outcome(200, Some(ringing)).counts().is_empty());
        let store = r#"{"error":"store_unavailable","message":"x"}"#;
        assert_eq!(outcome(500, Some(store)).counts(), [names::STORE_ERRORS]);
        let alexa = r#"{"error":"alexa_unavailable","alexaStatus":503,"message":"x"}"#;
        assert_eq!(outcome(502, Some(alexa)).counts(), [names::API_ERRORS]);
        assert!(outcome(400, None).counts().is_empty());
    }
}
