//! SIP media application wire models.
