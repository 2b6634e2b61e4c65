//! Amazon Connect contact-flow Lambda contract: tolerant event model and flat string-map results.
