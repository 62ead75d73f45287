"""Users, roles and API keys."""
