"""What oort-sync remembers: config, credentials, manifest, locks, log, the host's places."""
