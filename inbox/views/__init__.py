"""Agent web views (session auth, one account) and the contact web widget (token auth)."""
