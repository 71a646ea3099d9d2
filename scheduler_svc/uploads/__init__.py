"""The upload queue's worker and its pure policy (what TorBox's answer to a create means)."""
