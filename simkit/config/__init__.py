"""Config: TOML files to validated, immutable config objects (one module per part of the config)."""
