"""What makes use lawful: consent records now; audit, retention, review and reports later."""
