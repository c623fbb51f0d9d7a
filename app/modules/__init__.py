"""The modules. None imports another; they talk through events in app.contracts."""
