"""TikTok Shop Partner API: signing, client, errors, and the sandbox (a TikTok Shop simulator)."""
