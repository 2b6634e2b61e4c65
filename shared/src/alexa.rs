//! Alexa Smart Properties WebRTC calling: `Alexa.Comms.CallSignaling` wire models and session
//! state transitions.
