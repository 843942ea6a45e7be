"""Face verification (刷脸办): biometric consent, sessions, the verification log, real-name proof."""
